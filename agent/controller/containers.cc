#include "agent/controller/containers.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/api/convert.h"
#include "agent/api/selector.h"
#include "agent/controller/faults.h"
#include "agent/dns/resolv_conf.h"
#include "agent/netns/netns_pin.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/quote.h"
#include "base/rollback.h"
#include "base/status_macros.h"
#include "base/wait.h"
#include "runtime/container/cgroup_access.h"
#include "runtime/container/image_config.h"
#include "runtime/rootfs/mounts.h"

namespace mesh::agent {
namespace {

bool Set(absl::Time time) { return time != absl::InfinitePast() && time != absl::UnixEpoch(); }

std::string Q(absl::string_view name) { return Quote(name); }

// The API's exit from the runtime's record of it.
v1::Exit ExitOf(const runtime::ContainerState& state) {
  v1::Exit exit;
  exit.set_code(state.signal != 0 ? 128 + state.signal : state.exit_code);
  if (state.signal != 0) exit.set_signal(SignalName(state.signal));
  exit.set_oom_killed(state.oom_killed);
  exit.set_error(state.error);
  if (Set(state.finished)) *exit.mutable_finished_at() = ToProtoTimestamp(state.finished);
  return exit;
}

bool IgnorableNotFound(const absl::Status& status) {
  return status.ok() || absl::IsNotFound(status);
}

netplane::AttachResult FromRecord(const std::string& name, const std::string& netns,
                                  const storev1::Attachment& a) {
  netplane::AttachResult result;
  result.container_id = name;
  result.network = a.network();
  result.netns_path = netns;
  result.ifname = a.ifname();
  result.host_ifname = a.host_ifname();
  result.mac = a.mac();
  if (auto ip = netplane::ipam::IpAddress::Parse(a.ip()); ip.ok()) result.address = *ip;
  result.prefix_length = static_cast<int>(a.prefix_length());
  if (auto gw = netplane::ipam::IpAddress::Parse(a.gateway()); gw.ok()) result.gateway = *gw;
  result.default_route = a.default_route();
  if (auto ports = ToPortMappings(a.ports(), "ports"); ports.ok()) result.ports = *std::move(ports);
  if (auto routes = ToStaticRoutes(a.routes(), "routes"); routes.ok()) {
    result.routes = *std::move(routes);
  }
  if (a.egress_rate_bps() != 0) {
    result.egress = netplane::EgressLimit{a.egress_rate_bps(), a.egress_burst_bytes()};
  }
  return result;
}

storev1::Attachment ToRecord(const netplane::AttachResult& result,
                             const google::protobuf::RepeatedPtrField<v1::PortMapping>& ports) {
  storev1::Attachment a;
  a.set_network(result.network);
  a.set_ifname(result.ifname);
  a.set_host_ifname(result.host_ifname);
  a.set_ip(result.address.ToString());
  a.set_prefix_length(static_cast<uint32_t>(result.prefix_length));
  a.set_gateway(result.gateway.ToString());
  a.set_mac(result.mac);
  a.set_default_route(result.default_route);
  *a.mutable_ports() = ports;
  if (result.egress) {
    a.set_egress_rate_bps(result.egress->rate_bps);
    a.set_egress_burst_bytes(result.egress->burst_bytes);
  }
  for (const netplane::StaticRoute& route : result.routes) {
    v1::Route* r = a.add_routes();
    r->set_destination(route.destination.length() == 0 ? "default" : route.destination.ToString());
    r->set_via(route.via.ToString());
  }
  return a;
}

// Rewrites a file in place (same inode), so a container that has it bind-mounted sees the
// new contents.
absl::Status RewriteInPlace(const std::string& path, const std::string& contents) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return mesh::ErrnoToStatus(errno, absl::StrCat("open ", path));
  return WriteAll(fd.get(), contents, path);
}

// A file of the running container whose init is `pid`, resolved inside its root filesystem.
absl::StatusOr<std::string> ReadInRoot(pid_t pid, absl::string_view path) {
  const std::string root_path = absl::StrCat("/proc/", pid, "/root");
  UniqueFd root(open(root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return mesh::ErrnoToStatus(errno, absl::StrCat("open ", root_path));
  MESH_ASSIGN_OR_RETURN(UniqueFd fd, runtime::rootfs::OpenInRoot(root.get(), path, O_RDONLY,
                                                                 runtime::rootfs::Follow::kInRoot));
  std::string contents;
  char buffer[4096];
  for (ssize_t n; (n = read(fd.get(), buffer, sizeof(buffer))) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      return mesh::ErrnoToStatus(errno, absl::StrCat("read ", path));
    }
    contents.append(buffer, static_cast<size_t>(n));
    if (contents.size() > (size_t{4} << 20)) {
      return absl::FailedPreconditionError(absl::StrCat(path, " is larger than 4 MiB"));
    }
  }
  return contents;
}

bool IsTerminating(int signal) {
  return signal == SIGKILL || signal == SIGTERM || signal == SIGINT || signal == SIGQUIT;
}

}  // namespace

absl::Status ContainerNotFound(const std::string& name) {
  return absl::NotFoundError(
      absl::StrCat("container ", Q(name), " not found; `meshctl ps -a` lists the containers"));
}

absl::Duration RestartBackoff(int step) {
  return std::min(absl::Milliseconds(100) * (int64_t{1} << std::min(step, 20)), absl::Minutes(1));
}

// Whether `exit` is the one `record` holds already.
bool ExitRecorded(const storev1::ContainerRecord& record, const v1::Exit& exit) {
  return record.has_last_exit() &&
         FromProtoTimestamp(record.last_exit().finished_at()) ==
             FromProtoTimestamp(exit.finished_at()) &&
         record.last_exit().error() == exit.error();
}

bool ShouldRestart(const v1::RestartPolicy& policy, const v1::Exit& exit, uint32_t restarts,
                   bool stopped_by_user) {
  if (stopped_by_user) return false;
  switch (policy.mode()) {
    case v1::RestartPolicy::MODE_ALWAYS:
    case v1::RestartPolicy::MODE_UNLESS_STOPPED:
      return true;
    case v1::RestartPolicy::MODE_ON_FAILURE:
      return exit.code() != 0 && (policy.max_retries() == 0 || restarts < policy.max_retries());
    default:
      return false;
  }
}

ContainerController::ContainerController(ContainerControllerOptions options, Store& store,
                                         runtime::Runtime& runtime,
                                         runtime::image::ImageStore& images,
                                         netplane::NetworkManager& netplane,
                                         NetworkController& networks, EventBus& events,
                                         dns::Zone* zone)
    : options_(std::move(options)),
      store_(store),
      runtime_(runtime),
      images_(images),
      netplane_(netplane),
      networks_(networks),
      events_(events),
      zone_(zone),
      watcher_([this](const std::string& name) {
        scheduler_.Post([this, name] { HandleExit(name); });
      }) {}

ContainerController::~ContainerController() = default;

absl::StatusOr<ContainerController::EntryPtr> ContainerController::Find(
    const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return ContainerNotFound(name);
  return it->second;
}

void ContainerController::Save(Entry& entry, const storev1::ContainerRecord& record) {
  const absl::Status status = store_.Put(record.spec().name(), record);
  if (!status.ok()) {
    // The kernel has moved on; the record lags until the next write. Say so loudly.
    MESH_LOG(Error) << "container " << Q(record.spec().name())
                    << ": cannot write its record: " << status;
  }
  absl::MutexLock lock(&entry.mu);
  entry.record = record;
}

void ContainerController::Publish(v1::Event::Kind kind, const std::string& name,
                                  const storev1::ContainerRecord& record,
                                  std::map<std::string, std::string> attributes) {
  v1::Event event;
  event.set_kind(kind);
  event.set_object(name);
  for (auto& [key, value] : attributes) (*event.mutable_attributes())[key] = std::move(value);
  if (!record.group().empty()) (*event.mutable_attributes())["group"] = record.group();
  events_.Publish(std::move(event), record.spec().labels().labels());
}

std::string ContainerController::ResolvConf(const storev1::ContainerRecord& record) const {
  absl::StatusOr<std::string> host_text = ReadFile(options_.host_resolv_conf);
  const dns::ResolvConf host = dns::ParseResolvConf(host_text.ok() ? *host_text : "");
  dns::ResolvConf conf;
  conf.options = host.options;
  conf.search = host.search;
  if (zone_ != nullptr) {
    absl::StatusOr<storev1::ContainerRecord> owner = NetworkOwner(record);
    if (owner.ok() && !owner->attachments().empty()) {
      conf.nameservers = {owner->attachments(0).gateway()};
      if (!record.group().empty()) conf.search.insert(conf.search.begin(), record.group());
      return dns::FormatResolvConf(
          conf,
          absl::StrCat("meshd's DNS, at the gateway of network ", owner->attachments(0).network(),
                       ": the names of the containers on this one's networks;\n"
                       "other names are forwarded to meshd's upstream resolvers"));
    }
  }
  // No DNS of meshd's to ask: the host's resolvers, minus loopback ones (they would point into
  // the container itself), as Docker does.
  for (const std::string& nameserver : host.nameservers) {
    if (!dns::IsLoopbackNameserver(nameserver)) conf.nameservers.push_back(nameserver);
  }
  if (conf.nameservers.empty()) {
    return dns::FormatResolvConf(conf, "meshd: the host has no resolvers containers can use");
  }
  return dns::FormatResolvConf(conf);
}

void ContainerController::NetworkChanged(const std::string& name,
                                         const storev1::ContainerRecord& record) {
  // The container, and every container in its namespace (network_from, also through others):
  // their addresses and resolver are its own.
  std::vector<std::pair<std::string, storev1::ContainerRecord>> changed = {{name, record}};
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < changed.size(); ++i) {
      for (const auto& [other, entry] : entries_) {
        absl::MutexLock entry_lock(&entry->mu);
        if (!entry->removed && entry->record.spec().network_from() == changed[i].first) {
          changed.emplace_back(other, entry->record);
        }
      }
    }
  }
  for (const auto& [container, r] : changed) {
    PutNames(r);
    const std::string etc = runtime_.PathsOf(container).etc();
    RewriteInPlace(etc + "/hosts", HostsFile(r)).IgnoreError();
    RewriteInPlace(etc + "/resolv.conf", ResolvConf(r)).IgnoreError();
  }
}

void ContainerController::PutNames(const storev1::ContainerRecord& record) {
  if (zone_ == nullptr) return;
  const v1::ContainerSpec& spec = record.spec();
  dns::ZoneEntry entry;
  entry.container = spec.name();
  entry.group = record.group();
  if (!entry.group.empty()) {
    absl::string_view member = spec.name();
    if (absl::ConsumePrefix(&member, absl::StrCat(entry.group, "-"))) {
      entry.member = std::string(member);
    }
  }
  // A container in another's namespace (network_from) has that one's addresses.
  const storev1::ContainerRecord owner = NetworkOwner(record).value_or(record);
  for (const storev1::Attachment& a : owner.attachments()) {
    absl::StatusOr<netplane::ipam::IpAddress> ip = netplane::ipam::IpAddress::Parse(a.ip());
    if (!ip.ok()) continue;
    dns::ZoneEntry::Address& address = entry.addresses.emplace_back();
    address.network = a.network();
    address.ip = *ip;
    absl::StatusOr<storev1::NetworkRecord> network = networks_.Record(a.network());
    address.internal = network.ok() && network->spec().internal();
    for (const v1::NetworkAttachment& n : spec.networks()) {
      if (n.network() == a.network())
        address.aliases.assign(n.aliases().begin(), n.aliases().end());
    }
  }
  zone_->Put(std::move(entry));
}

std::string ContainerController::HostsFile(const storev1::ContainerRecord& record) const {
  const v1::ContainerSpec& spec = record.spec();
  const std::string hostname = spec.hostname().empty() ? spec.name() : spec.hostname();
  std::string out = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  const storev1::ContainerRecord owner = NetworkOwner(record).value_or(record);
  for (const storev1::Attachment& a : owner.attachments()) {
    std::vector<std::string> names = {hostname};
    if (spec.name() != hostname) names.push_back(spec.name());
    for (const v1::NetworkAttachment& n : spec.networks()) {
      if (n.network() != a.network()) continue;
      for (const std::string& alias : n.aliases()) names.push_back(alias);
    }
    absl::StrAppend(&out, a.ip(), "\t", absl::StrJoin(names, " "), "\n");
  }
  return out;
}

absl::StatusOr<storev1::ContainerRecord> ContainerController::NetworkOwner(
    const storev1::ContainerRecord& record) const {
  if (record.spec().network_from().empty()) return record;
  // Follow the chain to the container that owns the namespace.
  std::string name = record.spec().network_from();
  for (int depth = 0; depth < 16; ++depth) {
    MESH_ASSIGN_OR_RETURN(storev1::ContainerRecord target, Record(name));
    if (target.spec().network_from().empty()) return target;
    name = target.spec().network_from();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("container ", Q(record.spec().name()), ": network_from chain is too long"));
}

absl::StatusOr<std::string> ContainerController::NetnsOf(
    const storev1::ContainerRecord& record) const {
  MESH_ASSIGN_OR_RETURN(storev1::ContainerRecord owner, NetworkOwner(record));
  return owner.netns();
}

absl::StatusOr<runtime::ContainerSpec> ContainerController::RuntimeSpecOf(
    const storev1::ContainerRecord& record) const {
  MESH_ASSIGN_OR_RETURN(runtime::image::ImageInfo image, images_.Inspect(record.image_id()));
  MESH_ASSIGN_OR_RETURN(runtime::ContainerSpec spec, ToRuntimeSpec(record.spec(), image.config));
  spec.image = record.image_id();
  MESH_ASSIGN_OR_RETURN(std::string netns, NetnsOf(record));
  spec.namespaces.push_back({runtime::NamespaceType::kNetwork, netns});
  spec.etc_hosts = HostsFile(record);
  spec.etc_resolv_conf = ResolvConf(record);
  return spec;
}

absl::Status ContainerController::CreateRuntime(const storev1::ContainerRecord& record,
                                                bool again) {
  MESH_ASSIGN_OR_RETURN(runtime::ContainerSpec spec, RuntimeSpecOf(record));
  absl::StatusOr<runtime::ContainerState> state =
      again ? runtime_.Recreate(std::move(spec)) : runtime_.Create(std::move(spec));
  MESH_RETURN_IF_ERROR(state.status());
  Watch(record.spec().name());
  return absl::OkStatus();
}

void ContainerController::Watch(const std::string& name) {
  absl::StatusOr<runtime::ContainerState> state = runtime_.State(name);
  if (!state.ok()) return;
  absl::StatusOr<UniqueFd> pidfd = state->shim.Open();
  if (!pidfd.ok()) {
    // The shim is gone already: record what it left.
    scheduler_.Post([this, name] { HandleExit(name); });
    return;
  }
  watcher_.Add(name, *std::move(pidfd));
}

absl::StatusOr<v1::Container> ContainerController::Create(const v1::CreateContainerRequest& request,
                                                          const std::string& group,
                                                          const std::string& spec_digest) {
  const v1::ContainerSpec& spec = request.spec();
  MESH_RETURN_IF_ERROR(ValidateContainerSpec(spec));
  absl::StatusOr<runtime::image::ImageInfo> image = images_.Inspect(spec.image());
  if (absl::IsNotFound(image.status())) {
    return absl::NotFoundError(absl::StrCat(
        "spec.image: image ", Q(spec.image()),
        " not found; import it with `meshctl image import` or use the built-in \"busybox\""));
  }
  MESH_RETURN_IF_ERROR(image.status());
  std::vector<netplane::ipam::IpPrefix> subnets;
  for (int i = 0; i < spec.networks_size(); ++i) {
    absl::StatusOr<storev1::NetworkRecord> network = networks_.Record(spec.networks(i).network());
    if (!network.ok()) {
      const absl::Status& s = network.status();
      return absl::Status(s.code(), absl::StrCat("spec.networks[", i, "].network: ", s.message()));
    }
    MESH_ASSIGN_OR_RETURN(subnets.emplace_back(),
                          netplane::ipam::IpPrefix::Parse(network->spec().subnet()));
    // Published ports go to the first network; an internal one lets nothing in.
    if (i == 0 && !spec.ports().empty() && network->spec().internal()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec.ports: they would go to network ", Q(spec.networks(0).network()),
          ", which is internal (nothing from outside reaches it); list a network that is not "
          "internal first, or drop the ports"));
    }
  }
  // Each static route goes with the network its next hop is on; a default one takes the place
  // of the first network's gateway.
  MESH_ASSIGN_OR_RETURN(std::vector<netplane::StaticRoute> routes,
                        ToStaticRoutes(spec.routes(), "spec.routes"));
  std::vector<std::vector<netplane::StaticRoute>> routes_by_network(subnets.size());
  bool own_default_route = false;
  for (size_t r = 0; r < routes.size(); ++r) {
    size_t i = 0;
    while (i < subnets.size() && !subnets[i].Contains(routes[r].via)) ++i;
    if (i == subnets.size()) {
      std::vector<std::string> where;
      for (size_t k = 0; k < subnets.size(); ++k) {
        where.push_back(absl::StrCat(spec.networks(k).network(), " ", subnets[k].ToString()));
      }
      return absl::InvalidArgumentError(
          absl::StrCat("spec.routes[", r, "].via: ", routes[r].via.ToString(),
                       " is on none of the container's networks (", absl::StrJoin(where, ", "),
                       "); give an address of one of them"));
    }
    routes_by_network[i].push_back(routes[r]);
    own_default_route = own_default_route || routes[r].destination.length() == 0;
  }
  if (!spec.network_from().empty()) {
    if (absl::Status s = Record(spec.network_from()).status(); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("spec.network_from: ", s.message()));
    }
  }
  // Everything the runtime would refuse, refused before anything changes.
  MESH_RETURN_IF_ERROR(ToRuntimeSpec(spec, image->config).status());

  storev1::ContainerRecord record;
  record.set_phase(storev1::PHASE_CREATING);
  *record.mutable_spec() = spec;
  record.set_image_id(image->id);
  record.set_group(group);
  record.set_spec_digest(spec_digest);
  *record.mutable_created_at() = ToProtoTimestamp(absl::Now());
  if (spec.network_from().empty()) record.set_netns(NetnsPath(spec.name()));

  auto entry = std::make_shared<Entry>();
  absl::MutexLock op(&entry->op_mu);
  {
    absl::MutexLock lock(&entry->mu);
    entry->record = record;
  }
  {
    absl::MutexLock lock(&mu_);
    if (entries_.contains(spec.name())) {
      return absl::AlreadyExistsError(absl::StrCat(
          "container ", Q(spec.name()), " already exists; remove it first or pick another name"));
    }
    entries_[spec.name()] = entry;
  }
  const std::string& name = spec.name();
  Rollback undo;
  undo.Push([this, name, entry] {
    {
      absl::MutexLock lock(&entry->mu);
      entry->removed = true;  // a call that found it meanwhile must not act on it
    }
    absl::MutexLock lock(&mu_);
    entries_.erase(name);
  });
  MESH_RETURN_IF_ERROR(store_.Put(name, record));
  undo.Push([this, name] { store_.DeleteContainer(name).IgnoreError(); });
  FaultPoint("container.create.recorded");

  if (!record.netns().empty()) {
    MESH_RETURN_IF_ERROR(PinNewNetns(record.netns()));
    undo.Push([path = record.netns()] { UnpinNetns(path).IgnoreError(); });
    FaultPoint("container.create.netns");
  }
  for (int i = 0; i < spec.networks_size(); ++i) {
    const v1::NetworkAttachment& n = spec.networks(i);
    netplane::AttachRequest attach;
    attach.container_id = name;
    attach.netns_path = record.netns();
    attach.network = n.network();
    if (!n.ip().empty()) {
      MESH_ASSIGN_OR_RETURN(attach.address, netplane::ipam::IpAddress::Parse(n.ip()));
    }
    // Published ports go to the first network: one DNAT target per port.
    if (i == 0) {
      MESH_ASSIGN_OR_RETURN(attach.ports, ToPortMappings(spec.ports(), "spec.ports"));
    }
    attach.routes = routes_by_network[i];
    attach.egress = ToEgressLimit(n);
    if (own_default_route) attach.default_route = false;
    absl::StatusOr<netplane::AttachResult> result = netplane_.Attach(attach);
    if (!result.ok()) {
      return absl::Status(result.status().code(),
                          absl::StrCat("container ", Q(name), ": attach to network ",
                                       Q(n.network()), ": ", result.status().message()));
    }
    undo.Push(
        [this, name, network = n.network()] { netplane_.Detach(name, network).IgnoreError(); });
    *record.add_attachments() = ToRecord(
        *result, i == 0 ? spec.ports() : google::protobuf::RepeatedPtrField<v1::PortMapping>());
  }
  FaultPoint("container.create.attached");
  MESH_RETURN_IF_ERROR(CreateRuntime(record));
  undo.Push([this, name] {
    watcher_.Remove(name);
    runtime_.Delete(name, /*force=*/true).IgnoreError();
  });
  FaultPoint("container.create.runtime");
  record.set_phase(storev1::PHASE_READY);
  MESH_RETURN_IF_ERROR(store_.Put(name, record));
  FaultPoint("container.create.ready");
  undo.Commit();
  {
    absl::MutexLock lock(&entry->mu);
    entry->record = record;
  }
  PutNames(record);
  Publish(v1::Event::KIND_CONTAINER_CREATED, name, record, {{"image", spec.image()}});
  MESH_LOG(Info) << "container " << Q(name) << " created";
  if (request.start()) MESH_RETURN_IF_ERROR(StartLocked(*entry, name));
  return ToApi(*entry);
}

absl::Status ContainerController::StartLocked(Entry& entry, const std::string& name) {
  storev1::ContainerRecord record;
  {
    absl::MutexLock lock(&entry.mu);
    if (entry.removed) return ContainerNotFound(name);
    record = entry.record;
    ++entry.generation;  // a pending restart is overtaken by this start
    entry.restart_pending = false;
  }
  absl::StatusOr<runtime::ContainerState> state = runtime_.State(name);
  if (state.ok() && state->status == runtime::Status::kRunning) return absl::OkStatus();
  if (!state.ok() || state->status == runtime::Status::kStopped) {
    // Its command ended (or its runtime container is gone): make the container again around
    // the same network namespace, addresses and ports, its writable layer and its log.
    watcher_.Remove(name);
    MESH_RETURN_IF_ERROR(CreateRuntime(record, /*again=*/true));
  }
  MESH_RETURN_IF_ERROR(runtime_.Start(name));
  FaultPoint("container.start.started");
  StartHealthMonitor(entry, name);
  if (record.stopped_by_user()) {
    record.set_stopped_by_user(false);
    Save(entry, record);
  }
  Publish(v1::Event::KIND_CONTAINER_STARTED, name, record);
  return absl::OkStatus();
}

absl::StatusOr<v1::Container> ContainerController::Start(const std::string& name) {
  MESH_ASSIGN_OR_RETURN(EntryPtr entry, Find(name));
  absl::MutexLock op(&entry->op_mu);
  {
    absl::MutexLock lock(&entry->mu);
    entry->backoff_step = 0;
  }
  MESH_RETURN_IF_ERROR(StartLocked(*entry, name));
  return ToApi(*entry);
}

absl::StatusOr<v1::Container> ContainerController::Stop(const std::string& name,
                                                        std::optional<absl::Duration> timeout) {
  MESH_ASSIGN_OR_RETURN(EntryPtr entry, Find(name));
  absl::MutexLock op(&entry->op_mu);
  storev1::ContainerRecord record;
  {
    absl::MutexLock lock(&entry->mu);
    record = entry->record;
    ++entry->generation;
    entry->restart_pending = false;
  }
  absl::Duration grace = absl::Seconds(10);
  if (record.spec().has_stop_timeout()) {
    grace = FromProtoDuration(record.spec().stop_timeout());
  }
  if (timeout.has_value()) grace = *timeout;
  record.set_stopped_by_user(true);
  Save(*entry, record);
  entry->health_monitor.reset();
  absl::StatusOr<runtime::ContainerState> state = runtime_.State(name);
  if (state.ok() && state->status != runtime::Status::kStopped) {
    MESH_RETURN_IF_ERROR(runtime_.Stop(name, grace).status());
  }
  return ToApi(*entry);
}

absl::StatusOr<v1::Container> ContainerController::Kill(const std::string& name,
                                                        const std::string& signal_name) {
  absl::StatusOr<int> parsed = ParseSignal(signal_name);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kill container ", Q(name), ": signal: ", parsed.status().message()));
  }
  const int signal = *parsed;
  MESH_ASSIGN_OR_RETURN(EntryPtr entry, Find(name));
  absl::MutexLock op(&entry->op_mu);
  MESH_ASSIGN_OR_RETURN(runtime::ContainerState state, runtime_.State(name));
  if (state.status != runtime::Status::kRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", Q(name), " is not running; start it first"));
  }
  if (IsTerminating(signal)) {
    storev1::ContainerRecord record;
    {
      absl::MutexLock lock(&entry->mu);
      record = entry->record;
    }
    record.set_stopped_by_user(true);
    Save(*entry, record);
  }
  MESH_RETURN_IF_ERROR(runtime_.Kill(name, signal));
  return ToApi(*entry);
}

absl::Status ContainerController::Teardown(const std::string& name,
                                           const storev1::ContainerRecord& record) {
  watcher_.Remove(name);
  absl::Status status = runtime_.Delete(name, /*force=*/true);
  if (!IgnorableNotFound(status)) return status;
  FaultPoint("container.remove.runtime");
  for (const storev1::Attachment& a : record.attachments()) {
    status = netplane_.Detach(name, a.network());
    if (!IgnorableNotFound(status)) return status;
  }
  FaultPoint("container.remove.detached");
  if (!record.netns().empty()) MESH_RETURN_IF_ERROR(UnpinNetns(record.netns()));
  return store_.DeleteContainer(name);
}

absl::Status ContainerController::Remove(const std::string& name, bool force) {
  MESH_ASSIGN_OR_RETURN(EntryPtr entry, Find(name));
  absl::MutexLock op(&entry->op_mu);
  storev1::ContainerRecord record;
  {
    absl::MutexLock lock(&entry->mu);
    if (entry->removed) return ContainerNotFound(name);
    record = entry->record;
  }
  absl::StatusOr<runtime::ContainerState> state = runtime_.State(name);
  if (!force && state.ok() && state->status == runtime::Status::kRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", Q(name), " is running; stop it first, or remove it with force"));
  }
  std::vector<std::string> sharing;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [other, other_entry] : entries_) {
      absl::MutexLock other_lock(&other_entry->mu);
      if (other_entry->record.spec().network_from() == name) sharing.push_back(other);
    }
  }
  if (!sharing.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", Q(name), " shares its network with ",
                     absl::StrJoin(sharing, ", "), "; remove those first"));
  }
  entry->health_monitor.reset();
  if (record.phase() == storev1::PHASE_READY && state.ok()) {
    // Its end is told before its removal, as Docker does (`rm -f`: killed, then died), also
    // when the exit watcher has not got to a run that ended just before.
    if (state->status == runtime::Status::kRunning) {
      // A kill that fails (it ended meanwhile) leaves the rest to the forced delete below.
      state = runtime_.Kill(name, SIGKILL).ok() ? runtime_.Wait(name, absl::Seconds(30))
                                                : runtime_.State(name);
    }
    if (state.ok() && state->status == runtime::Status::kStopped) {
      RecordExit(*entry, name, record, *state);
    }
  }
  record.set_phase(storev1::PHASE_REMOVING);
  Save(*entry, record);
  if (zone_ != nullptr) zone_->Remove(name);  // its names go before its addresses
  {
    absl::MutexLock lock(&entry->mu);
    ++entry->generation;
    entry->restart_pending = false;
  }
  FaultPoint("container.remove.recorded");
  if (absl::Status status = Teardown(name, record); !status.ok()) {
    // The record stays REMOVING: the next Remove, or meshd's next start, finishes the job.
    return absl::Status(status.code(), absl::StrCat("remove container ", Q(name), ": ",
                                                    status.message(), "; retry the removal"));
  }
  {
    absl::MutexLock lock(&entry->mu);
    entry->removed = true;
  }
  {
    absl::MutexLock lock(&mu_);
    entries_.erase(name);
  }
  Publish(v1::Event::KIND_CONTAINER_REMOVED, name, record);
  MESH_LOG(Info) << "container " << Q(name) << " removed";
  return absl::OkStatus();
}

v1::Container ContainerController::ToApi(const Entry& entry) const {
  storev1::ContainerRecord record;
  bool restart_pending = false;
  v1::Health health;
  {
    absl::MutexLock lock(&entry.mu);
    record = entry.record;
    restart_pending = entry.restart_pending;
    health = entry.health;
  }
  const std::string& name = record.spec().name();
  v1::Container c;
  *c.mutable_spec() = record.spec();
  c.set_image_id(record.image_id());
  c.set_group(record.group());
  *c.mutable_created_at() = record.created_at();
  c.set_restart_count(record.restart_count());
  c.set_health(health);
  if (record.has_last_exit()) *c.mutable_last_exit() = record.last_exit();
  for (const storev1::Attachment& a : record.attachments()) {
    v1::ContainerAddress* address = c.add_addresses();
    address->set_network(a.network());
    address->set_interface(a.ifname());
    address->set_ip(a.ip());
    address->set_prefix_length(a.prefix_length());
    address->set_gateway(a.gateway());
    address->set_mac(a.mac());
  }
  if (record.phase() == storev1::PHASE_CREATING) {
    c.set_state(v1::CONTAINER_STATE_CREATED);
    return c;
  }
  if (record.phase() == storev1::PHASE_REMOVING) {
    c.set_state(v1::CONTAINER_STATE_REMOVING);
    return c;
  }
  absl::StatusOr<runtime::ContainerState> state = runtime_.State(name);
  if (!state.ok()) {
    c.set_state(restart_pending ? v1::CONTAINER_STATE_RESTARTING : v1::CONTAINER_STATE_STOPPED);
    return c;
  }
  if (Set(state->started)) *c.mutable_started_at() = ToProtoTimestamp(state->started);
  switch (state->status) {
    case runtime::Status::kCreated:
      c.set_state(v1::CONTAINER_STATE_CREATED);
      break;
    case runtime::Status::kRunning:
      c.set_state(v1::CONTAINER_STATE_RUNNING);
      c.set_pid(state->init.pid);
      break;
    case runtime::Status::kStopped:
      c.set_state(restart_pending ? v1::CONTAINER_STATE_RESTARTING : v1::CONTAINER_STATE_STOPPED);
      // The exit may not be recorded yet (it just happened): the runtime's is the truth.
      *c.mutable_last_exit() = ExitOf(*state);
      break;
  }
  return c;
}

absl::StatusOr<v1::Container> ContainerController::Get(const std::string& name) const {
  MESH_ASSIGN_OR_RETURN(EntryPtr entry, Find(name));
  return ToApi(*entry);
}

std::vector<v1::Container> ContainerController::List(
    const v1::ListContainersRequest& request) const {
  std::vector<EntryPtr> entries;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, entry] : entries_) entries.push_back(entry);
  }
  std::vector<v1::Container> out;
  for (const EntryPtr& entry : entries) {
    {
      absl::MutexLock lock(&entry->mu);
      if (!request.group().empty() && entry->record.group() != request.group()) continue;
      if (!MatchesSelector(request.selector(), entry->record.spec().labels().labels())) continue;
    }
    v1::Container c = ToApi(*entry);
    if (!request.all() && c.state() != v1::CONTAINER_STATE_RUNNING) continue;
    out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<storev1::ContainerRecord> ContainerController::Record(
    const std::string& name) const {
  MESH_ASSIGN_OR_RETURN(EntryPtr entry, Find(name));
  absl::MutexLock lock(&entry->mu);
  return entry->record;
}

ContainerController::Counts ContainerController::Count() const {
  Counts counts;
  for (const v1::Container& c : List(v1::ListContainersRequest())) {
    (void)c;
    ++counts.running;
  }
  absl::MutexLock lock(&mu_);
  counts.stopped = static_cast<uint32_t>(entries_.size()) - counts.running;
  return counts;
}

absl::StatusOr<v1::Exit> ContainerController::Wait(const std::string& name, bool until_removed,
                                                   const std::function<bool()>& cancelled) {
  while (true) {
    absl::StatusOr<EntryPtr> entry = Find(name);
    if (!entry.ok()) {
      if (until_removed) return v1::Exit();
      return entry.status();
    }
    const v1::Container c = ToApi(**entry);
    if (!until_removed && c.state() != v1::CONTAINER_STATE_RUNNING &&
        c.state() != v1::CONTAINER_STATE_CREATED) {
      return c.last_exit();
    }
    if (cancelled()) return absl::CancelledError("wait cancelled by the client");
    // The runtime wakes us at the exit; the timeout bounds how late a cancel is noticed.
    if (!until_removed && c.state() == v1::CONTAINER_STATE_RUNNING) {
      runtime_.Wait(name, absl::Milliseconds(200)).IgnoreError();
    } else {
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
}

absl::StatusOr<std::string> ContainerController::LogPath(const std::string& name) const {
  MESH_RETURN_IF_ERROR(Find(name).status());
  return runtime_.PathsOf(name).log();
}

absl::StatusOr<std::string> ContainerController::NetworkNamespace(const std::string& name) const {
  MESH_ASSIGN_OR_RETURN(storev1::ContainerRecord record, Record(name));
  MESH_ASSIGN_OR_RETURN(std::string netns, NetnsOf(record));
  if (netns.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", Q(name), " has no network namespace of its own"));
  }
  return netns;
}

absl::StatusOr<v1::ContainerStats> ContainerController::Stats(const std::string& name) const {
  MESH_RETURN_IF_ERROR(Find(name).status());
  MESH_ASSIGN_OR_RETURN(runtime::ContainerState state, runtime_.State(name));
  if (state.status != runtime::Status::kRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", Q(name), " is not running; stats exist only while it runs"));
  }
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<runtime::CgroupDriver> driver,
                        runtime::HostCgroupDriver(options_.cgroup_parent));
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Cgroup> cgroup, driver->Open(name));
  MESH_ASSIGN_OR_RETURN(runtime::CgroupStats stats, cgroup->Stats());
  v1::ContainerStats out;
  out.set_memory_bytes(stats.memory_usage_bytes);
  out.set_cpu_nanoseconds(stats.cpu_usage_ns);
  out.set_pids(stats.pids_current);
  if (absl::StatusOr<runtime::Resources> limits = cgroup->Limits(); limits.ok()) {
    if (limits->memory_limit.has_value()) {
      out.set_memory_limit_bytes(static_cast<uint64_t>(*limits->memory_limit));
    }
    if (limits->pids_limit.has_value()) {
      out.set_pids_limit(static_cast<uint64_t>(*limits->pids_limit));
    }
  }
  *out.mutable_time() = ToProtoTimestamp(absl::Now());
  return out;
}

absl::StatusOr<ExitStatus> ContainerController::Exec(const v1::ExecStart& start,
                                                     const runtime::Runtime::ExecIo& io) {
  const std::string& name = start.container();
  MESH_RETURN_IF_ERROR(Find(name).status());
  if (start.args().empty()) {
    return absl::InvalidArgumentError("start.args: empty; give the command to run");
  }
  MESH_ASSIGN_OR_RETURN(runtime::ContainerState state, runtime_.State(name));
  if (state.status != runtime::Status::kRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", Q(name), " is not running; start it first"));
  }
  runtime::ExecSpec exec;
  exec.args.assign(start.args().begin(), start.args().end());
  exec.env.assign(start.env().begin(), start.env().end());
  exec.cwd = start.working_dir();
  exec.terminal = start.tty();
  if (start.rows() > 0) exec.rows = static_cast<uint16_t>(std::min(start.rows(), 65535u));
  if (start.cols() > 0) exec.cols = static_cast<uint16_t>(std::min(start.cols(), 65535u));
  if (!start.user().empty()) {
    // Names are looked up in the container's own files, never the host's: resolved inside its
    // root, so a symlink in the image cannot point meshd at a host file.
    const std::string passwd = ReadInRoot(state.init.pid, "/etc/passwd").value_or("");
    const std::string group = ReadInRoot(state.init.pid, "/etc/group").value_or("");
    absl::StatusOr<runtime::User> user = runtime::ResolveUser(start.user(), passwd, group);
    if (!user.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("start.user: ", user.status().message()));
    }
    exec.user = *user;
  }
  return runtime_.Exec(name, exec, io);
}

absl::StatusOr<v1::ContainerAddress> ContainerController::Connect(
    const std::string& name, const std::string& network, const std::string& ip,
    const std::vector<std::string>& aliases) {
  MESH_RETURN_IF_ERROR(networks_.Record(network).status());
  MESH_ASSIGN_OR_RETURN(EntryPtr entry, Find(name));
  absl::MutexLock op(&entry->op_mu);
  storev1::ContainerRecord record;
  {
    absl::MutexLock lock(&entry->mu);
    record = entry->record;
  }
  if (!record.spec().network_from().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", Q(name), " uses the network of ",
                     Q(record.spec().network_from()), "; connect that one instead"));
  }
  for (const storev1::Attachment& a : record.attachments()) {
    if (a.network() == network) {
      return absl::AlreadyExistsError(
          absl::StrCat("container ", Q(name), " is already on network ", Q(network)));
    }
  }
  netplane::AttachRequest attach;
  attach.container_id = name;
  attach.netns_path = record.netns();
  attach.network = network;
  if (!ip.empty()) {
    absl::StatusOr<netplane::ipam::IpAddress> address = netplane::ipam::IpAddress::Parse(ip);
    if (!address.ok())
      return absl::InvalidArgumentError(absl::StrCat("ip: ", address.status().message()));
    attach.address = *address;
  }
  // The first network gives the default route, unless the spec routes it elsewhere itself.
  attach.default_route =
      record.attachments().empty() &&
      std::none_of(record.spec().routes().begin(), record.spec().routes().end(),
                   [](const v1::Route& r) { return r.destination() == "default"; });
  MESH_ASSIGN_OR_RETURN(netplane::AttachResult result, netplane_.Attach(attach));
  *record.add_attachments() = ToRecord(result, {});
  v1::NetworkAttachment* spec_network = record.mutable_spec()->add_networks();
  spec_network->set_network(network);
  spec_network->set_ip(ip);
  for (const std::string& alias : aliases) spec_network->add_aliases(alias);
  Save(*entry, record);
  NetworkChanged(name, record);
  Publish(v1::Event::KIND_NETWORK_CONNECTED, network, record, {{"container", name}});
  v1::ContainerAddress address;
  address.set_network(network);
  address.set_interface(result.ifname);
  address.set_ip(result.address.ToString());
  address.set_prefix_length(static_cast<uint32_t>(result.prefix_length));
  address.set_gateway(result.gateway.ToString());
  address.set_mac(result.mac);
  return address;
}

absl::Status ContainerController::Disconnect(const std::string& name, const std::string& network) {
  MESH_ASSIGN_OR_RETURN(EntryPtr entry, Find(name));
  absl::MutexLock op(&entry->op_mu);
  storev1::ContainerRecord record;
  {
    absl::MutexLock lock(&entry->mu);
    record = entry->record;
  }
  auto* attachments = record.mutable_attachments();
  auto it = std::find_if(attachments->begin(), attachments->end(),
                         [&](const storev1::Attachment& a) { return a.network() == network; });
  if (it == attachments->end()) {
    return absl::NotFoundError(
        absl::StrCat("container ", Q(name), " is not on network ", Q(network)));
  }
  MESH_RETURN_IF_ERROR(netplane_.Detach(name, network));
  attachments->erase(it);
  auto* specs = record.mutable_spec()->mutable_networks();
  specs->erase(
      std::remove_if(specs->begin(), specs->end(),
                     [&](const v1::NetworkAttachment& n) { return n.network() == network; }),
      specs->end());
  Save(*entry, record);
  NetworkChanged(name, record);
  Publish(v1::Event::KIND_NETWORK_DISCONNECTED, network, record, {{"container", name}});
  return absl::OkStatus();
}

ContainerController::HealthMonitor::~HealthMonitor() {
  const uint64_t one = 1;
  if (write(stop.get(), &one, sizeof(one)) < 0) {
    MESH_LOG(Error) << "health monitor: cannot signal its thread to stop";
  }
  if (thread.joinable()) thread.join();
}

void ContainerController::StartHealthMonitor(Entry& entry, const std::string& name) {
  entry.health_monitor.reset();
  {
    absl::MutexLock lock(&entry.mu);
    if (!entry.record.spec().has_health_check() ||
        entry.record.spec().health_check().command().empty()) {
      entry.health = v1::HEALTH_UNSPECIFIED;
      return;
    }
    entry.health = v1::HEALTH_STARTING;
  }
  auto monitor = std::make_unique<HealthMonitor>();
  monitor->stop = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!monitor->stop.valid()) {
    MESH_LOG(Error) << "container " << Q(name) << ": cannot start its health check (eventfd)";
    return;
  }
  absl::StatusOr<EntryPtr> shared = Find(name);
  if (!shared.ok()) return;
  monitor->thread = std::thread(
      [this, e = *shared, name, fd = monitor->stop.get()] { RunHealthChecks(e, name, fd); });
  entry.health_monitor = std::move(monitor);
}

void ContainerController::RunHealthChecks(std::shared_ptr<Entry> entry, std::string name,
                                          int stop_fd) {
  storev1::ContainerRecord record;
  {
    absl::MutexLock lock(&entry->mu);
    record = entry->record;
  }
  const v1::HealthCheck& check = record.spec().health_check();
  const absl::Duration interval =
      check.has_interval() ? FromProtoDuration(check.interval()) : absl::Seconds(30);
  const absl::Duration timeout =
      check.has_timeout() ? FromProtoDuration(check.timeout()) : absl::Seconds(30);
  const uint32_t retries = check.retries() == 0 ? 3 : check.retries();
  const absl::Time grace_until =
      absl::Now() +
      (check.has_start_period() ? FromProtoDuration(check.start_period()) : absl::ZeroDuration());
  runtime::ExecSpec exec;
  exec.args.assign(check.command().begin(), check.command().end());
  uint32_t failures = 0;
  v1::Health health = v1::HEALTH_STARTING;
  Publish(v1::Event::KIND_CONTAINER_HEALTH, name, record, {{"health", "starting"}});
  while (!WaitReadable(stop_fd, interval)) {
    // The check is cut off at its timeout (a timerfd) or when the monitor stops: one epoll
    // set over both is the exec's cancel fd.
    UniqueFd timer(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    UniqueFd either(epoll_create1(EPOLL_CLOEXEC));
    itimerspec spec{};
    spec.it_value = absl::ToTimespec(timeout);
    epoll_event event{};
    event.events = EPOLLIN;
    if (!timer.valid() || !either.valid() || timerfd_settime(timer.get(), 0, &spec, nullptr) != 0 ||
        epoll_ctl(either.get(), EPOLL_CTL_ADD, timer.get(), &event) != 0 ||
        epoll_ctl(either.get(), EPOLL_CTL_ADD, stop_fd, &event) != 0) {
      MESH_LOG(Error) << "container " << Q(name) << ": health check not run (errno " << errno
                      << ")";
      continue;
    }
    runtime::Runtime::ExecIo io;
    io.cancel_fd = either.get();
    absl::StatusOr<ExitStatus> result = runtime_.Exec(name, exec, io);
    if (WaitReadable(stop_fd, absl::ZeroDuration())) return;
    const bool passed = result.ok() && result->ok();
    v1::Health next = health;
    if (passed) {
      failures = 0;
      next = v1::HEALTH_HEALTHY;
    } else if (absl::Now() >= grace_until && ++failures >= retries) {
      next = v1::HEALTH_UNHEALTHY;
    }
    if (next == health) continue;
    health = next;
    {
      absl::MutexLock lock(&entry->mu);
      entry->health = health;
    }
    const char* text = health == v1::HEALTH_HEALTHY ? "healthy" : "unhealthy";
    MESH_LOG(Info) << "container " << Q(name) << " is " << text;
    Publish(v1::Event::KIND_CONTAINER_HEALTH, name, record, {{"health", text}});
  }
}

void ContainerController::HandleExit(const std::string& name) {
  absl::StatusOr<EntryPtr> found = Find(name);
  if (!found.ok()) return;
  Entry& entry = **found;
  absl::MutexLock op(&entry.op_mu);
  storev1::ContainerRecord record;
  {
    absl::MutexLock lock(&entry.mu);
    if (entry.removed || entry.record.phase() != storev1::PHASE_READY) return;
    record = entry.record;
  }
  absl::StatusOr<runtime::ContainerState> state = runtime_.State(name);
  if (!state.ok() || state->status != runtime::Status::kStopped) return;
  entry.health_monitor.reset();
  if (!RecordExit(entry, name, record, *state)) return;
  if (ShouldRestart(record.spec().restart(), record.last_exit(), record.restart_count(),
                    record.stopped_by_user())) {
    ScheduleRestart(entry, name, record, *state);
  }
}

bool ContainerController::RecordExit(Entry& entry, const std::string& name,
                                     storev1::ContainerRecord& record,
                                     const runtime::ContainerState& state) {
  const v1::Exit exit = ExitOf(state);
  if (ExitRecorded(record, exit)) return false;
  if (exit.error() == "supervisor lost") {
    // Its shim is gone: whatever is left of the container goes too (TESTING.md #14).
    MESH_LOG(Warning) << "container " << Q(name) << ": supervisor lost; killing what is left";
    // Its writable layer and log stay, for a restart (Recreate) or its removal.
    runtime_.Reap(name).IgnoreError();
  }
  *record.mutable_last_exit() = exit;
  Save(entry, record);
  Publish(v1::Event::KIND_CONTAINER_DIED, name, record,
          {{"exit_code", absl::StrCat(exit.code())},
           {"signal", exit.signal()},
           {"oom_killed", exit.oom_killed() ? "true" : "false"},
           {"error", exit.error()}});
  MESH_LOG(Info) << "container " << Q(name) << " ended: code " << exit.code()
                 << (exit.error().empty() ? "" : " (" + exit.error() + ")");
  return true;
}

void ContainerController::ScheduleRestart(Entry& entry, const std::string& name,
                                          const storev1::ContainerRecord& record,
                                          const runtime::ContainerState& state) {
  uint64_t generation;
  absl::Duration delay;
  {
    absl::MutexLock lock(&entry.mu);
    // A command that ran for 10 s or more starts the back-off over (as Docker does).
    if (Set(state.started) && Set(state.finished) &&
        state.finished - state.started >= absl::Seconds(10)) {
      entry.backoff_step = 0;
    }
    delay = RestartBackoff(entry.backoff_step++);
    entry.restart_pending = true;
    generation = ++entry.generation;
  }
  Publish(v1::Event::KIND_CONTAINER_RESTARTING, name, record,
          {{"delay", absl::FormatDuration(delay)}});
  scheduler_.Post([this, name, generation] { Restart(name, generation); }, delay);
}

void ContainerController::Restart(const std::string& name, uint64_t generation) {
  absl::StatusOr<EntryPtr> found = Find(name);
  if (!found.ok()) return;
  Entry& entry = **found;
  absl::MutexLock op(&entry.op_mu);
  storev1::ContainerRecord record;
  {
    absl::MutexLock lock(&entry.mu);
    if (entry.removed || entry.generation != generation || !entry.restart_pending) return;
    record = entry.record;
  }
  record.set_restart_count(record.restart_count() + 1);
  Save(entry, record);
  if (absl::Status status = StartLocked(entry, name); !status.ok()) {
    MESH_LOG(Error) << "container " << Q(name) << ": restart failed: " << status;
    // The failed start left a stopped container; its exit comes through HandleExit.
  }
}

std::vector<netplane::AttachResult> ContainerController::Restore(
    const std::map<std::string, storev1::ContainerRecord>& records) {
  std::vector<netplane::AttachResult> desired;
  for (const auto& [name, record] : records) {
    if (record.phase() != storev1::PHASE_READY) {
      // Half made or half removed when meshd stopped: finish taking it apart. Links and leases
      // it may have left go with netplane's reconcile (no record owns them).
      MESH_LOG(Info) << "container " << Q(name) << ": "
                     << (record.phase() == storev1::PHASE_CREATING ? "rolling back its creation"
                                                                   : "finishing its removal");
      storev1::ContainerRecord without_links = record;
      without_links.clear_attachments();  // netplane does not know them yet
      if (absl::Status s = Teardown(name, without_links); !s.ok()) {
        MESH_LOG(Error) << "container " << Q(name) << ": cleanup failed: " << s;
      }
      continue;
    }
    if (!record.netns().empty() && !IsPinnedNetns(record.netns())) {
      // After a reboot: a fresh namespace; reconcile plumbs the recorded addresses into it.
      UnpinNetns(record.netns()).IgnoreError();
      if (absl::Status s = PinNewNetns(record.netns()); !s.ok()) {
        MESH_LOG(Error) << "container " << Q(name) << ": " << s;
      }
    }
    auto entry = std::make_shared<Entry>();
    {
      absl::MutexLock lock(&entry->mu);
      entry->record = record;
    }
    {
      absl::MutexLock lock(&mu_);
      entries_[name] = entry;
    }
    for (const storev1::Attachment& a : record.attachments()) {
      desired.push_back(FromRecord(name, record.netns(), a));
    }
  }
  // Names once every container is back: one in another's namespace takes that one's addresses.
  for (const auto& [name, record] : records) {
    if (record.phase() == storev1::PHASE_READY) PutNames(record);
  }
  return desired;
}

void ContainerController::Resume() {
  std::vector<std::pair<std::string, EntryPtr>> entries;
  {
    absl::MutexLock lock(&mu_);
    entries.assign(entries_.begin(), entries_.end());
  }
  std::set<std::string> known;
  for (auto& [name, entry] : entries) {
    known.insert(name);
    absl::StatusOr<runtime::ContainerState> state = runtime_.State(name);
    storev1::ContainerRecord record;
    {
      absl::MutexLock lock(&entry->mu);
      record = entry->record;
    }
    if (absl::IsNotFound(state.status())) {
      // Gone with a reboot (or never made): make it again, and start it if its policy says so.
      absl::MutexLock op(&entry->op_mu);
      if (absl::Status s = CreateRuntime(record, /*again=*/true); !s.ok()) {
        MESH_LOG(Error) << "container " << Q(name) << ": cannot make it again: " << s;
        continue;
      }
      const v1::RestartPolicy::Mode mode = record.spec().restart().mode();
      if (mode == v1::RestartPolicy::MODE_ALWAYS ||
          (mode == v1::RestartPolicy::MODE_UNLESS_STOPPED && !record.stopped_by_user())) {
        StartLocked(*entry, name).IgnoreError();
      }
      continue;
    }
    if (!state.ok()) continue;
    // Running or created: watch its shim. Stopped (also while meshd was down): the exit is
    // recorded and the restart policy applied, as if it had just happened.
    Watch(name);
    if (state->status == runtime::Status::kStopped && ExitRecorded(record, ExitOf(*state))) {
      // It had ended before meshd went down. A restart its policy still owed is made now; and
      // as at dockerd's start, `always` starts again even after a user's stop.
      const v1::RestartPolicy& policy = record.spec().restart();
      if (policy.mode() == v1::RestartPolicy::MODE_ALWAYS ||
          ShouldRestart(policy, record.last_exit(), record.restart_count(),
                        record.stopped_by_user())) {
        absl::MutexLock op(&entry->op_mu);
        ScheduleRestart(*entry, name, record, *state);
      }
    }
    if (state->status == runtime::Status::kRunning) {
      absl::MutexLock op(&entry->op_mu);
      StartHealthMonitor(*entry, name);
    }
  }
  // Orphans: runtime containers, pinned namespaces and cgroups no record owns.
  for (const std::string& id : runtime_.List()) {
    if (known.contains(id)) continue;
    MESH_LOG(Warning) << "removing orphan container " << Q(id) << " (no record)";
    runtime_.Delete(id, /*force=*/true).IgnoreError();
  }
  for (const std::string& file : ListPinFiles(options_.netns_dir)) {
    if (known.contains(file)) continue;
    MESH_LOG(Warning) << "removing orphan network namespace " << Q(file) << " (no record)";
    UnpinNetns(options_.netns_dir + "/" + file).IgnoreError();
  }
  if (absl::StatusOr<std::unique_ptr<runtime::CgroupDriver>> driver =
          runtime::HostCgroupDriver(options_.cgroup_parent);
      driver.ok()) {
    if (absl::StatusOr<std::vector<std::string>> cgroups = (*driver)->List(); cgroups.ok()) {
      for (const std::string& cgroup : *cgroups) {
        if (known.contains(cgroup)) continue;
        MESH_LOG(Warning) << "removing orphan cgroup " << Q(cgroup) << " (no record)";
        runtime::DestroyContainerCgroup(options_.cgroup_parent, cgroup).IgnoreError();
      }
    }
  }
}

}  // namespace mesh::agent
