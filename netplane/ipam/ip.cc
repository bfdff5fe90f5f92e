#include "netplane/ipam/ip.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <ostream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mesh::netplane::ipam {
namespace {

// The user's text, escaped and cut, for messages.
std::string Quote(absl::string_view text) {
  std::string shown = absl::CEscape(text.substr(0, 80));
  if (text.size() > 80) shown += "...";
  return absl::StrCat("\"", shown, "\"");
}

// A 128-bit number as two halves; IPv4 addresses live in the low 32 bits of `lo`.
struct U128 {
  uint64_t hi = 0;
  uint64_t lo = 0;
};

U128 Load(std::span<const uint8_t> bytes) {
  U128 v;
  for (uint8_t b : bytes) {
    v.hi = (v.hi << 8) | (v.lo >> 56);
    v.lo = (v.lo << 8) | b;
  }
  return v;
}

std::array<uint8_t, 16> Store(U128 v, size_t size) {
  std::array<uint8_t, 16> bytes{};
  for (size_t i = size; i-- > 0;) {
    bytes[i] = static_cast<uint8_t>(v.lo);
    v.lo = (v.lo >> 8) | (v.hi << 56);
    v.hi >>= 8;
  }
  return bytes;
}

}  // namespace

absl::string_view FamilyName(Family family) { return family == Family::kV4 ? "IPv4" : "IPv6"; }

absl::StatusOr<IpAddress> IpAddress::Parse(absl::string_view text) {
  auto error = [&] {
    return absl::InvalidArgumentError(absl::StrCat(Quote(text), " is not an IP address"));
  };
  // inet_pton needs a NUL-terminated string; an embedded NUL would silently cut the text.
  if (text.empty() || text.size() > INET6_ADDRSTRLEN || text.find('\0') != text.npos) {
    return error();
  }
  std::string z(text);
  std::array<uint8_t, 16> bytes{};
  if (text.find(':') != text.npos) {
    if (inet_pton(AF_INET6, z.c_str(), bytes.data()) != 1) return error();
    return IpAddress(Family::kV6, bytes);
  }
  // glibc's inet_pton(AF_INET) takes exactly four decimal octets and rejects leading zeros, so
  // "010.1.1.1" (octal to inet_aton) and "10.1" are errors rather than surprises.
  if (inet_pton(AF_INET, z.c_str(), bytes.data()) != 1) return error();
  return IpAddress(Family::kV4, bytes);
}

IpAddress IpAddress::V4(uint32_t host_order) {
  return IpAddress(Family::kV4, Store(U128{0, host_order}, 4));
}

IpAddress IpAddress::V6(const std::array<uint8_t, 16>& bytes) {
  return IpAddress(Family::kV6, bytes);
}

absl::StatusOr<IpAddress> IpAddress::FromBytes(std::span<const uint8_t> bytes) {
  std::array<uint8_t, 16> storage{};
  std::copy(bytes.begin(), bytes.begin() + std::min<size_t>(bytes.size(), 16), storage.begin());
  if (bytes.size() == 4) return IpAddress(Family::kV4, storage);
  if (bytes.size() == 16) return IpAddress(Family::kV6, storage);
  return absl::InvalidArgumentError(
      absl::StrCat("an IP address has 4 or 16 bytes, not ", bytes.size()));
}

std::optional<uint32_t> IpAddress::ToV4HostOrder() const {
  if (!is_v4()) return std::nullopt;
  return static_cast<uint32_t>(Load(bytes()).lo);
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  // Cannot fail: the family is valid and the buffer is large enough for either.
  inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof(buf));
  return buf;
}

std::optional<IpAddress> IpAddress::Add(uint64_t offset) const {
  U128 v = Load(bytes());
  uint64_t lo = v.lo + offset;
  uint64_t hi = v.hi + (lo < v.lo ? 1 : 0);
  if (hi < v.hi) return std::nullopt;                                // past ffff:...:ffff
  if (is_v4() && (hi != 0 || lo > UINT32_MAX)) return std::nullopt;  // past 255.255.255.255
  return IpAddress(family_, Store(U128{hi, lo}, bytes().size()));
}

std::optional<uint64_t> IpAddress::OffsetFrom(const IpAddress& base) const {
  if (family_ != base.family_ || *this < base) return std::nullopt;
  U128 a = Load(bytes());
  U128 b = Load(base.bytes());
  uint64_t hi = a.hi - b.hi - (a.lo < b.lo ? 1 : 0);
  if (hi != 0) return std::nullopt;
  return a.lo - b.lo;
}

std::ostream& operator<<(std::ostream& os, const IpAddress& address) {
  return os << address.ToString();
}

namespace {

// "address/length" as written, the address and the length checked; `what` names the text in
// errors ("subnet", "address").
absl::StatusOr<std::pair<IpAddress, int>> ParseSlashed(absl::string_view text,
                                                       absl::string_view what,
                                                       absl::string_view example) {
  auto error = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", Quote(text), ": ", why));
  };
  size_t slash = text.find('/');
  if (slash == text.npos) {
    return error(absl::StrCat("missing prefix length (write address/length, e.g. ", example, ")"));
  }
  absl::StatusOr<IpAddress> address = IpAddress::Parse(text.substr(0, slash));
  if (!address.ok()) return error(address.status().message());

  // Digits only: SimpleAtoi would also take "+24" and " 24".
  absl::string_view digits = text.substr(slash + 1);
  int length = -1;
  if (digits.empty() || digits.size() > 3 ||
      !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(digits, &length) || length > address->bit_length()) {
    return error(absl::StrCat("prefix length \"", absl::CEscape(digits.substr(0, 10)),
                              "\" is not a number from 0 to ", address->bit_length(), " (",
                              FamilyName(address->family()), ")"));
  }
  return std::make_pair(*address, length);
}

}  // namespace

in_addr ToInAddr(const IpAddress& address) {
  in_addr out{};
  out.s_addr = htonl(address.ToV4HostOrder().value_or(0));
  return out;
}

IpAddress FromInAddr(in_addr address) { return IpAddress::V4(ntohl(address.s_addr)); }

absl::StatusOr<InterfaceAddress> InterfaceAddress::Parse(absl::string_view text) {
  MESH_ASSIGN_OR_RETURN(auto parsed, ParseSlashed(text, "address", "10.0.12.1/30"));
  InterfaceAddress out;
  out.address = parsed.first;
  out.length = parsed.second;
  return out;
}

IpPrefix InterfaceAddress::subnet() const { return *IpPrefix::Containing(address, length); }

std::string InterfaceAddress::ToString() const {
  return absl::StrCat(address.ToString(), "/", length);
}

absl::StatusOr<IpPrefix> IpPrefix::Parse(absl::string_view text) {
  MESH_ASSIGN_OR_RETURN(auto parsed, ParseSlashed(text, "subnet", "10.88.0.0/16"));
  const auto& [address, length] = parsed;
  absl::StatusOr<IpPrefix> prefix = Containing(address, length);
  if (!prefix.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("subnet ", Quote(text), ": ", prefix.status().message()));
  }
  if (prefix->network() != address) {
    return absl::InvalidArgumentError(absl::StrCat(
        "subnet ", Quote(text), " has host bits set; did you mean ", prefix->ToString(), "?"));
  }
  return prefix;
}

absl::StatusOr<IpPrefix> IpPrefix::Containing(const IpAddress& address, int length) {
  if (length < 0 || length > address.bit_length()) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefix length ", length, " is out of range for ",
                     FamilyName(address.family()), " (0 to ", address.bit_length(), ")"));
  }
  std::array<uint8_t, 16> bytes = address.bytes_;
  for (int i = 0; i < 16; ++i) {
    int keep = std::clamp(length - 8 * i, 0, 8);  // leading bits of byte i in the prefix
    bytes[i] &= static_cast<uint8_t>(0xff00 >> keep);
  }
  return IpPrefix(IpAddress(address.family(), bytes), length);
}

IpAddress IpPrefix::Last() const {
  std::array<uint8_t, 16> bytes = network_.bytes_;
  for (int i = 0; i < static_cast<int>(network_.bytes().size()); ++i) {
    int keep = std::clamp(length_ - 8 * i, 0, 8);
    bytes[i] |= static_cast<uint8_t>(0xff >> keep);
  }
  return IpAddress(network_.family(), bytes);
}

bool IpPrefix::Contains(const IpAddress& address) const {
  if (address.family() != family()) return false;
  return network_ <= address && address <= Last();
}

bool IpPrefix::Contains(const IpPrefix& other) const {
  return other.length_ >= length_ && Contains(other.network_);
}

bool IpPrefix::Overlaps(const IpPrefix& other) const {
  // Prefixes nest or are disjoint, so overlapping means one holds the other's first address.
  return Contains(other.network_) || other.Contains(network_);
}

std::string IpPrefix::ToString() const { return absl::StrCat(network_.ToString(), "/", length_); }

std::ostream& operator<<(std::ostream& os, const IpPrefix& prefix) {
  return os << prefix.ToString();
}

}  // namespace mesh::netplane::ipam
