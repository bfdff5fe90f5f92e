#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "base/ns/namespace_handle.h"
#include "netplane/ipam/ip.h"
#include "netplane/ipam/ipam.h"
#include "netplane/netfilter/conntrack.h"
#include "netplane/netfilter/nft_monitor.h"
#include "netplane/netlink/rtnl_ops.h"
#include "netplane/network/link_reaper.h"
#include "netplane/nft/nft_table.h"
#include "netplane/nft/ruleset.h"

namespace mesh::netplane {

enum class Protocol { kTcp, kUdp };
absl::string_view ProtocolName(Protocol protocol);

// A published port: host_port on the host (on every host address, or on `host_address` only)
// forwarded to container_port of the container's address on the network.
struct PortMapping {
  Protocol protocol = Protocol::kTcp;
  std::optional<ipam::IpAddress> host_address;
  uint16_t host_port = 0;
  uint16_t container_port = 0;
  std::string ToString() const;  // "[203.0.113.1:]8080->80/tcp"
};

// A static route inside the container, through a next hop on the attachment's network.
struct StaticRoute {
  ipam::IpPrefix destination;  // 0.0.0.0/0: the default route
  ipam::IpAddress via;
  std::string ToString() const;  // "10.77.2.0/24 via 10.77.1.254"
  friend bool operator==(const StaticRoute&, const StaticRoute&) = default;
};

// What a container may send on one attachment: a token bucket filter (tc tbf) on its
// interface.
struct EgressLimit {
  uint64_t rate_bps = 0;     // bits per second
  uint64_t burst_bytes = 0;  // the bucket
  friend bool operator==(const EgressLimit&, const EgressLimit&) = default;
};

struct NetworkConfig {
  std::string name;
  std::optional<ipam::IpPrefix> subnet;    // unset: the first free one of the default pool
  std::optional<ipam::IpAddress> gateway;  // unset: the subnet's first address
  int mtu = 1500;
  bool nat = true;        // masquerade traffic that leaves the host through a non-bridge link
  bool internal = false;  // no way out of the network at all (implies no NAT)
};

struct NetworkInfo {
  NetworkConfig config;  // subnet and gateway always set
  std::string bridge;
};

// What a CNI ADD takes (DESIGN.md decision 10).
struct AttachRequest {
  std::string container_id;
  std::string netns_path;  // /proc/PID/ns/net, /run/netns/NAME, ...
  std::string network;
  std::string ifname;                      // "" picks the lowest free ethN of the container
  std::optional<ipam::IpAddress> address;  // static address; unset: from IPAM
  std::vector<PortMapping> ports;
  // Route the container's default traffic via this network's gateway. Unset: only on the
  // container's first network.
  std::optional<bool> default_route;
  // Added inside once the address is there; each `via` must be in the network's subnet. A
  // default route here needs default_route false on every attachment of the container.
  std::vector<StaticRoute> routes;
  std::optional<EgressLimit> egress;
};

// What a CNI result holds.
struct AttachResult {
  std::string container_id;
  std::string network;
  std::string netns_path;
  std::string ifname;       // inside the container
  std::string mac;          // of ifname
  std::string host_ifname;  // host end of the veth, a port of the network's bridge
  ipam::IpAddress address;
  int prefix_length = 0;
  ipam::IpAddress gateway;
  bool default_route = false;  // the container's default route goes via this network
  std::vector<PortMapping> ports;
  std::vector<StaticRoute> routes;
  std::optional<EgressLimit> egress;
};

// Everything netplane should have in the kernel: what the agent's store holds. Networks have
// subnet and gateway set; attachments have their address set (from the earlier lease).
struct DesiredState {
  std::vector<NetworkConfig> networks;
  std::vector<AttachResult> attachments;
  std::vector<nft::PolicyEntry> policies;  // one per group with a policy
};

struct NetworkManagerOptions {
  std::string state_dir;  // IPAM leases live in <state_dir>/ipam
  ipam::IpPrefix default_pool;
  int default_prefix_length = 24;
};

// Opens rtnetlink in a container's network namespace (injectable for tests).
using RtnlOpener =
    std::function<absl::StatusOr<std::unique_ptr<netlink::RtnlOps>>(const NamespaceHandle&)>;
// The opener of the real kernel: libnl's rtnetlink in the namespace.
RtnlOpener KernelRtnlOpener();

// Networks, attachments and published ports on one host (the network namespace the manager was
// created in). Thread-safe. Every mutating call validates first, then changes the kernel with
// an undo stack: on error everything it did is rolled back and the error names the object.
class NetworkManager {
 public:
  static absl::StatusOr<std::unique_ptr<NetworkManager>> Create(NetworkManagerOptions options);
  // `reaper_ops`: a second handle on the host namespace for deleting detached veth pairs in the
  // background (LinkReaper); null: Detach deletes them itself.
  NetworkManager(NetworkManagerOptions options, std::unique_ptr<netlink::RtnlOps> host,
                 std::unique_ptr<nft::NftTable> nft, std::unique_ptr<ipam::Ipam> ipam,
                 RtnlOpener open_in_netns, std::unique_ptr<netlink::RtnlOps> reaper_ops = nullptr);

  // Creates the bridge, its gateway address, the IPAM pool and the nftables entries.
  // InvalidArgument for bad names/MTU/subnets, AlreadyExists for a taken name.
  absl::StatusOr<NetworkInfo> CreateNetwork(const NetworkConfig& config);
  // FailedPrecondition while containers are attached; NotFound for an unknown network.
  absl::Status DeleteNetwork(absl::string_view name);
  std::vector<NetworkInfo> ListNetworks() const;
  absl::StatusOr<NetworkInfo> GetNetwork(absl::string_view name) const;

  absl::StatusOr<AttachResult> Attach(const AttachRequest& request);
  // Removes the published ports and the lease and cuts the veth pair off (down); the pair itself
  // is deleted in the background within milliseconds (see LinkReaper), and an Attach that needs
  // its names waits for that. NotFound if not attached.
  absl::Status Detach(absl::string_view container_id, absl::string_view network);
  // Blocks until every veth pair detached so far is deleted from the kernel.
  void AwaitDetachedLinks();
  std::vector<AttachResult> ListAttachments() const;

  // Makes `policy` the policy of its group (replacing the one before), in one atomic
  // rebuild of mesh's table: flows already established are not cut (docs/netplane.md,
  // "Policies"). A policy with no rules and no default deny removes the group's.
  absl::Status SetPolicy(const nft::PolicyEntry& policy);
  absl::Status RemovePolicy(absl::string_view group);

  // Probes of `meshctl check`: while started, IPv4 packets matching `trace` carry nftrace
  // (nft::TraceEntry). Counted: concurrent checks of the same pair and protocol share the
  // element, the last StopTrace removes it. FailedPrecondition while no network exists (mesh's
  // tables are made with the first one, and nothing of mesh is on the path without them).
  absl::Status StartTrace(const nft::TraceEntry& trace);
  void StopTrace(const nft::TraceEntry& trace);

  // Publishes one more port of an attached container. AlreadyExists if the host port is taken.
  absl::Status PublishPort(absl::string_view container_id, absl::string_view network,
                           const PortMapping& port);
  absl::Status UnpublishPort(absl::string_view container_id, absl::string_view network,
                             const PortMapping& port);

  // Makes the kernel and IPAM match `desired` and adopts it as the manager's state: creates
  // missing bridges, veth pairs, addresses, routes and leases; removes links with mesh's
  // names that nothing in `desired` owns, and leases and pools nothing uses; rebuilds mesh's
  // nftables table in one transaction. What the agent calls at start-up, also after a crash.
  // Keeps going past errors (a container whose netns is gone) and reports them all at the end.
  absl::Status Reconcile(const DesiredState& desired);

  // Restores mesh's nftables table whenever another program deletes or changes it (watching
  // nftables notifications), within about 100 ms. Runs until the manager is destroyed.
  absl::Status StartSelfRepair();

  // The nftables state that the current networks and ports call for.
  nft::DesiredState NftState() const;

 private:
  struct Network {
    NetworkInfo info;
    int bridge_index = 0;
  };
  using AttachmentKey = std::pair<std::string, std::string>;  // container, network

  absl::Status EnsureNftTable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckPortsFree(const std::vector<PortMapping>& ports) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Keeps port_uses_ in step with attachments_: +1 (or -1) for each of `ports`.
  void CountPorts(const std::vector<PortMapping>& ports, int delta)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  nft::NetworkEntry NftNetwork(const Network& network) const;
  std::vector<nft::PortEntry> NftPorts(const AttachResult& attachment,
                                       const std::vector<PortMapping>& ports) const;
  nft::DesiredState NftStateLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_, retired_mu_);
  // Both of mesh's tables, rebuilt from the registry in one transaction.
  absl::Status RebuildNftTables() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes `host_ends` out of the cut-off set (`table bridge mesh`); those not in it are skipped.
  absl::Status ReleaseRetired(const std::vector<std::string>& host_ends)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(retired_mu_);
  // The reaper's step after a batch of pairs is deleted: their cut-off goes, then their stale
  // UDP flows.
  void AfterPairsDeleted(const std::vector<std::string>& host_ends,
                         const std::vector<netfilter::ProtoPort>& stale_flows);
  // One transaction applying `change` (nft::AddPort or nft::RemovePort) to every port: an
  // operation costs one nftables commit however many ports it touches.
  nft::Transaction PortsTransaction(const AttachResult& attachment,
                                    const std::vector<PortMapping>& ports,
                                    nft::Transaction (*change)(const nft::PortEntry&)) const;
  // Drops stale UDP flows to the host ports of `ports` (see FlushConntrack in the .cc).
  void FlushConntrack(const std::vector<PortMapping>& ports);
  static std::vector<netfilter::ProtoPort> StaleFlowPorts(const std::vector<PortMapping>& ports);
  // The kernel side of an attachment (veth pair, hairpin, address and route inside); undone on
  // error. `result` carries the address and names.
  // `inside`: the namespace's rtnetlink, if the caller has it open already.
  absl::Status PlumbAttachment(const Network& network, const AttachResult& result,
                               const NamespaceHandle& netns,
                               std::unique_ptr<netlink::RtnlOps> inside = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status EnsureBridge(Network& network) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RepairNftTable(const std::string& reason);
  // The first "ethN" that is neither in `used` nor the name of another of the container's
  // attachments.
  std::string NextIfname(absl::string_view container_id, std::set<std::string> used) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const NetworkManagerOptions options_;
  const std::unique_ptr<netlink::RtnlOps> host_;
  const std::unique_ptr<nft::NftTable> nft_;
  const std::unique_ptr<ipam::Ipam> ipam_;
  const RtnlOpener open_in_netns_;

  // One lock over the registry and the kernel changes that keep it true. Kernel work per call
  // is a handful of netlink round trips (well under a millisecond each).
  mutable absl::Mutex mu_;
  bool nft_ready_ ABSL_GUARDED_BY(mu_) = false;
  bool ip_forward_set_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Network, std::less<>> networks_ ABSL_GUARDED_BY(mu_);
  std::map<AttachmentKey, AttachResult> attachments_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, nft::PolicyEntry, std::less<>> policies_ ABSL_GUARDED_BY(mu_);
  std::map<nft::TraceEntry, int> traces_ ABSL_GUARDED_BY(mu_);  // entry -> checks using it
  // How many published ports use each protocol/host port (PortKey): CheckPortsFree looks at
  // the attachments only when the count is not 0, so a publish costs the same at any N.
  std::map<uint32_t, int> port_uses_ ABSL_GUARDED_BY(mu_);
  // Host ends of detached pairs that `table bridge mesh` cuts off until the reaper has deleted
  // them. Its own lock: the reaper's thread takes it while a caller holding mu_ waits for it.
  mutable absl::Mutex retired_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::set<std::string, std::less<>> retired_ ABSL_GUARDED_BY(retired_mu_);
  uint32_t nft_portid_ = 0;  // netlink port of our nftables socket (0 with a fake)
  // Flushes conntrack entries of a host port after its mapping changed; unset with fakes.
  std::function<absl::StatusOr<int>(const std::vector<netfilter::ProtoPort>&)> flush_conntrack_;
  std::unique_ptr<LinkReaper> reaper_;              // null: links are deleted in place
  std::unique_ptr<netfilter::NftMonitor> monitor_;  // last: stopped before the rest goes
};

}  // namespace mesh::netplane
