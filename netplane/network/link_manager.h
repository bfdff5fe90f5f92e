#pragma once

// Point-to-point links (containerlab's links): a veth pair straight between two containers'
// network namespaces, no bridge, no IPAM, no NAT. Each end has its own name, addresses (IPv4
// and IPv6), MTU, egress limit and static routes through the other end.
//
// The kernel is the record: the first end carries the link's alias, "mesh link " + the link's
// id + " " + a hash of everything configured on it (LinkAlias), so a link whose configuration
// changed, or one nothing wants any more, is found by looking at the namespaces alone. A veth
// pair dies whole, so deleting the first end removes the link. Both ends live in containers'
// namespaces: a container's namespace going takes its links with it, and the host namespace
// never holds any part of a link.

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "netplane/ipam/ip.h"
#include "netplane/network/network_manager.h"

namespace mesh::netplane {

struct LinkEnd {
  std::string container_id;  // for messages and the end's MAC
  std::string netns_path;
  std::string ifname;
  std::vector<ipam::InterfaceAddress> addresses;
  int mtu = 1500;
  std::optional<EgressLimit> egress;
  // Added once the addresses are there; each `via` must be on one of the end's addresses'
  // subnets.
  std::vector<StaticRoute> routes;
};

struct LinkConfig {
  // Unique among links, stable, without spaces ("lab/r1:eth1--r2:eth1").
  std::string id;
  std::array<LinkEnd, 2> ends;
};

// What one namespace holds of links: an interface whose alias says it is the first end of a
// link.
struct PlumbedLink {
  std::string ifname;
  std::string alias;
};

// The alias the first end carries: "mesh link <id> <16 hex digits>", the digits a stable hash
// of the whole configuration (names, addresses, MTUs, limits, routes, netns paths).
std::string LinkAlias(const LinkConfig& link);
// True for an alias LinkAlias made (of any link).
bool IsLinkAlias(absl::string_view alias);
// The id inside a LinkAlias ("" if it is none).
std::string LinkIdOfAlias(absl::string_view alias);

// The tbf queue for an egress limit: what leaves at the rate in a fiftieth of a second, above
// the bucket. Shared by attachments and links.
absl::Status SetEgress(netlink::RtnlOps& ops, int ifindex, const EgressLimit& egress);

// Makes, lists and removes links. Stateless (the kernel holds the state) and thread-safe as
// far as its RtnlOpener is.
class LinkManager {
 public:
  explicit LinkManager(RtnlOpener open_in_netns) : open_(std::move(open_in_netns)) {}

  // Checks what can be checked without the kernel: names, addresses, MTUs, routes'
  // next hops. InvalidArgument naming the end.
  static absl::Status Validate(const LinkConfig& link);

  // Makes the pair (the first end carries LinkAlias), then on each end: IPv6 off unless it has
  // an IPv6 address, up, addresses, egress limit, routes. On error nothing of it stays.
  // AlreadyExists if a name is taken in either namespace.
  absl::Status Create(const LinkConfig& link);
  // True if the link is there as configured: the first end exists with the link's current
  // alias (the pair is whole by the kernel's rules).
  absl::StatusOr<bool> Present(const LinkConfig& link);
  // The first ends of links in one namespace.
  absl::StatusOr<std::vector<PlumbedLink>> List(const std::string& netns_path);
  // Deletes the link whose first end is `ifname` in `netns_path` (both ends go); succeeds when
  // it is already gone, or the namespace is.
  absl::Status Remove(const std::string& netns_path, const std::string& ifname);

 private:
  absl::StatusOr<std::unique_ptr<netlink::RtnlOps>> OpenIn(const std::string& netns_path,
                                                           NamespaceHandle* handle);
  absl::Status ConfigureEnd(netlink::RtnlOps& ops, const LinkEnd& end);

  RtnlOpener open_;
};

}  // namespace mesh::netplane
