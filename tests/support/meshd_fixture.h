#pragma once

// meshd as integration tests, e2e tests and benchmarks run it: the real binary, started inside
// the test's sandbox (its own state dir, run dir and socket), driven over the unix socket with
// real gRPC stubs. It can be killed with SIGKILL and started again on the same state.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/child_process.h"
#include "grpcpp/grpcpp.h"
#include "mesh/v1/containers.grpc.pb.h"
#include "mesh/v1/groups.grpc.pb.h"
#include "mesh/v1/images.grpc.pb.h"
#include "mesh/v1/networks.grpc.pb.h"
#include "mesh/v1/system.grpc.pb.h"

namespace mesh::testing {

struct MeshdOptions {
  std::string meshd_path;  // the built meshd
  std::string shim_path;   // the built mesh-shim
  std::string state_dir = "/var/lib/mesh";
  std::string run_dir = "/run/mesh";
  std::string socket = "/run/mesh/meshd.sock";
  std::string default_pool = "10.88.0.0/16";
  // Where meshd's DNS forwards names it does not know: wan's address (Sandbox::kWanAddress),
  // never the host's resolvers, so no query leaves the sandbox. Nothing answers there unless a
  // test starts a DNS server in wan (port unreachable: SERVFAIL at once).
  std::string dns_upstreams = "203.0.113.254";
  std::vector<std::string> extra_args;
  std::vector<std::string> extra_env;               // "MESH_FAULT_AFTER=..."
  std::string log_file = "/run/scratch/meshd.log";  // meshd's stderr, appended
};

class Meshd {
 public:
  // Starts meshd and waits until it answers grpc.health.v1 SERVING (up to `timeout`).
  static absl::StatusOr<std::unique_ptr<Meshd>> Start(MeshdOptions options,
                                                      absl::Duration timeout = absl::Seconds(20));
  ~Meshd();  // SIGTERM, then SIGKILL after 10 s

  // SIGKILL, as `kill -9` (containers must keep running).
  void Kill9();
  // Starts it again on the same state (after Kill9 or Stop), with `extra_env` replaced.
  absl::Status Restart(std::vector<std::string> extra_env = {},
                       absl::Duration timeout = absl::Seconds(20));
  // Waits for meshd to end by itself (a fault injection point): its exit.
  absl::StatusOr<ExitStatus> WaitExit(absl::Duration timeout = absl::Seconds(30));
  bool running() { return process_.running(); }
  pid_t pid() const { return process_.pid(); }

  v1::ContainerService::Stub& containers() { return *containers_; }
  v1::NetworkService::Stub& networks() { return *networks_; }
  v1::GroupService::Stub& groups() { return *groups_; }
  v1::ImageService::Stub& images() { return *images_; }
  v1::SystemService::Stub& system() { return *system_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  const MeshdOptions& options() const { return options_; }
  // What meshd wrote to its log so far.
  std::string Log() const;

 private:
  explicit Meshd(MeshdOptions options) : options_(std::move(options)) {}
  absl::Status Launch(absl::Duration timeout);

  MeshdOptions options_;
  ChildProcess process_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ContainerService::Stub> containers_;
  std::unique_ptr<v1::NetworkService::Stub> networks_;
  std::unique_ptr<v1::GroupService::Stub> groups_;
  std::unique_ptr<v1::ImageService::Stub> images_;
  std::unique_ptr<v1::SystemService::Stub> system_;
};

// A deadline-bound client context (default 60 s), so a hung meshd fails a test instead of
// hanging it.
std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout = absl::Seconds(60));

// One grpc.health.v1.Health/Check of the default service "" at `target`, by hand (the
// generated health stubs are not packaged). True if the server answered SERVING.
bool HealthCheckServes(const std::string& target);
// The services grpc.reflection.v1alpha lists at `target` (ServerReflectionInfo with
// list_services, by hand as well); the raw response bytes, which hold the service names.
absl::StatusOr<std::string> ReflectionListServices(const std::string& target);

// "CODE: message" of a gRPC status, for assertions and failure messages.
std::string StatusText(const grpc::Status& status);

}  // namespace mesh::testing
