#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "netplane/ipam/ip.h"

namespace mesh::netplane::ipam {

// The addresses of one network's subnet and who holds them. Pure logic: no I/O, not
// thread-safe (Ipam locks and persists). A copyable value. Every change can be undone exactly
// (Release after Allocate plus SetLast of the old cursor, AllocateStatic after Release), which
// is how Ipam takes back a change it could not persist without copying the pool.
//
// Never handed out: the network address, the IPv4 broadcast address and the gateway (which is
// reserved, not leased). IPv6 has no broadcast address, so the last address of an IPv6 subnet
// is usable; its first address (the subnet-router anycast address) is not. An IPv6 subnet
// larger than /64 allocates only from its first 2^64 addresses.
//
// An owner (1 to 255 printable ASCII characters without spaces, by convention
// "<container>/<interface>") holds at most one address per pool; methods given any other
// owner return InvalidArgument. Error messages name the subnet but not the network: callers add
// that.
class Pool {
 public:
  // Longest prefixes a pool accepts: room for a gateway and at least one container.
  static constexpr int kMaxV4PrefixLength = 30;
  static constexpr int kMaxV6PrefixLength = 126;
  static constexpr size_t kMaxOwnerLength = 255;

  // A pool with no leases. `gateway` defaults to the first address after the network address
  // (10.88.1.1 in 10.88.1.0/24). InvalidArgument if the prefix is too long, or if the gateway
  // is outside the subnet (`gateway 10.89.0.1 is outside subnet 10.88.1.0/24`) or is the
  // network or broadcast address.
  static absl::StatusOr<Pool> Create(const IpPrefix& subnet, std::optional<IpAddress> gateway);
  // A pool rebuilt from persisted state, checked as strictly as Create and AllocateStatic
  // check: every lease leasable, owners unique, `last` (the cursor) a leasable address or
  // nullopt. InvalidArgument on any violation.
  static absl::StatusOr<Pool> Restore(const IpPrefix& subnet, const IpAddress& gateway,
                                      std::optional<IpAddress> last,
                                      const std::map<IpAddress, std::string>& leases);

  const IpPrefix& subnet() const { return subnet_; }
  const IpAddress& gateway() const { return gateway_; }
  // Address -> owner, in address order.
  const std::map<IpAddress, std::string>& leases() const { return leases_; }
  // The address Allocate handed out last (its scan cursor), or nullopt if it never did.
  // AllocateStatic and Release do not move it.
  const std::optional<IpAddress>& last() const { return last_; }
  // How many addresses can be leased at once (gateway excluded): 253 for a /24, 1 for a /30.
  // At most 2^64 - 1 for IPv6.
  uint64_t capacity() const { return capacity_; }
  // First and last addresses Allocate may hand out.
  const IpAddress& first_host() const { return first_host_; }
  const IpAddress& last_host() const { return last_host_; }

  // The address `owner` holds, or nullopt.
  std::optional<IpAddress> Lookup(absl::string_view owner) const;

  // Leases the next free address after last() to `owner`, wrapping around to first_host()
  // after last_host(), so a just-released address is not reused at once (as CNI host-local
  // does). If `owner` already holds an address it is returned and nothing changes.
  // ResourceExhausted: `no free address in 10.88.1.0/24 (253 of 253 leased)`.
  // O(log n + k), k being the number of leased addresses between the cursor and the next
  // free address (small in practice: leases pile up behind the cursor, not ahead of it).
  absl::StatusOr<IpAddress> Allocate(absl::string_view owner);
  // Leases `address` to `owner`. Idempotent: OK if `owner` already holds exactly `address`.
  // InvalidArgument if `address` is outside the subnet, the network, broadcast or gateway
  // address. AlreadyExists if another owner holds it (`address 10.88.1.7 is already leased to
  // "web-1/eth0"`) or `owner` holds a different address.
  absl::StatusOr<IpAddress> AllocateStatic(const IpAddress& address, absl::string_view owner);
  // Ends `owner`'s lease and returns the address it held; nullopt (and no change) if it held
  // none.
  std::optional<IpAddress> Release(absl::string_view owner);
  // Moves the allocation cursor to `last` (nullopt: as if Allocate had never run), for
  // replaying a journal and for undoing an Allocate. InvalidArgument, and no change, if `last`
  // is not an address Restore would accept as the cursor.
  absl::Status SetLast(std::optional<IpAddress> last);

 private:
  Pool(const IpPrefix& subnet, const IpAddress& gateway);

  // OK if `address` may be leased at all (ignoring who holds it now).
  absl::Status CheckLeasable(const IpAddress& address) const;
  // The first free address in [from, to] (to >= from, both within the host range), or nullopt.
  std::optional<IpAddress> FindFree(const IpAddress& from, const IpAddress& to) const;

  IpPrefix subnet_;
  IpAddress gateway_;
  IpAddress first_host_;
  IpAddress last_host_;
  uint64_t capacity_ = 0;
  std::optional<IpAddress> last_;
  std::map<IpAddress, std::string> leases_;
  std::map<std::string, IpAddress, std::less<>> by_owner_;
};

}  // namespace mesh::netplane::ipam
