#include "netplane/network/network_manager.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>

#include <algorithm>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/names.h"
#include "base/rollback.h"
#include "base/status_macros.h"
#include "netplane/netfilter/conntrack.h"
#include "netplane/netlink/libnl_rtnl_ops.h"
#include "netplane/network/link_manager.h"
#include "netplane/network/names.h"
#include "netplane/nft/kernel_nft_table.h"

namespace mesh::netplane {
namespace {

constexpr size_t kMaxBridgePorts = 1023;  // BR_MAX_PORTS - 1: bridge port numbers start at 1

constexpr int kMinMtu = 68;  // RFC 791's minimum IPv4 MTU
constexpr int kMaxMtu = 65535;

std::string Quote(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

// The IPAM owner of an attachment's address: one lease per container interface.
std::string LeaseOwner(absl::string_view container_id, absl::string_view ifname) {
  return absl::StrCat(container_id, "/", ifname);
}

// Teardown and reconcile run every step and report all failures at the end (STYLE.md rule 7).
class ErrorList {
 public:
  void Add(const absl::Status& status) {
    if (!status.ok()) errors_.push_back(std::string(status.message()));
  }
  // OK, or Internal "<what>: <error>; <error>".
  absl::Status ToStatus(absl::string_view what) const {
    if (errors_.empty()) return absl::OkStatus();
    return absl::InternalError(absl::StrCat(what, ": ", absl::StrJoin(errors_, "; ")));
  }
  size_t size() const { return errors_.size(); }

 private:
  std::vector<std::string> errors_;
};

std::string NetworkAlias(absl::string_view network) {
  return absl::StrCat("mesh network ", network);
}
std::string AttachmentAlias(absl::string_view container, absl::string_view network) {
  return absl::StrCat("mesh container ", container, " network ", network);
}

// The protocol and host port of a mapping, as one number (NetworkManager::port_uses_).
uint32_t PortKey(const PortMapping& p) {
  return (static_cast<uint32_t>(p.protocol) << 16) | p.host_port;
}

// Two mappings collide when they share protocol and host port and could both receive the same
// packet: either one listens on every host address, or both on the same one.
bool Collides(const PortMapping& a, const PortMapping& b) {
  if (a.protocol != b.protocol || a.host_port != b.host_port) return false;
  return !a.host_address || !b.host_address || *a.host_address == *b.host_address;
}

absl::Status ValidatePorts(const std::vector<PortMapping>& ports) {
  for (size_t i = 0; i < ports.size(); ++i) {
    const PortMapping& p = ports[i];
    if (p.host_port == 0 || p.container_port == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("published port ", p.ToString(), ": ports must be between 1 and 65535"));
    }
    if (p.host_address && p.host_address->family() != ipam::Family::kV4) {
      return absl::InvalidArgumentError(absl::StrCat("published port ", p.ToString(),
                                                     ": only IPv4 host addresses are supported"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (Collides(p, ports[j])) {
        return absl::InvalidArgumentError(absl::StrCat("published ports ", ports[j].ToString(),
                                                       " and ", p.ToString(),
                                                       " use the same host port"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view ProtocolName(Protocol protocol) {
  return protocol == Protocol::kTcp ? "tcp" : "udp";
}

std::string StaticRoute::ToString() const {
  return absl::StrCat(destination.length() == 0 ? "default" : destination.ToString(), " via ",
                      via.ToString());
}

std::string PortMapping::ToString() const {
  return absl::StrCat(host_address ? absl::StrCat(host_address->ToString(), ":") : "", host_port,
                      "->", container_port, "/", ProtocolName(protocol));
}

RtnlOpener KernelRtnlOpener() {
  return [](const NamespaceHandle& ns) -> absl::StatusOr<std::unique_ptr<netlink::RtnlOps>> {
    MESH_ASSIGN_OR_RETURN(std::unique_ptr<netlink::LibnlRtnlOps> ops,
                          netlink::LibnlRtnlOps::OpenIn(ns));
    return std::unique_ptr<netlink::RtnlOps>(std::move(ops));
  };
}

absl::StatusOr<std::unique_ptr<NetworkManager>> NetworkManager::Create(
    NetworkManagerOptions options) {
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<netlink::LibnlRtnlOps> host, netlink::LibnlRtnlOps::Open());
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<netlink::LibnlRtnlOps> reaper_ops,
                        netlink::LibnlRtnlOps::Open());
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<nft::KernelNftTable> nft, nft::KernelNftTable::Create());
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<ipam::Ipam> ipam,
                        ipam::Ipam::Open(absl::StrCat(options.state_dir, "/ipam")));
  RtnlOpener opener = KernelRtnlOpener();
  const uint32_t portid = nft->portid();
  auto manager =
      std::make_unique<NetworkManager>(std::move(options), std::move(host), std::move(nft),
                                       std::move(ipam), std::move(opener), std::move(reaper_ops));
  manager->nft_portid_ = portid;
  auto flusher = std::make_shared<netfilter::ConntrackFlusher>(netfilter::ConntrackFlusher::Open());
  manager->flush_conntrack_ = [flusher](const std::vector<netfilter::ProtoPort>& p) {
    return flusher->Flush(p);
  };
  return manager;
}

NetworkManager::NetworkManager(NetworkManagerOptions options,
                               std::unique_ptr<netlink::RtnlOps> host,
                               std::unique_ptr<nft::NftTable> nft, std::unique_ptr<ipam::Ipam> ipam,
                               RtnlOpener open_in_netns,
                               std::unique_ptr<netlink::RtnlOps> reaper_ops)
    : options_(std::move(options)),
      host_(std::move(host)),
      nft_(std::move(nft)),
      ipam_(std::move(ipam)),
      open_in_netns_(std::move(open_in_netns)),
      reaper_(reaper_ops ? std::make_unique<LinkReaper>(
                               std::move(reaper_ops),
                               [this](const std::vector<std::string>& host_ends,
                                      const std::vector<netfilter::ProtoPort>& stale_flows) {
                                 AfterPairsDeleted(host_ends, stale_flows);
                               })
                         : nullptr) {}

absl::Status NetworkManager::EnsureNftTable() {
  if (nft_ready_) return absl::OkStatus();
  MESH_RETURN_IF_ERROR(Annotate(RebuildNftTables(), "create mesh's nftables tables"));
  nft_ready_ = true;
  return absl::OkStatus();
}

absl::Status NetworkManager::RebuildNftTables() {
  // Under retired_mu_ from the snapshot to the commit: the reaper cannot release a name in
  // between, which this rebuild would then put back.
  absl::MutexLock lock(&retired_mu_);
  return nft_->Apply(nft::FullRebuild(NftStateLocked()));
}

absl::Status NetworkManager::ReleaseRetired(const std::vector<std::string>& host_ends) {
  std::vector<std::string> ours;
  for (const std::string& name : host_ends) {
    if (retired_.contains(name)) ours.push_back(name);
  }
  if (ours.empty()) return absl::OkStatus();
  MESH_RETURN_IF_ERROR(Annotate(nft_->Apply(nft::ReleasePorts(ours)),
                                absl::StrCat("end the cut-off of ", absl::StrJoin(ours, ", "))));
  for (const std::string& name : ours) retired_.erase(name);
  return absl::OkStatus();
}

void NetworkManager::AfterPairsDeleted(const std::vector<std::string>& host_ends,
                                       const std::vector<netfilter::ProtoPort>& stale_flows) {
  {
    absl::MutexLock lock(&retired_mu_);
    if (absl::Status s = ReleaseRetired(host_ends); !s.ok()) {
      // Harmless until one of the names comes back: Attach retries it then.
      MESH_LOG(Warning) << s;
    }
  }
  if (stale_flows.empty() || !flush_conntrack_) return;
  if (absl::StatusOr<int> n = flush_conntrack_(stale_flows); !n.ok()) {
    MESH_LOG(Warning) << n.status();
  }
}

nft::NetworkEntry NetworkManager::NftNetwork(const Network& network) const {
  const NetworkConfig& c = network.info.config;
  nft::NetworkEntry e;
  e.name = c.name;
  e.bridge = network.info.bridge;
  e.subnet = ipam::ToInAddr(c.subnet->network());
  e.prefix_length = c.subnet->length();
  e.nat = c.nat && !c.internal;
  e.internal = c.internal;
  return e;
}

std::vector<nft::PortEntry> NetworkManager::NftPorts(const AttachResult& attachment,
                                                     const std::vector<PortMapping>& ports) const {
  std::vector<nft::PortEntry> out;
  for (const PortMapping& p : ports) {
    nft::PortEntry e;
    e.proto = p.protocol == Protocol::kTcp ? IPPROTO_TCP : IPPROTO_UDP;
    if (p.host_address) e.host_address = ipam::ToInAddr(*p.host_address);
    e.host_port = p.host_port;
    e.container_address = ipam::ToInAddr(attachment.address);
    e.container_port = p.container_port;
    e.owner = absl::StrCat(attachment.container_id, "/", attachment.network);
    out.push_back(std::move(e));
  }
  return out;
}

nft::Transaction NetworkManager::PortsTransaction(
    const AttachResult& attachment, const std::vector<PortMapping>& ports,
    nft::Transaction (*change)(const nft::PortEntry&)) const {
  nft::Transaction transaction;
  for (const nft::PortEntry& e : NftPorts(attachment, ports)) transaction.Append(change(e));
  return transaction;
}

nft::DesiredState NetworkManager::NftStateLocked() const {
  nft::DesiredState state;
  for (const auto& [name, network] : networks_) state.networks.push_back(NftNetwork(network));
  for (const auto& [key, attachment] : attachments_) {
    for (nft::PortEntry& e : NftPorts(attachment, attachment.ports)) {
      state.ports.push_back(std::move(e));
    }
  }
  state.retired_ports.assign(retired_.begin(), retired_.end());
  for (const auto& [group, policy] : policies_) state.policies.push_back(policy);
  for (const auto& [trace, uses] : traces_) state.traces.push_back(trace);
  return state;
}

absl::Status NetworkManager::StartTrace(const nft::TraceEntry& trace) {
  absl::MutexLock lock(&mu_);
  if (!nft_ready_) {
    return absl::FailedPreconditionError(
        "trace a probe: mesh has no network, so no rule of mesh is on any path");
  }
  if (int& uses = traces_[trace]; uses++ > 0) return absl::OkStatus();
  absl::Status s = nft_->Apply(nft::AddTrace(trace));
  if (!s.ok()) traces_.erase(trace);
  return Annotate(s, absl::StrCat("trace probes ", trace.ToString()));
}

void NetworkManager::StopTrace(const nft::TraceEntry& trace) {
  absl::MutexLock lock(&mu_);
  auto it = traces_.find(trace);
  if (it == traces_.end() || --it->second > 0) return;
  traces_.erase(it);
  if (!nft_ready_) return;
  if (absl::Status s = nft_->Apply(nft::RemoveTrace(trace)); !s.ok()) {
    // Harmless: probes of that pair get traced until the next rebuild.
    MESH_LOG(Warning) << "stop tracing probes " << trace.ToString() << ": " << s;
  }
}

absl::Status NetworkManager::SetPolicy(const nft::PolicyEntry& policy) {
  if (policy.rules.empty() && !policy.default_deny) return RemovePolicy(policy.group);
  absl::MutexLock lock(&mu_);
  std::optional<nft::PolicyEntry> before;
  if (auto it = policies_.find(policy.group); it != policies_.end()) before = it->second;
  policies_[policy.group] = policy;
  if (!nft_ready_) return absl::OkStatus();  // the table is made with it, with the first network
  absl::Status s = RebuildNftTables();
  if (!s.ok()) {
    if (before) {
      policies_[policy.group] = *before;
    } else {
      policies_.erase(policy.group);
    }
  }
  return Annotate(s, absl::StrCat("policy of group ", Quote(policy.group)));
}

absl::Status NetworkManager::RemovePolicy(absl::string_view group) {
  absl::MutexLock lock(&mu_);
  auto it = policies_.find(group);
  if (it == policies_.end()) return absl::OkStatus();
  nft::PolicyEntry before = it->second;
  policies_.erase(it);
  if (!nft_ready_) return absl::OkStatus();
  absl::Status s = RebuildNftTables();
  if (!s.ok()) policies_.emplace(before.group, before);
  return Annotate(s, absl::StrCat("remove the policy of group ", Quote(group)));
}

nft::DesiredState NetworkManager::NftState() const {
  absl::MutexLock lock(&mu_);
  absl::MutexLock retired_lock(&retired_mu_);
  return NftStateLocked();
}

std::vector<netfilter::ProtoPort> NetworkManager::StaleFlowPorts(
    const std::vector<PortMapping>& ports) {
  // UDP only, like Docker and kube-proxy: a UDP "flow" lives as long as its sender keeps
  // sending, so an entry made before a mapping changed steers it wrong for good. A TCP client's
  // next connection gets a new entry, and the walk costs ~9 ms (the kernel visits every
  // conntrack bucket, 262144 here): too much to pay for nothing.
  std::vector<netfilter::ProtoPort> out;
  for (const PortMapping& p : ports) {
    if (p.protocol == Protocol::kUdp) out.push_back({IPPROTO_UDP, p.host_port});
  }
  return out;
}

void NetworkManager::FlushConntrack(const std::vector<PortMapping>& ports) {
  std::vector<netfilter::ProtoPort> stale = StaleFlowPorts(ports);
  if (!flush_conntrack_ || stale.empty()) return;
  absl::StatusOr<int> flushed = flush_conntrack_(stale);
  if (!flushed.ok()) {
    // The mapping itself is in place; a stale flow only delays it until the entry expires.
    MESH_LOG(Warning) << flushed.status();
  } else if (*flushed > 0) {
    MESH_LOG(Debug) << "flushed " << *flushed << " stale conntrack entries";
  }
}

absl::StatusOr<NetworkInfo> NetworkManager::CreateNetwork(const NetworkConfig& requested) {
  const std::string what = absl::StrCat("create network ", Quote(requested.name));
  MESH_RETURN_IF_ERROR(Annotate(ValidateName(NameKind::kNetwork, requested.name), what));
  if (requested.mtu < kMinMtu || requested.mtu > kMaxMtu) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": mtu ", requested.mtu, " is outside ", kMinMtu, "..", kMaxMtu));
  }
  if (requested.subnet && requested.subnet->network().family() != ipam::Family::kV4) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": subnet ", requested.subnet->ToString(),
                                                   " is IPv6; networks are IPv4 for now"));
  }

  absl::MutexLock lock(&mu_);
  if (networks_.contains(requested.name)) {
    return absl::AlreadyExistsError(absl::StrCat(what, ": a network of that name exists"));
  }
  NetworkConfig config = requested;
  if (!config.subnet) {
    MESH_ASSIGN_OR_RETURN(std::vector<ipam::IpPrefix> in_use,
                          host_->ListRouteDestinations(ipam::Family::kV4));
    for (const auto& [name, network] : networks_) in_use.push_back(*network.info.config.subnet);
    absl::StatusOr<ipam::IpPrefix> chosen =
        ipam::Ipam::ChooseSubnet(options_.default_pool, options_.default_prefix_length, in_use);
    if (!chosen.ok()) return Annotate(chosen.status(), what);
    config.subnet = *chosen;
  }
  MESH_RETURN_IF_ERROR(EnsureNftTable());

  // Order: IPAM pool (validates subnet, gateway and overlaps before any kernel change), bridge,
  // gateway address, forwarding, nftables. Undone in reverse on error.
  Rollback undo;
  MESH_RETURN_IF_ERROR(Annotate(ipam_->AddPool(config.name, *config.subnet, config.gateway), what));
  // Undo steps capture by value: they run when `undo` is destroyed, after later locals.
  // Best effort: the call is already failing with the error that matters.
  undo.Push([this, name = config.name] { ipam_->RemovePool(name).IgnoreError(); });
  MESH_ASSIGN_OR_RETURN(ipam::PoolSnapshot pool, ipam_->Get(config.name));
  config.gateway = pool.gateway;

  Network network;
  network.info.config = config;
  network.info.bridge = BridgeName(config.name);
  absl::Status created =
      host_->CreateBridge(network.info.bridge, config.mtu, NetworkAlias(config.name));
  if (absl::IsAlreadyExists(created)) {
    return absl::AlreadyExistsError(
        absl::StrCat(what, ": link ", Quote(network.info.bridge),
                     " already exists (a leftover of an earlier run: reconcile removes it)"));
  }
  MESH_RETURN_IF_ERROR(Annotate(created, what));
  undo.Push([this, bridge = network.info.bridge] { host_->DeleteLink(bridge).IgnoreError(); });
  MESH_RETURN_IF_ERROR(Annotate(EnsureBridge(network), what));
  if (config.nat && !config.internal && !ip_forward_set_) {
    MESH_RETURN_IF_ERROR(Annotate(host_->EnableIpv4Forwarding(), what));
    ip_forward_set_ = true;
  }
  MESH_RETURN_IF_ERROR(Annotate(nft_->Apply(nft::AddNetwork(NftNetwork(network))), what));
  undo.Commit();
  networks_.emplace(config.name, network);
  MESH_LOG(Info) << "network " << Quote(config.name) << " created: bridge " << network.info.bridge
                 << ", subnet " << config.subnet->ToString() << ", gateway "
                 << config.gateway->ToString();
  return network.info;
}

absl::Status NetworkManager::DeleteNetwork(absl::string_view name) {
  const std::string what = absl::StrCat("delete network ", Quote(name));
  absl::MutexLock lock(&mu_);
  auto it = networks_.find(name);
  if (it == networks_.end()) return absl::NotFoundError(absl::StrCat(what, ": no such network"));
  std::vector<std::string> users;
  for (const auto& [key, attachment] : attachments_) {
    if (key.second == name) users.push_back(Quote(key.first));
  }
  if (!users.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": containers ", absl::StrJoin(users, ", "), " are attached; detach them first"));
  }
  // Teardown order: nftables entries, bridge, IPAM pool. Every step runs; errors are collected.
  // The veth pairs of detached containers go first, so that nothing of the network outlives it.
  if (reaper_) reaper_->AwaitAll();
  ErrorList errors;
  errors.Add(nft_->Apply(nft::RemoveNetwork(NftNetwork(it->second))));
  errors.Add(host_->DeleteLink(it->second.info.bridge));
  errors.Add(ipam_->RemovePool(it->first));
  networks_.erase(it);
  if (networks_.empty()) {
    // Nothing left to program: mesh leaves no table behind (it comes back with a network).
    // Every detached pair is deleted by now (AwaitAll above): no cut-off is needed either.
    absl::MutexLock retired_lock(&retired_mu_);
    errors.Add(nft_->Apply(nft::DeleteTable()));
    retired_.clear();
    nft_ready_ = false;
  }
  MESH_RETURN_IF_ERROR(errors.ToStatus(what));
  MESH_LOG(Info) << "network " << Quote(name) << " deleted";
  return absl::OkStatus();
}

std::vector<NetworkInfo> NetworkManager::ListNetworks() const {
  absl::MutexLock lock(&mu_);
  std::vector<NetworkInfo> out;
  for (const auto& [name, network] : networks_) out.push_back(network.info);
  return out;
}

absl::StatusOr<NetworkInfo> NetworkManager::GetNetwork(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = networks_.find(name);
  if (it == networks_.end()) {
    return absl::NotFoundError(absl::StrCat("network ", Quote(name), ": no such network"));
  }
  return it->second.info;
}

void NetworkManager::CountPorts(const std::vector<PortMapping>& ports, int delta) {
  for (const PortMapping& p : ports) {
    auto it = port_uses_.try_emplace(PortKey(p), 0).first;
    it->second += delta;
    if (it->second <= 0) port_uses_.erase(it);
  }
}

absl::Status NetworkManager::CheckPortsFree(const std::vector<PortMapping>& ports) const {
  for (const PortMapping& wanted : ports) {
    if (!port_uses_.contains(PortKey(wanted))) continue;  // nobody has this protocol/port
    for (const auto& [key, attachment] : attachments_) {
      for (const PortMapping& taken : attachment.ports) {
        if (Collides(wanted, taken)) {
          return absl::AlreadyExistsError(absl::StrCat(
              "published port ", wanted.ToString(), ": host port ", wanted.host_port, "/",
              ProtocolName(wanted.protocol), " is already published by container ",
              Quote(key.first), " (", taken.ToString(), ")"));
        }
      }
    }
  }
  return absl::OkStatus();
}

std::string NetworkManager::NextIfname(absl::string_view container_id,
                                       std::set<std::string> used) const {
  // The container's attachments are one range of the map (keys sort by container first).
  for (auto it = attachments_.lower_bound({std::string(container_id), ""});
       it != attachments_.end() && it->first.first == container_id; ++it) {
    used.insert(it->second.ifname);
  }
  for (int i = 0;; ++i) {
    std::string name = absl::StrCat("eth", i);
    if (!used.contains(name)) return name;
  }
}

absl::StatusOr<AttachResult> NetworkManager::Attach(const AttachRequest& request) {
  const std::string what = absl::StrCat("attach container ", Quote(request.container_id),
                                        " to network ", Quote(request.network));
  MESH_RETURN_IF_ERROR(Annotate(ValidateName(NameKind::kContainer, request.container_id), what));
  MESH_RETURN_IF_ERROR(Annotate(ValidatePorts(request.ports), what));
  if (!request.ifname.empty() &&
      (request.ifname.size() > kMaxIfNameLength || request.ifname.find('/') != std::string::npos)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": interface name ", Quote(request.ifname), " is not valid"));
  }
  absl::StatusOr<NamespaceHandle> netns = NamespaceHandle::Open(request.netns_path, CLONE_NEWNET);
  if (!netns.ok()) return Annotate(netns.status(), what);

  absl::MutexLock lock(&mu_);
  auto network_it = networks_.find(request.network);
  if (network_it == networks_.end()) {
    return absl::NotFoundError(absl::StrCat(what, ": no such network"));
  }
  const Network& network = network_it->second;
  const AttachmentKey key{request.container_id, request.network};
  if (attachments_.contains(key)) {
    return absl::AlreadyExistsError(absl::StrCat(what, ": already attached"));
  }
  MESH_RETURN_IF_ERROR(Annotate(CheckPortsFree(request.ports), what));
  MESH_RETURN_IF_ERROR(EnsureNftTable());
  // A Linux bridge takes at most 1023 ports; retired pairs still hold theirs.
  const size_t ports_in_use = static_cast<size_t>(
      std::count_if(attachments_.begin(), attachments_.end(),
                    [&](const auto& a) { return a.first.second == request.network; }));
  if (ports_in_use >= kMaxBridgePorts) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": the network has ", ports_in_use, " containers, the most one Linux bridge takes; ",
        "spread them over several networks"));
  }
  if (reaper_ && ports_in_use + reaper_->Pending() >= kMaxBridgePorts) reaper_->AwaitAll();
  // A pair detached moments ago may still hold the host end's name or a name in this netns.
  if (reaper_) {
    const std::string host_end = VethHostName(request.container_id, request.network);
    reaper_->AwaitReaped(host_end, netns->inode());
    // Normally released by the reaper already; left over only if that failed.
    absl::MutexLock retired_lock(&retired_mu_);
    MESH_RETURN_IF_ERROR(Annotate(ReleaseRetired({host_end}), what));
  }

  AttachResult result;
  result.container_id = request.container_id;
  result.network = request.network;
  result.netns_path = request.netns_path;
  // The first free ethN: not another attachment's, nor any interface the namespace has (a
  // point-to-point link's end, one the container made itself). The socket serves the plumbing.
  std::unique_ptr<netlink::RtnlOps> inside;
  result.ifname = request.ifname;
  if (result.ifname.empty()) {
    absl::StatusOr<std::unique_ptr<netlink::RtnlOps>> opened = open_in_netns_(*netns);
    if (!opened.ok()) return Annotate(opened.status(), what);
    inside = *std::move(opened);
    absl::StatusOr<std::vector<netlink::LinkInfo>> present = inside->ListLinks();
    if (!present.ok()) return Annotate(present.status(), what);
    std::set<std::string> taken;
    for (const netlink::LinkInfo& link : *present) taken.insert(link.name);
    result.ifname = NextIfname(request.container_id, std::move(taken));
  }
  result.host_ifname = VethHostName(request.container_id, request.network);
  const std::array<uint8_t, 6> mac = ContainerMac(request.container_id, request.network);
  result.mac = MacToString(mac);
  result.prefix_length = network.info.config.subnet->length();
  result.gateway = *network.info.config.gateway;
  bool has_default_route = false;
  for (auto it = attachments_.lower_bound({request.container_id, ""});
       it != attachments_.end() && it->first.first == request.container_id; ++it) {
    has_default_route = has_default_route || it->second.default_route;
  }
  result.default_route = request.default_route.value_or(!has_default_route);
  result.ports = request.ports;
  for (const StaticRoute& route : request.routes) {
    if (!network.info.config.subnet->Contains(route.via)) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": route ", route.ToString(), ": the next hop is not in the network's subnet ",
          network.info.config.subnet->ToString()));
    }
    if (route.destination.length() == 0 && result.default_route) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": route ", route.ToString(), ": the network's gateway is the default route"));
    }
  }
  result.routes = request.routes;
  result.egress = request.egress;

  // Order: lease, veth pair (host end on the bridge, peer born in the container's namespace),
  // hairpin, addresses and routes inside, published ports. Undone in reverse on error.
  Rollback undo;
  const std::string owner = LeaseOwner(request.container_id, result.ifname);
  absl::StatusOr<ipam::IpAddress> address =
      ipam_->Allocate(request.network, owner, request.address);
  if ((absl::IsResourceExhausted(address.status()) || absl::IsAlreadyExists(address.status())) &&
      reaper_ && reaper_->Busy()) {
    // The address wanted, or the last free one, may belong to a pair detached moments ago
    // whose lease goes back once it is deleted.
    reaper_->AwaitAll();
    address = ipam_->Allocate(request.network, owner, request.address);
  }
  if (!address.ok()) return Annotate(address.status(), what);
  result.address = *address;
  // Undo steps capture by value: they run when `undo` is destroyed, after later locals.
  // Best effort: the call is already failing with the error that matters.
  undo.Push([this, network_name = request.network, owner] {
    ipam_->Release(network_name, owner).IgnoreError();
  });

  MESH_RETURN_IF_ERROR(Annotate(PlumbAttachment(network, result, *netns, std::move(inside)), what));
  undo.Push([this, name = result.host_ifname] { host_->DeleteLink(name).IgnoreError(); });

  if (!request.ports.empty()) {
    MESH_RETURN_IF_ERROR(
        Annotate(nft_->Apply(PortsTransaction(result, request.ports, nft::AddPort)), what));
    // Last step: nothing after it can fail, so it needs no undo.
  }
  undo.Commit();
  FlushConntrack(request.ports);
  attachments_.emplace(key, result);
  CountPorts(result.ports, +1);
  MESH_LOG(Debug) << "attached " << Quote(request.container_id) << " to " << Quote(request.network)
                  << " as " << result.ifname << " " << result.address.ToString();
  return result;
}

absl::Status NetworkManager::EnsureBridge(Network& network) {
  const NetworkConfig& config = network.info.config;
  MESH_ASSIGN_OR_RETURN(netlink::LinkInfo bridge, host_->GetLink(network.info.bridge));
  network.bridge_index = bridge.index;
  MESH_RETURN_IF_ERROR(host_->AddAddress(bridge.index, *config.gateway, config.subnet->length()));
  if (!bridge.up) MESH_RETURN_IF_ERROR(host_->SetLinkUp(network.info.bridge));
  return absl::OkStatus();
}

absl::Status NetworkManager::PlumbAttachment(const Network& network, const AttachResult& result,
                                             const NamespaceHandle& netns,
                                             std::unique_ptr<netlink::RtnlOps> inside) {
  // Order: veth pair (host end up on the bridge, peer born in the container's namespace under
  // its final name and MAC), hairpin, loopback, address, default route.
  netlink::VethSpec veth;
  veth.name = result.host_ifname;
  veth.master = network.bridge_index;
  veth.mtu = network.info.config.mtu;
  veth.alias = AttachmentAlias(result.container_id, result.network);
  veth.peer_name = result.ifname;
  veth.peer_mac = ContainerMac(result.container_id, result.network);
  veth.peer_netns_fd = netns.fd();
  absl::Status created = host_->CreateVeth(veth);
  if (absl::IsAlreadyExists(created)) {
    return absl::AlreadyExistsError(absl::StrCat("link ", Quote(veth.name), " exists here or ",
                                                 Quote(veth.peer_name), " exists in ",
                                                 result.netns_path));
  }
  MESH_RETURN_IF_ERROR(created);
  Rollback undo;
  // Deleting the host end takes the peer (and its addresses and routes) with it.
  undo.Push([this, name = veth.name] { host_->DeleteLink(name).IgnoreError(); });

  MESH_RETURN_IF_ERROR(host_->DisableIpv6(veth.name));
  MESH_RETURN_IF_ERROR(host_->SetHairpin(veth.name, true));
  if (inside == nullptr) {
    MESH_ASSIGN_OR_RETURN(inside, open_in_netns_(netns));
  }
  MESH_RETURN_IF_ERROR(inside->SetLinkUp("lo"));
  MESH_RETURN_IF_ERROR(inside->DisableIpv6(result.ifname));  // IPv4 networks, like Docker's
  MESH_RETURN_IF_ERROR(inside->SetLinkUp(result.ifname));
  MESH_ASSIGN_OR_RETURN(netlink::LinkInfo peer, inside->GetLink(result.ifname));
  MESH_RETURN_IF_ERROR(inside->AddAddress(peer.index, result.address, result.prefix_length));
  if (result.default_route) {
    MESH_RETURN_IF_ERROR(inside->AddDefaultRoute(result.gateway, peer.index));
  }
  if (result.egress) MESH_RETURN_IF_ERROR(SetEgress(*inside, peer.index, *result.egress));
  for (const StaticRoute& route : result.routes) {
    absl::Status added = inside->AddRoute(route.destination, route.via, peer.index);
    if (!added.ok()) {
      return absl::Status(added.code(),
                          absl::StrCat("route ", route.ToString(), ": ", added.message()));
    }
  }
  undo.Commit();
  return absl::OkStatus();
}

absl::Status NetworkManager::Detach(absl::string_view container_id, absl::string_view network) {
  const std::string what =
      absl::StrCat("detach container ", Quote(container_id), " from network ", Quote(network));
  absl::MutexLock lock(&mu_);
  auto it = attachments_.find(AttachmentKey{std::string(container_id), std::string(network)});
  if (it == attachments_.end()) return absl::NotFoundError(absl::StrCat(what, ": not attached"));
  const AttachResult& a = it->second;
  // Teardown order: published ports, veth pair (the peer and its addresses and routes go with
  // it), stale UDP flows to its address, lease. Every step runs; errors are collected.
  // Normally the pair is only cut off here, in the same nftables transaction that removes its
  // ports (`table bridge mesh` drops every frame from and to its host end), and retired; the
  // deletion follows in the background (LinkReaper), where the kernel's slow parts (RCU grace
  // periods, the bridge's per-port work, the conntrack walk) cost no caller anything. The
  // lease is released last, so the address cannot go to another container while flows to it
  // may remain.
  ErrorList errors;
  nft::Transaction ports = PortsTransaction(a, a.ports, nft::RemovePort);
  bool cut_off = false;
  if (reaper_) {
    absl::MutexLock retired_lock(&retired_mu_);
    nft::Transaction cut = ports;
    cut.Append(nft::RetirePorts({a.host_ifname}));
    absl::Status s = nft_->Apply(cut);
    if (s.ok()) {
      retired_.insert(a.host_ifname);
      cut_off = true;
    } else {
      MESH_LOG(Warning) << what << ": cutting the pair off in nftables failed (" << s
                        << "); setting it down instead";
    }
  }
  if (!cut_off && !a.ports.empty()) errors.Add(nft_->Apply(ports));
  const std::string owner = LeaseOwner(a.container_id, a.ifname);
  bool deferred = false;
  if (reaper_) {
    // Cut off: left up (setting a bridge port down costs work that grows with the bridge).
    absl::Status retired =
        host_->RetireLink(a.host_ifname, netlink::kRetiredLinkGroup, /*down=*/!cut_off);
    if (retired.ok()) {
      absl::StatusOr<NamespaceHandle> netns = NamespaceHandle::Open(a.netns_path, CLONE_NEWNET);
      reaper_->Schedule(a.host_ifname, netns.ok() ? netns->inode() : 0, StaleFlowPorts(a.ports),
                        [this, network = a.network, owner, what] {
                          if (absl::Status s = ipam_->Release(network, owner); !s.ok()) {
                            MESH_LOG(Warning) << what << ": " << s;
                          }
                        });
      deferred = true;
    } else {
      MESH_LOG(Warning) << what << ": " << retired << "; deleting the veth pair in place";
    }
  }
  if (!deferred) {
    errors.Add(host_->DeleteLink(a.host_ifname));
    if (cut_off) {
      absl::MutexLock retired_lock(&retired_mu_);
      errors.Add(ReleaseRetired({a.host_ifname}));
    }
    FlushConntrack(a.ports);
    errors.Add(ipam_->Release(a.network, owner));
  }
  CountPorts(a.ports, -1);
  attachments_.erase(it);
  return errors.ToStatus(what);
}

void NetworkManager::AwaitDetachedLinks() {
  if (reaper_) reaper_->AwaitAll();
}

std::vector<AttachResult> NetworkManager::ListAttachments() const {
  absl::MutexLock lock(&mu_);
  std::vector<AttachResult> out;
  for (const auto& [key, attachment] : attachments_) out.push_back(attachment);
  return out;
}

absl::Status NetworkManager::PublishPort(absl::string_view container_id, absl::string_view network,
                                         const PortMapping& port) {
  const std::string what = absl::StrCat("publish port ", port.ToString(), " of container ",
                                        Quote(container_id), " on network ", Quote(network));
  MESH_RETURN_IF_ERROR(Annotate(ValidatePorts({port}), what));
  absl::MutexLock lock(&mu_);
  auto it = attachments_.find(AttachmentKey{std::string(container_id), std::string(network)});
  if (it == attachments_.end()) {
    return absl::NotFoundError(absl::StrCat(what, ": the container is not attached"));
  }
  MESH_RETURN_IF_ERROR(Annotate(CheckPortsFree({port}), what));
  MESH_RETURN_IF_ERROR(EnsureNftTable());
  MESH_RETURN_IF_ERROR(
      Annotate(nft_->Apply(PortsTransaction(it->second, {port}, nft::AddPort)), what));
  it->second.ports.push_back(port);
  CountPorts({port}, +1);
  FlushConntrack({port});
  return absl::OkStatus();
}

absl::Status NetworkManager::UnpublishPort(absl::string_view container_id,
                                           absl::string_view network, const PortMapping& port) {
  const std::string what = absl::StrCat("unpublish port ", port.ToString(), " of container ",
                                        Quote(container_id), " on network ", Quote(network));
  absl::MutexLock lock(&mu_);
  auto it = attachments_.find(AttachmentKey{std::string(container_id), std::string(network)});
  if (it == attachments_.end()) {
    return absl::NotFoundError(absl::StrCat(what, ": the container is not attached"));
  }
  std::vector<PortMapping>& ports = it->second.ports;
  auto port_it = std::find_if(ports.begin(), ports.end(), [&](const PortMapping& p) {
    return p.protocol == port.protocol && p.host_port == port.host_port &&
           p.host_address == port.host_address && p.container_port == port.container_port;
  });
  if (port_it == ports.end()) return absl::NotFoundError(absl::StrCat(what, ": not published"));
  MESH_RETURN_IF_ERROR(
      Annotate(nft_->Apply(PortsTransaction(it->second, {*port_it}, nft::RemovePort)), what));
  FlushConntrack({*port_it});
  CountPorts({*port_it}, -1);
  ports.erase(port_it);
  return absl::OkStatus();
}

}  // namespace mesh::netplane

namespace mesh::netplane {

absl::Status NetworkManager::Reconcile(const DesiredState& desired) {
  absl::MutexLock lock(&mu_);
  if (reaper_) reaper_->AwaitAll();  // the link dump below sees no half-deleted pair
  ErrorList errors;
  auto collect = [&](const absl::Status& s) { errors.Add(s); };

  // 1. Adopt the desired state as the registry.
  networks_.clear();
  attachments_.clear();
  port_uses_.clear();
  policies_.clear();
  for (const nft::PolicyEntry& p : desired.policies) policies_[p.group] = p;
  std::set<std::string> owned_links;
  for (const NetworkConfig& config : desired.networks) {
    if (!config.subnet || !config.gateway) {
      collect(absl::InvalidArgumentError(absl::StrCat("reconcile network ", Quote(config.name),
                                                      ": subnet and gateway must be set")));
      continue;
    }
    Network network;
    network.info.config = config;
    network.info.bridge = BridgeName(config.name);
    owned_links.insert(network.info.bridge);
    networks_.emplace(config.name, std::move(network));
  }
  for (const AttachResult& a : desired.attachments) {
    if (!networks_.contains(a.network)) {
      collect(absl::InvalidArgumentError(absl::StrCat("reconcile container ", Quote(a.container_id),
                                                      ": network ", Quote(a.network),
                                                      " is not desired")));
      continue;
    }
    owned_links.insert(a.host_ifname);
    if (attachments_.emplace(AttachmentKey{a.container_id, a.network}, a).second) {
      CountPorts(a.ports, +1);
    }
  }

  // 2. Links: remove mesh-named links nothing owns, then create what is missing.
  absl::StatusOr<std::vector<netlink::LinkInfo>> links = host_->ListLinks();
  if (!links.ok()) return Annotate(links.status(), "reconcile: list links");
  std::set<std::string> present;
  for (const netlink::LinkInfo& link : *links) {
    if (IsMeshLinkName(link.name) && !owned_links.contains(link.name)) {
      MESH_LOG(Info) << "reconcile: removing orphan link " << Quote(link.name) << " ("
                     << (link.alias.empty() ? "no owner" : link.alias) << ")";
      collect(host_->DeleteLink(link.name));
      continue;
    }
    present.insert(link.name);
  }
  for (auto& [name, network] : networks_) {
    const std::string what = absl::StrCat("reconcile network ", Quote(name));
    if (!present.contains(network.info.bridge)) {
      MESH_LOG(Info) << what << ": creating missing bridge " << network.info.bridge;
      absl::Status s =
          host_->CreateBridge(network.info.bridge, network.info.config.mtu, NetworkAlias(name));
      if (!s.ok()) {
        collect(Annotate(s, what));
        continue;
      }
    }
    collect(Annotate(EnsureBridge(network), what));
    collect(Annotate(ipam_->AddPool(name, *network.info.config.subnet, network.info.config.gateway),
                     what));
    if (network.info.config.nat && !network.info.config.internal && !ip_forward_set_) {
      collect(Annotate(host_->EnableIpv4Forwarding(), what));
      ip_forward_set_ = true;
    }
  }
  for (auto& [key, a] : attachments_) {
    const std::string what = absl::StrCat("reconcile container ", Quote(a.container_id),
                                          " on network ", Quote(a.network));
    absl::StatusOr<ipam::IpAddress> lease =
        ipam_->Allocate(a.network, LeaseOwner(a.container_id, a.ifname), a.address);
    collect(Annotate(lease.status(), what));
    if (present.contains(a.host_ifname)) {
      collect(Annotate(host_->SetHairpin(a.host_ifname, true), what));
      continue;
    }
    absl::StatusOr<NamespaceHandle> netns = NamespaceHandle::Open(a.netns_path, CLONE_NEWNET);
    if (!netns.ok()) {
      collect(Annotate(netns.status(), what));
      continue;
    }
    MESH_LOG(Info) << what << ": re-creating missing veth " << a.host_ifname;
    collect(Annotate(PlumbAttachment(networks_.at(a.network), a, *netns), what));
  }

  // 3. IPAM: leases and pools nothing uses.
  for (const std::string& pool : ipam_->Networks()) {
    if (!networks_.contains(pool)) {
      collect(ipam_->RemovePool(pool));
      continue;
    }
    absl::StatusOr<ipam::PoolSnapshot> snapshot = ipam_->Get(pool);
    if (!snapshot.ok()) continue;
    for (const auto& lease : snapshot->leases) {
      const std::string& owner = lease.second;  // clang 14 cannot capture structured bindings
      bool used = std::any_of(attachments_.begin(), attachments_.end(), [&](const auto& entry) {
        const AttachResult& a = entry.second;
        return a.network == pool && LeaseOwner(a.container_id, a.ifname) == owner;
      });
      if (!used) collect(ipam_->Release(pool, owner));
    }
  }

  // 4. nftables: both tables in one transaction (or none when there is no network). Every
  // detached pair is deleted by now (AwaitAll above): no cut-off is left to keep.
  {
    absl::MutexLock retired_lock(&retired_mu_);
    retired_.clear();
  }
  if (networks_.empty()) {
    collect(nft_->Apply(nft::DeleteTable()));
    nft_ready_ = false;
  } else {
    collect(Annotate(RebuildNftTables(), "reconcile nftables"));
    nft_ready_ = true;
  }
  return errors.ToStatus(absl::StrCat("reconcile: ", errors.size(), " problems"));
}

void NetworkManager::RepairNftTable(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  if (!nft_ready_) return;  // no table is wanted right now
  absl::Status s = RebuildNftTables();
  if (s.ok()) {
    MESH_LOG(Warning) << "nftables: " << reason << "; restored mesh's tables";
  } else {
    MESH_LOG(Error) << "nftables: " << reason << "; restoring mesh's tables failed: " << s;
  }
}

absl::Status NetworkManager::StartSelfRepair() {
  if (monitor_) return absl::OkStatus();
  netfilter::NftMonitor::Options options;
  options.tables = {std::string(nft::kTableName)};
  options.own_portid = nft_portid_;
  MESH_ASSIGN_OR_RETURN(
      monitor_, netfilter::NftMonitor::Start(
                    options, [this](const std::string& reason) { RepairNftTable(reason); }));
  return absl::OkStatus();
}

}  // namespace mesh::netplane
