#pragma once

// meshctl's connection to meshd: where it is (--host, MESH_HOST, the default socket), the
// channel (plain on a unix socket, mutual TLS on TCP), the stubs, and errors put for people.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "mesh/v1/containers.grpc.pb.h"
#include "mesh/v1/groups.grpc.pb.h"
#include "mesh/v1/images.grpc.pb.h"
#include "mesh/v1/networks.grpc.pb.h"
#include "mesh/v1/system.grpc.pb.h"

namespace mesh::cli {

inline constexpr char kDefaultHost[] = "unix:///run/mesh/meshd.sock";

struct HostOptions {
  // "unix:///path/to.sock" (or a plain absolute path) or "tcp://host:port". Empty: MESH_HOST,
  // else kDefaultHost.
  std::string host;
  // For tcp:// (all three required there): PEM files of the client's certificate and key and
  // of the CA that signed meshd's certificate.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
};

// Where to connect: the gRPC target ("unix:/run/mesh/meshd.sock", "host:port") and whether
// it takes TLS. InvalidArgument for a host that is neither.
struct Endpoint {
  std::string target;
  bool tls = false;
  std::string shown;  // as the user gave it, for messages
};
absl::StatusOr<Endpoint> ResolveHost(const HostOptions& options);

class Client {
 public:
  // Makes the channel (it connects on the first call). InvalidArgument for a bad host or
  // missing TLS files.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const HostOptions& options);

  v1::ContainerService::Stub& containers() { return *containers_; }
  v1::NetworkService::Stub& networks() { return *networks_; }
  v1::GroupService::Stub& groups() { return *groups_; }
  v1::ImageService::Stub& images() { return *images_; }
  v1::SystemService::Stub& system() { return *system_; }

  // A context for one call: a deadline for unary calls; streams pass InfiniteDuration.
  std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(60)) const;

  // A failed call, for people: meshd's message, or for a meshd that cannot be reached, where
  // it was looked for and what to check.
  std::string Describe(const grpc::Status& status) const;

 private:
  explicit Client(Endpoint endpoint) : endpoint_(std::move(endpoint)) {}

  Endpoint endpoint_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ContainerService::Stub> containers_;
  std::unique_ptr<v1::NetworkService::Stub> networks_;
  std::unique_ptr<v1::GroupService::Stub> groups_;
  std::unique_ptr<v1::ImageService::Stub> images_;
  std::unique_ptr<v1::SystemService::Stub> system_;
};

}  // namespace mesh::cli
