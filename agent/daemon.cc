#include "agent/daemon.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/controller/containers.h"
#include "agent/controller/groups.h"
#include "agent/controller/networks.h"
#include "agent/dns/server.h"
#include "agent/dns/zone.h"
#include "agent/events/event_bus.h"
#include "agent/server/parse_errors.h"
#include "agent/server/sd_notify.h"
#include "agent/server/tls.h"
#include "agent/server/unix_listener.h"
#include "agent/service/services.h"
#include "agent/store/store.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "runtime/cgroups/layout.h"

namespace mesh::agent {
namespace {

absl::Status MakeDirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return mesh::ErrnoToStatus(ec.value(), absl::StrCat("create ", path));
  if (chmod(path.c_str(), mode) != 0)
    return mesh::ErrnoToStatus(errno, absl::StrCat("chmod ", path));
  return absl::OkStatus();
}

// Where mesh-shim is, relative to meshd: installed, <prefix>/bin/meshd and
// <prefix>/libexec/mesh/mesh-shim (runtime/CMakeLists.txt); in the build tree,
// agent/meshd and runtime/mesh-shim; or side by side.
std::string DefaultShimPath() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::filesystem::path dir = self.parent_path();
  const std::filesystem::path candidates[] = {dir.parent_path() / "libexec" / "mesh" / "mesh-shim",
                                              dir.parent_path() / "runtime" / "mesh-shim",
                                              dir / "mesh-shim"};
  for (const auto& candidate : candidates) {
    if (std::filesystem::exists(candidate, ec)) return candidate.string();
  }
  return candidates[0].string();
}

std::string CgroupVersionName() {
  std::error_code ec;
  const bool unified = std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers", ec);
  if (unified) return "v2";
  return std::filesystem::exists("/sys/fs/cgroup/unified/cgroup.controllers", ec) ? "hybrid" : "v1";
}

// The upstreams of meshd's DNS (DnsConfig.upstreams): the configured ones, none, or the host's.
// The host's are its resolv.conf's nameservers that are not loopback; when those are all
// loopback (systemd-resolved's stub at 127.0.0.53), the stub's own upstreams, as Docker does.
std::vector<dns::Upstream> DnsUpstreams(const DnsConfig& config) {
  if (config.upstreams == "none") return {};
  if (!config.upstreams.empty()) {
    return dns::ParseUpstreams(config.upstreams).value_or(std::vector<dns::Upstream>{});
  }
  for (const char* path : {"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"}) {
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) continue;
    std::vector<dns::Upstream> upstreams = dns::UpstreamsOfResolvConf(*text);
    if (!upstreams.empty()) return upstreams;
  }
  return {};
}

absl::StatusOr<std::unique_ptr<dns::DnsServer>> StartDns(const DnsConfig& config,
                                                         const dns::Zone& zone) {
  dns::ServerOptions options;
  options.upstreams = DnsUpstreams(config);
  absl::ParseDuration(config.timeout, &options.upstream_timeout);  // validated
  std::vector<std::string> upstreams;
  for (const dns::Upstream& u : options.upstreams) upstreams.push_back(u.ToString());
  MESH_LOG(Info) << "DNS: names of other than containers go to "
                 << (upstreams.empty() ? "no upstream (SERVFAIL)" : absl::StrJoin(upstreams, ", "))
                 << ", " << config.timeout << " each";
  return dns::DnsServer::Start(&zone, std::move(options));
}

}  // namespace

struct Daemon::Parts {
  Config config;
  // Before the controllers that feed them, so they go after them.
  dns::Zone zone;
  std::unique_ptr<dns::DnsServer> dns;
  std::unique_ptr<runtime::image::ImageStore> images;
  std::unique_ptr<runtime::Runtime> runtime;
  std::unique_ptr<netplane::NetworkManager> netplane;
  std::unique_ptr<Store> store;
  EventBus events;
  std::unique_ptr<NetworkController> networks;
  std::unique_ptr<ContainerController> containers;
  std::unique_ptr<netplane::LinkManager> links;
  std::unique_ptr<GroupController> groups;
  std::unique_ptr<Checker> checker;
  std::vector<std::unique_ptr<grpc::Service>> services;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<UnixListener> listener;
  bool stopped = false;
};

Daemon::Daemon(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Daemon::~Daemon() { Shutdown(); }

void Daemon::Shutdown() {
  if (parts_ == nullptr || parts_->stopped) return;
  parts_->stopped = true;
  NotifyStopping();
  MESH_LOG(Info) << "meshd stopping; containers keep running";
  parts_->listener.reset();  // no new connections
  if (parts_->server != nullptr) {
    parts_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const Config& config) {
  const absl::Time began = absl::Now();
  auto parts = std::make_unique<Parts>();
  parts->config = config;
  Parts& p = *parts;
  // What can refuse to start does so before anything is touched: the TLS files, and the socket
  // (taken first, so that a second meshd never runs recovery beside a serving one).
  std::shared_ptr<grpc::ServerCredentials> tls_credentials;
  if (!config.tls.listen.empty()) {
    MESH_ASSIGN_OR_RETURN(tls_credentials, MtlsServerCredentials(config.tls));
  }
  MESH_ASSIGN_OR_RETURN(p.listener,
                        UnixListener::Open({.path = config.socket, .group = config.socket_group}));
  MESH_RETURN_IF_ERROR(MakeDirs(config.state_dir, 0700));
  MESH_RETURN_IF_ERROR(MakeDirs(config.run_dir, 0755));
  MESH_RETURN_IF_ERROR(MakeDirs(config.run_dir + "/netns", 0755));
  MESH_RETURN_IF_ERROR(MakeDirs(config.state_dir + "/tmp", 0700));

  runtime::image::ImageStoreOptions image_options;
  image_options.busybox_path = config.busybox_path;
  MESH_ASSIGN_OR_RETURN(
      p.images, runtime::image::ImageStore::Open(config.state_dir + "/images", image_options));
  if (absl::StatusOr<runtime::image::ImageInfo> busybox = p.images->EnsureBusybox();
      !busybox.ok()) {
    MESH_LOG(Warning) << "the built-in busybox image is not available: " << busybox.status();
  }
  runtime::RuntimeOptions runtime_options;
  runtime_options.run_root = config.run_dir;
  runtime_options.data_root = config.state_dir;
  runtime_options.shim_path = config.shim_path.empty() ? DefaultShimPath() : config.shim_path;
  runtime_options.images = p.images.get();
  runtime_options.cgroup_parent = config.cgroup_parent;
  p.runtime = std::make_unique<runtime::Runtime>(runtime_options);

  netplane::NetworkManagerOptions net_options;
  net_options.state_dir = config.state_dir + "/netplane";
  MESH_RETURN_IF_ERROR(MakeDirs(net_options.state_dir, 0700));
  MESH_ASSIGN_OR_RETURN(net_options.default_pool,
                        netplane::ipam::IpPrefix::Parse(config.default_pool));
  net_options.default_prefix_length = config.default_prefix_length;
  MESH_ASSIGN_OR_RETURN(p.netplane, netplane::NetworkManager::Create(net_options));

  MESH_ASSIGN_OR_RETURN(p.store, Store::Open(config.state_dir + "/store"));
  MESH_ASSIGN_OR_RETURN(Store::Contents contents, p.store->Load());

  if (config.dns.enabled) {
    MESH_ASSIGN_OR_RETURN(p.dns, StartDns(config.dns, p.zone));
  }
  p.networks = std::make_unique<NetworkController>(*p.store, *p.netplane, p.events, p.dns.get());
  ContainerControllerOptions container_options;
  container_options.netns_dir = config.run_dir + "/netns";
  container_options.cgroup_parent = config.cgroup_parent;
  p.containers = std::make_unique<ContainerController>(
      container_options, *p.store, *p.runtime, *p.images, *p.netplane, *p.networks, p.events,
      config.dns.enabled ? &p.zone : nullptr);
  p.links = std::make_unique<netplane::LinkManager>(netplane::KernelRtnlOpener());
  p.groups = std::make_unique<GroupController>(*p.store, *p.containers, *p.networks, *p.links,
                                               *p.netplane, p.events);
  p.checker = std::make_unique<Checker>(*p.containers, *p.groups, *p.netplane);

  // Recovery (DESIGN.md decision 3).
  for (const auto& [name, record] : contents.networks) {
    if (record.phase() != storev1::PHASE_READY) {
      // Half made or half removed: the reconcile below removes its bridge.
      MESH_LOG(Info) << "network \"" << name << "\": dropping its unfinished "
                     << (record.phase() == storev1::PHASE_CREATING ? "creation" : "removal");
      p.store->DeleteNetwork(name).IgnoreError();
    }
  }
  p.networks->Restore(contents.networks);
  netplane::DesiredState desired;
  desired.attachments = p.containers->Restore(contents.containers);
  p.networks->ServeDns();
  desired.networks = p.networks->Desired();
  p.groups->Restore(contents.groups);
  desired.policies = p.groups->Policies();
  if (absl::Status s = p.netplane->Reconcile(desired); !s.ok()) {
    MESH_LOG(Error) << "reconcile: " << s;  // the parts that worked stand; each error is named
  }
  p.groups->ReconcileLinks();
  if (absl::Status s = p.netplane->StartSelfRepair(); !s.ok()) {
    MESH_LOG(Warning) << "nftables self-repair is off: " << s;
  }
  p.containers->Resume();

  Services services{.containers = p.containers.get(),
                    .networks = p.networks.get(),
                    .groups = p.groups.get(),
                    .checker = p.checker.get(),
                    .images = p.images.get(),
                    .events = &p.events,
                    .dns = p.dns.get(),
                    .info = {.state_dir = config.state_dir,
                             .run_dir = config.run_dir,
                             .cgroup_version = CgroupVersionName(),
                             .default_pool = config.default_pool,
                             .default_prefix_length = config.default_prefix_length},
                    .import_dir = config.state_dir + "/tmp"};
  p.services.push_back(MakeContainerService(services));
  p.services.push_back(MakeNetworkService(services));
  p.services.push_back(MakeGroupService(services));
  p.services.push_back(MakeImageService(services));
  p.services.push_back(MakeSystemService(services));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  for (auto& service : p.services) builder.RegisterService(service.get());
  builder.SetMaxReceiveMessageSize(8 << 20);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(ParseErrorInterceptors());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  if (tls_credentials != nullptr) builder.AddListeningPort(config.tls.listen, tls_credentials);
  p.server = builder.BuildAndStart();
  if (p.server == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "could not start the gRPC server",
        config.tls.listen.empty() ? ""
                                  : absl::StrCat(" (is ", config.tls.listen, " free and valid?)")));
  }
  p.listener->Serve(p.server.get());
  const std::string ready =
      absl::StrCat("serving on ", config.socket, "; recovered ", contents.containers.size(),
                   " containers in ", absl::FormatDuration(absl::Now() - began));
  MESH_LOG(Info) << ready;
  NotifyReady(ready);
  return std::unique_ptr<Daemon>(new Daemon(std::move(parts)));
}

}  // namespace mesh::agent
