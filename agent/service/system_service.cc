// SystemService: version, info, events.
#include "agent/api/convert.h"
#include "agent/api/version.h"
#include "agent/service/services.h"

namespace mesh::agent {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

namespace {

class SystemServiceImpl final : public v1::SystemService::Service {
 public:
  explicit SystemServiceImpl(const Services& s) : s_(s) {}

  grpc::Status Version(grpc::ServerContext*, const v1::VersionRequest*,
                       v1::VersionResponse* response) override {
    *response = CurrentVersion();
    return grpc::Status::OK;
  }

  grpc::Status Info(grpc::ServerContext*, const v1::InfoRequest*,
                    v1::InfoResponse* response) override {
    *response->mutable_version() = CurrentVersion();
    const ContainerController::Counts counts = s_.containers->Count();
    response->set_containers_running(counts.running);
    response->set_containers_stopped(counts.stopped);
    response->set_networks(static_cast<uint32_t>(s_.networks->size()));
    response->set_groups(static_cast<uint32_t>(s_.groups->size()));
    response->set_images(static_cast<uint32_t>(s_.images->List().size()));
    response->set_state_dir(s_.info.state_dir);
    response->set_run_dir(s_.info.run_dir);
    response->set_cgroup_version(s_.info.cgroup_version);
    response->set_default_subnet_pool(s_.info.default_pool);
    response->set_default_subnet_prefix_length(
        static_cast<uint32_t>(s_.info.default_prefix_length));
    if (s_.dns != nullptr) {
      v1::DnsInfo* dns = response->mutable_dns();
      for (const auto& address : s_.dns->Listening()) dns->add_listening(address.ToString());
      for (const dns::Upstream& u : s_.dns->options().upstreams) dns->add_upstreams(u.ToString());
      *dns->mutable_upstream_timeout() = ToProtoDuration(s_.dns->options().upstream_timeout);
      const dns::ServerStats stats = s_.dns->Stats();
      dns->set_queries(stats.queries);
      dns->set_answered(stats.answered);
      dns->set_forwarded(stats.forwarded);
      dns->set_servfail(stats.servfail);
      dns->set_malformed(stats.malformed);
      for (std::string& problem : s_.networks->DnsProblems()) dns->add_problems(std::move(problem));
    }
    return grpc::Status::OK;
  }

  grpc::Status Events(grpc::ServerContext* context, const v1::EventsRequest* request,
                      grpc::ServerWriter<v1::Event>* writer) override {
    std::unique_ptr<EventBus::Subscription> subscription = s_.events->Subscribe(*request);
    while (!context->IsCancelled()) {
      absl::StatusOr<std::optional<v1::Event>> event = subscription->Next(absl::Milliseconds(500));
      if (!event.ok()) return ToGrpc(event.status());
      if (event->has_value() && !writer->Write(**event)) break;
    }
    return grpc::Status::CANCELLED;
  }

 private:
  const Services s_;
};

}  // namespace

std::unique_ptr<v1::SystemService::Service> MakeSystemService(const Services& s) {
  return std::make_unique<SystemServiceImpl>(s);
}

}  // namespace mesh::agent
