#pragma once

#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "base/ns/namespace_handle.h"
#include "netplane/netlink/nl_ptr.h"
#include "netplane/netlink/rtnl_ops.h"

namespace mesh::netplane::netlink {

// RtnlOps on libnl-route, over one long-lived NETLINK_ROUTE socket bound to a namespace.
class LibnlRtnlOps : public RtnlOps {
 public:
  // A socket in the caller's current network namespace.
  static absl::StatusOr<std::unique_ptr<LibnlRtnlOps>> Open();
  // A socket in `netns`, created on a short-lived thread that joined it (the socket keeps the
  // namespace; the calling thread never switches).
  static absl::StatusOr<std::unique_ptr<LibnlRtnlOps>> OpenIn(const NamespaceHandle& netns);

  absl::StatusOr<LinkInfo> GetLink(absl::string_view name) override;
  absl::StatusOr<std::vector<LinkInfo>> ListLinks() override;
  absl::Status CreateBridge(absl::string_view name, int mtu, absl::string_view alias) override;
  absl::Status CreateVeth(const VethSpec& spec) override;
  absl::Status DeleteLink(absl::string_view name) override;
  absl::Status SetLinkUp(absl::string_view name) override;
  absl::Status RetireLink(absl::string_view name, uint32_t group, bool down) override;
  absl::Status DeleteLinkGroup(uint32_t group) override;
  absl::Status SetHairpin(absl::string_view port, bool on) override;
  absl::Status AddAddress(int ifindex, const ipam::IpAddress& address, int prefix_length) override;
  absl::Status AddDefaultRoute(const ipam::IpAddress& gateway, int ifindex) override;
  absl::Status AddRoute(const ipam::IpPrefix& destination, const ipam::IpAddress& gateway,
                        int ifindex) override;
  absl::Status SetEgressLimit(int ifindex, uint64_t rate_bps, uint64_t burst_bytes,
                              uint64_t limit_bytes) override;
  absl::StatusOr<std::vector<ipam::IpPrefix>> ListRouteDestinations(ipam::Family family) override;
  absl::Status EnableIpv4Forwarding() override;
  absl::Status DisableIpv6(absl::string_view name) override;

 private:
  explicit LibnlRtnlOps(NlPtr<nl_sock> sock) : sock_(std::move(sock)) {}

  // Set by OpenIn: sysctls of that namespace are written from a thread inside it.
  std::optional<NamespaceHandle> netns_;
  // Sets the alias of a link just created (empty: nothing); deletes the link if that fails.
  absl::Status SetAliasAfterCreateLocked(const std::string& name, const std::string& alias,
                                         const std::string& what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<NlPtr<rtnl_link>> GetLinkLocked(absl::string_view name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One static unicast route of the main table; `what` names it in errors.
  absl::Status AddRouteAs(const ipam::IpPrefix& destination, const ipam::IpAddress& gateway,
                          int ifindex, const std::string& what);

  absl::Mutex mu_;
  NlPtr<nl_sock> sock_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mesh::netplane::netlink
