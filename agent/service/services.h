#pragma once

// The gRPC services of mesh.v1 (proto/mesh/v1): thin adapters from requests to the
// controllers, absl::Status to gRPC status codes. Every RPC of the API is served.

#include <memory>
#include <string>

#include "agent/check/check.h"
#include "agent/controller/containers.h"
#include "agent/controller/groups.h"
#include "agent/controller/networks.h"
#include "agent/events/event_bus.h"
#include "grpcpp/grpcpp.h"
#include "mesh/v1/containers.grpc.pb.h"
#include "mesh/v1/groups.grpc.pb.h"
#include "mesh/v1/images.grpc.pb.h"
#include "mesh/v1/networks.grpc.pb.h"
#include "mesh/v1/system.grpc.pb.h"
#include "runtime/image/image_store.h"

namespace mesh::agent {

// absl codes map one to one onto gRPC's.
grpc::Status ToGrpc(const absl::Status& status);

// What SystemService.Info reports besides counts.
struct SystemInfo {
  std::string state_dir;
  std::string run_dir;
  std::string cgroup_version;
  std::string default_pool;
  int default_prefix_length = 24;
};

// Everything the services need, owned by the daemon.
struct Services {
  ContainerController* containers;
  NetworkController* networks;
  GroupController* groups;
  Checker* checker;
  runtime::image::ImageStore* images;
  EventBus* events;
  const dns::DnsServer* dns;  // null: meshd's DNS is off
  SystemInfo info;
  std::string import_dir;  // where streamed image archives are spooled
};

std::unique_ptr<v1::ContainerService::Service> MakeContainerService(const Services& s);
std::unique_ptr<v1::NetworkService::Service> MakeNetworkService(const Services& s);
std::unique_ptr<v1::GroupService::Service> MakeGroupService(const Services& s);
std::unique_ptr<v1::ImageService::Service> MakeImageService(const Services& s);
std::unique_ptr<v1::SystemService::Service> MakeSystemService(const Services& s);

}  // namespace mesh::agent
