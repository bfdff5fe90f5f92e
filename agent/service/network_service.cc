// NetworkService.
#include "agent/api/convert.h"
#include "agent/service/services.h"

namespace mesh::agent {
namespace {

class NetworkServiceImpl final : public v1::NetworkService::Service {
 public:
  explicit NetworkServiceImpl(const Services& s) : s_(s) {}

  grpc::Status Create(grpc::ServerContext*, const v1::CreateNetworkRequest* request,
                      v1::Network* response) override {
    absl::StatusOr<v1::Network> network = s_.networks->Create(request->spec());
    if (!network.ok()) return ToGrpc(network.status());
    *response = *std::move(network);
    return grpc::Status::OK;
  }
  grpc::Status Remove(grpc::ServerContext*, const v1::RemoveNetworkRequest* request,
                      v1::RemoveNetworkResponse*) override {
    return ToGrpc(s_.networks->Remove(request->name()));
  }
  grpc::Status Get(grpc::ServerContext*, const v1::GetNetworkRequest* request,
                   v1::Network* response) override {
    absl::StatusOr<v1::Network> network = s_.networks->Get(request->name());
    if (!network.ok()) return ToGrpc(network.status());
    *response = *std::move(network);
    return grpc::Status::OK;
  }
  grpc::Status List(grpc::ServerContext*, const v1::ListNetworksRequest* request,
                    v1::ListNetworksResponse* response) override {
    for (v1::Network& n : s_.networks->List(request->selector())) {
      *response->add_networks() = std::move(n);
    }
    return grpc::Status::OK;
  }
  grpc::Status Connect(grpc::ServerContext*, const v1::ConnectRequest* request,
                       v1::ConnectResponse* response) override {
    if (absl::Status s = ValidateConnectRequest(*request); !s.ok()) return ToGrpc(s);
    absl::StatusOr<v1::ContainerAddress> address =
        s_.containers->Connect(request->container(), request->network(), request->ip(),
                               {request->aliases().begin(), request->aliases().end()});
    if (!address.ok()) return ToGrpc(address.status());
    *response->mutable_address() = *std::move(address);
    return grpc::Status::OK;
  }
  grpc::Status Disconnect(grpc::ServerContext*, const v1::DisconnectRequest* request,
                          v1::DisconnectResponse*) override {
    return ToGrpc(s_.containers->Disconnect(request->container(), request->network()));
  }
  grpc::Status Check(grpc::ServerContext*, const v1::CheckRequest* request,
                     v1::CheckResult* response) override {
    absl::StatusOr<v1::CheckResult> result = s_.checker->Check(*request);
    if (!result.ok()) return ToGrpc(result.status());
    *response = *std::move(result);
    return grpc::Status::OK;
  }
  grpc::Status CheckGroup(grpc::ServerContext*, const v1::CheckGroupRequest* request,
                          v1::CheckGroupResponse* response) override {
    absl::StatusOr<v1::CheckGroupResponse> result = s_.checker->CheckGroup(*request);
    if (!result.ok()) return ToGrpc(result.status());
    *response = *std::move(result);
    return grpc::Status::OK;
  }

 private:
  const Services s_;
};

}  // namespace

std::unique_ptr<v1::NetworkService::Service> MakeNetworkService(const Services& s) {
  return std::make_unique<NetworkServiceImpl>(s);
}

}  // namespace mesh::agent
