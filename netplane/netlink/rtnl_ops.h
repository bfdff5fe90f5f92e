#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "netplane/ipam/ip.h"

namespace mesh::netplane::netlink {

// What mesh needs to know about a link.
struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;  // "bridge", "veth", ... ("" if the kernel does not say)
  int master = 0;    // ifindex of the bridge it is a port of, 0 if none
  bool up = false;
  int mtu = 0;
  std::string mac;     // "02:0a:..." ("" if none)
  std::string alias;   // IFLA_IFALIAS; mesh writes the owner of its links here
  uint32_t group = 0;  // IFLA_GROUP; mesh moves links it retires into kRetiredLinkGroup
};

// The link group (IFLA_GROUP) of links mesh has taken out of service and deletes in batches:
// one RTM_DELLINK for a whole group costs one set of RCU grace periods instead of one per link
// (about 30 ms for 50 veth pairs here, against 15 ms for each one alone). "MESH" in ASCII, so
// that no other program picks it by chance.
inline constexpr uint32_t kRetiredLinkGroup = 0x4d455348;

// A veth pair created in one request: the host end here (optionally already a port of a
// bridge, up), the peer directly in another network namespace under its final name and MAC,
// still down (the kernel cannot open a veth before its pair is complete).
struct VethSpec {
  std::string name;  // host end, in the namespace of the RtnlOps
  int master = 0;    // bridge ifindex for the host end; 0: none
  int mtu = 1500;
  std::string alias;
  std::string peer_name;  // e.g. "eth0"
  int peer_mtu = 0;       // 0: mtu
  std::array<uint8_t, 6> peer_mac{};
  int peer_netns_fd = -1;  // borrowed; -1: same namespace as the host end
};

// rtnetlink (links, addresses, routes) in ONE network namespace, the one the implementation's
// socket was opened in. Intent-level: each call is one kernel change. Contracts:
// - Create* returns AlreadyExists if the name is taken (the caller decides whether that link is
//   its own), InvalidArgument for names over 15 bytes.
// - DeleteLink succeeds when the link is already gone (teardown is idempotent).
// - AddAddress succeeds when the address is already there.
// - Lookups return NotFound for an absent link.
// Implementations serialize calls internally; callers may use one object from many threads.
class RtnlOps {
 public:
  virtual ~RtnlOps() = default;

  virtual absl::StatusOr<LinkInfo> GetLink(absl::string_view name) = 0;
  // Full dump; for start-up reconcile only (STYLE.md rule 3).
  virtual absl::StatusOr<std::vector<LinkInfo>> ListLinks() = 0;

  virtual absl::Status CreateBridge(absl::string_view name, int mtu, absl::string_view alias) = 0;
  virtual absl::Status CreateVeth(const VethSpec& spec) = 0;
  virtual absl::Status DeleteLink(absl::string_view name) = 0;
  virtual absl::Status SetLinkUp(absl::string_view name) = 0;
  // Moves the link into link group `group` and, with `down`, sets it down, in one request;
  // succeeds when the link is already gone. A down veth end carries nothing, but setting a
  // bridge port down costs work that grows with the bridge's ports (state selection, a
  // forwarding-database flush): callers that cut the link off otherwise leave it up.
  virtual absl::Status RetireLink(absl::string_view name, uint32_t group, bool down) = 0;
  // Deletes every link of group `group` (not 0) in one request; succeeds when there is none.
  virtual absl::Status DeleteLinkGroup(uint32_t group) = 0;
  // Hairpin mode of a bridge port (IFLA_BRPORT_MODE): lets a frame leave through the port it
  // came in on, which a container reaching its own published port through the host needs.
  virtual absl::Status SetHairpin(absl::string_view port, bool on) = 0;

  virtual absl::Status AddAddress(int ifindex, const ipam::IpAddress& address,
                                  int prefix_length) = 0;
  // Default route via `gateway` out of `ifindex`. AlreadyExists if a default route exists.
  virtual absl::Status AddDefaultRoute(const ipam::IpAddress& gateway, int ifindex) = 0;
  // Route to `destination` via `gateway` out of `ifindex` (a static route of the main table).
  // AlreadyExists if that destination has a route; InvalidArgument-like kernel refusals
  // (a gateway not on the link: ENETUNREACH) come back as errno statuses.
  virtual absl::Status AddRoute(const ipam::IpPrefix& destination, const ipam::IpAddress& gateway,
                                int ifindex) = 0;
  // The root qdisc of `ifindex` becomes a token bucket filter (tc tbf): `rate_bps` bits per
  // second, `burst_bytes` of bucket, a queue of `limit_bytes`. Replaces what was there.
  virtual absl::Status SetEgressLimit(int ifindex, uint64_t rate_bps, uint64_t burst_bytes,
                                      uint64_t limit_bytes) = 0;
  // net.ipv4.ip_forward=1 in this namespace (what NAT networks need). A global setting of the
  // namespace: only the kernel implementation writes it, so fakes never touch a real host.
  virtual absl::Status EnableIpv4Forwarding() = 0;
  // No IPv6 on the link (net.ipv6.conf.<name>.disable_ipv6=1): no link-local address, no
  // routes, no neighbour discovery or MLD chatter. mesh's networks are IPv4; without this every
  // bridge port adds IPv6 routes that each IPv6 packet's lookup walks (attach cost grew 4x from
  // 1 to 1000 attachments). Succeeds when the kernel has no IPv6 at all. A sysctl, like
  // EnableIpv4Forwarding: fakes never touch a real host.
  virtual absl::Status DisableIpv6(absl::string_view name) = 0;

  // Destinations of the main table's routes of `family`, without the default route: what a
  // new subnet must not overlap.
  virtual absl::StatusOr<std::vector<ipam::IpPrefix>> ListRouteDestinations(
      ipam::Family family) = 0;
};

}  // namespace mesh::netplane::netlink
