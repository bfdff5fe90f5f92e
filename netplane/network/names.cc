#include "netplane/network/names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mesh::netplane {
namespace {

constexpr int kHexDigits = 11;

std::string Named(absl::string_view prefix, absl::string_view key) {
  uint64_t h = StableHash(key) >> (64 - 4 * kHexDigits);
  return absl::StrCat(prefix, absl::StrFormat("%0*x", kHexDigits, h));
}

// '\0' cannot appear in validated names, so it separates the parts without ambiguity.
std::string Key(absl::string_view kind, absl::string_view a, absl::string_view b = {}) {
  return absl::StrCat(kind, absl::string_view("\0", 1), a, absl::string_view("\0", 1), b);
}

}  // namespace

uint64_t StableHash(absl::string_view data) {
  uint64_t h = 14695981039346656037ULL;  // FNV-1a 64-bit offset basis
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;  // FNV-1a 64-bit prime
  }
  return h;
}

std::string BridgeName(absl::string_view network) {
  return Named(kBridgePrefix, Key("bridge", network));
}

std::string VethHostName(absl::string_view container, absl::string_view network) {
  return Named(kVethHostPrefix, Key("veth", container, network));
}

std::string VethPeerName(absl::string_view container, absl::string_view network) {
  return Named(kVethPeerPrefix, Key("veth", container, network));
}

bool IsValidIfname(absl::string_view name) {
  return !name.empty() && name.size() <= kMaxIfNameLength && name != "." && name != ".." &&
         name.find_first_of(absl::string_view("/: \t\n\v\f\r\0", 10)) == name.npos;
}

bool IsMeshLinkName(absl::string_view ifname) {
  if (ifname.size() != kMaxIfNameLength) return false;
  absl::string_view prefix = ifname.substr(0, 4);
  if (prefix != kBridgePrefix && prefix != kVethHostPrefix && prefix != kVethPeerPrefix) {
    return false;
  }
  for (char c : ifname.substr(4)) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) || absl::ascii_isupper(c)) {
      return false;
    }
  }
  return true;
}

std::array<uint8_t, 6> ContainerMac(absl::string_view container, absl::string_view network) {
  uint64_t h = StableHash(Key("mac", container, network));
  std::array<uint8_t, 6> mac;
  for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(h >> (8 * i));
  mac[0] = static_cast<uint8_t>((mac[0] & 0xfc) | 0x02);  // locally administered, unicast
  return mac;
}

std::string MacToString(const std::array<uint8_t, 6>& mac) {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
                         mac[5]);
}

}  // namespace mesh::netplane
