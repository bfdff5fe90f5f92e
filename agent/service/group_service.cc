// GroupService: Apply streams one message per member change, then the group as applied.
#include "agent/service/services.h"

namespace mesh::agent {
namespace {

class GroupServiceImpl final : public v1::GroupService::Service {
 public:
  explicit GroupServiceImpl(const Services& s) : s_(s) {}

  grpc::Status Apply(grpc::ServerContext* context, const v1::ApplyGroupRequest* request,
                     grpc::ServerWriter<v1::ApplyGroupProgress>* writer) override {
    absl::StatusOr<v1::Group> group = s_.groups->Apply(
        request->spec(),
        [writer](const v1::MemberStatus& member) {
          v1::ApplyGroupProgress progress;
          *progress.mutable_member() = member;
          writer->Write(progress);  // a client that went away still gets the group applied
        },
        [context] { return context->IsCancelled(); });
    if (!group.ok()) return ToGrpc(group.status());
    v1::ApplyGroupProgress done;
    *done.mutable_done() = *std::move(group);
    writer->Write(done);
    return grpc::Status::OK;
  }

  grpc::Status Get(grpc::ServerContext*, const v1::GetGroupRequest* request,
                   v1::Group* response) override {
    absl::StatusOr<v1::Group> group = s_.groups->Get(request->name());
    if (!group.ok()) return ToGrpc(group.status());
    *response = *std::move(group);
    return grpc::Status::OK;
  }

  grpc::Status List(grpc::ServerContext*, const v1::ListGroupsRequest* request,
                    v1::ListGroupsResponse* response) override {
    for (v1::Group& g : s_.groups->List(request->selector()))
      *response->add_groups() = std::move(g);
    return grpc::Status::OK;
  }

  grpc::Status Delete(grpc::ServerContext*, const v1::DeleteGroupRequest* request,
                      v1::DeleteGroupResponse* response) override {
    absl::StatusOr<std::vector<v1::MemberStatus>> removed = s_.groups->Delete(request->name());
    if (!removed.ok()) return ToGrpc(removed.status());
    for (v1::MemberStatus& m : *removed) *response->add_removed() = std::move(m);
    return grpc::Status::OK;
  }

 private:
  const Services s_;
};

}  // namespace

std::unique_ptr<v1::GroupService::Service> MakeGroupService(const Services& s) {
  return std::make_unique<GroupServiceImpl>(s);
}

}  // namespace mesh::agent
