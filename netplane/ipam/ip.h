#pragma once

#include <netinet/in.h>

#include <array>
#include <compare>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mesh::netplane::ipam {

enum class Family { kV4, kV6 };

// "IPv4" or "IPv6", for messages.
absl::string_view FamilyName(Family family);

// An IPv4 or IPv6 address. A value type: cheap to copy, totally ordered (all IPv4 addresses
// sort before all IPv6 addresses, then numerically), usable as a std::map key.
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is an IPv6 address; nothing converts it.
class IpAddress {
 public:
  // 0.0.0.0.
  IpAddress() = default;

  // Dotted-quad IPv4 ("10.88.1.2") or any IPv6 text inet_pton accepts ("fd00::1"). No zone
  // ids ("%eth0"), no prefix length, no surrounding spaces, no leading zeros in IPv4 octets.
  // InvalidArgument: `"10.88.1.300" is not an IP address`.
  static absl::StatusOr<IpAddress> Parse(absl::string_view text);
  // `host_order` is the address as a number: V4(0x0a580102) is 10.88.1.2.
  static IpAddress V4(uint32_t host_order);
  // Network byte order (as in struct in6_addr).
  static IpAddress V6(const std::array<uint8_t, 16>& bytes);
  // 4 bytes give IPv4 and 16 bytes IPv6, in network byte order (as netlink carries them);
  // any other size is InvalidArgument.
  static absl::StatusOr<IpAddress> FromBytes(std::span<const uint8_t> bytes);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kV4; }
  // 32 or 128.
  int bit_length() const { return is_v4() ? 32 : 128; }
  // The 4 or 16 bytes of the address in network byte order.
  std::span<const uint8_t> bytes() const {
    return std::span<const uint8_t>(bytes_.data(), is_v4() ? 4 : 16);
  }
  // The address as a number for IPv4; nullopt for IPv6.
  std::optional<uint32_t> ToV4HostOrder() const;

  // Canonical text: dotted quad, or RFC 5952 IPv6 ("fd00::1").
  std::string ToString() const;

  // The address `offset` after this one, in the same family; nullopt if that passes the last
  // address of the family (255.255.255.255 or ffff:...:ffff).
  std::optional<IpAddress> Add(uint64_t offset) const;
  // How far this address is after `base`: nullopt if the families differ, this is before
  // `base`, or the distance does not fit in 64 bits (only possible for IPv6).
  std::optional<uint64_t> OffsetFrom(const IpAddress& base) const;

  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  IpAddress(Family family, const std::array<uint8_t, 16>& bytes) : family_(family), bytes_(bytes) {}

  friend class IpPrefix;

  // The order of the members is the sort order: family first, then the bytes (big-endian, so
  // byte order is numeric order). IPv4 uses bytes_[0..3]; the rest stay zero.
  Family family_ = Family::kV4;
  std::array<uint8_t, 16> bytes_{};
};

std::ostream& operator<<(std::ostream& os, const IpAddress& address);

// The address as the kernel's struct (network byte order). IPv4 only: an IPv6 address gives
// 0.0.0.0, so callers check the family first.
in_addr ToInAddr(const IpAddress& address);
// And back: an IPv4 address from the kernel's struct.
IpAddress FromInAddr(in_addr address);

// A subnet: a network address and a prefix length, with no host bits set (so two prefixes
// are equal exactly when they denote the same set of addresses). Ordered by address, then
// length.
class IpPrefix {
 public:
  // 0.0.0.0/0.
  IpPrefix() = default;

  // "10.88.0.0/16", "fd00:88::/64". InvalidArgument, quoting the text, for: no '/', a length
  // that is not a number or is above 32 (IPv4) or 128 (IPv6), a bad address, and host bits set:
  // `subnet "10.88.1.5/24" has host bits set; did you mean 10.88.1.0/24?`.
  static absl::StatusOr<IpPrefix> Parse(absl::string_view text);
  // The prefix of `length` bits that contains `address` (host bits cleared). InvalidArgument
  // if `length` is negative or longer than the address.
  static absl::StatusOr<IpPrefix> Containing(const IpAddress& address, int length);

  Family family() const { return network_.family(); }
  // The first address (all host bits zero).
  const IpAddress& network() const { return network_; }
  int length() const { return length_; }
  // bit_length() - length(): 0 to 128.
  int host_bits() const { return network_.bit_length() - length_; }
  // The last address (all host bits one); the broadcast address of an IPv4 subnet.
  IpAddress Last() const;

  bool Contains(const IpAddress& address) const;
  // True if every address of `other` is in this prefix.
  bool Contains(const IpPrefix& other) const;
  // True if the two share at least one address (then one contains the other).
  bool Overlaps(const IpPrefix& other) const;

  // "10.88.0.0/16".
  std::string ToString() const;

  friend auto operator<=>(const IpPrefix&, const IpPrefix&) = default;
  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;

 private:
  IpPrefix(const IpAddress& network, int length) : network_(network), length_(length) {}

  IpAddress network_;
  int length_ = 0;
};

std::ostream& operator<<(std::ostream& os, const IpPrefix& prefix);

// An address of an interface with its prefix length, host bits and all ("10.0.12.1/30"), as
// `ip address add` takes it.
struct InterfaceAddress {
  IpAddress address;
  int length = 0;

  // InvalidArgument, quoting the text, for no '/', a bad address or a bad length.
  static absl::StatusOr<InterfaceAddress> Parse(absl::string_view text);
  // The subnet it is on ("10.0.12.0/30").
  IpPrefix subnet() const;
  std::string ToString() const;
  friend bool operator==(const InterfaceAddress&, const InterfaceAddress&) = default;
};

}  // namespace mesh::netplane::ipam
