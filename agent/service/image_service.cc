// ImageService: imports from a host path or streamed by the client, list, get, remove.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "agent/api/convert.h"
#include "agent/server/parse_errors.h"
#include "agent/service/services.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"

namespace mesh::agent {
namespace {

v1::Image ToApi(const runtime::image::ImageInfo& info) {
  v1::Image image;
  image.set_id(info.id);
  for (const std::string& name : info.names) image.add_references(name);
  for (const std::string& layer : info.diff_ids) image.add_layers(layer);
  image.set_size_bytes(info.size);
  *image.mutable_created_at() = ToProtoTimestamp(info.imported);
  for (const std::string& s : info.config.entrypoint) image.add_entrypoint(s);
  for (const std::string& s : info.config.cmd) image.add_cmd(s);
  for (const std::string& s : info.config.env) image.add_env(s);
  image.set_working_dir(info.config.working_dir);
  image.set_user(info.config.user);
  for (const std::string& c : info.users) image.add_containers(c);
  return image;
}

// Streamed archives are spooled to a file of their own, removed however the import ends.
constexpr uint64_t kMaxArchiveBytes = uint64_t{16} << 30;

class ImageServiceImpl final : public v1::ImageService::Service {
 public:
  explicit ImageServiceImpl(const Services& s) : s_(s) {}

  grpc::Status Import(grpc::ServerContext*, grpc::ServerReader<v1::ImportImageRequest>* reader,
                      v1::ImportImageResponse* response) override {
    v1::ImportImageRequest first;
    if (!reader->Read(&first) || !first.has_source()) {
      return ToGrpc(absl::InvalidArgumentError(
          absl::StrCat("source: the first message of an import must carry `source`; ",
                       kFirstMessageMissingHint)));
    }
    const v1::ImportSource& source = first.source();
    if (absl::Status s = ValidateImportSource(source); !s.ok()) return ToGrpc(s);
    std::string path;
    std::string spool;
    if (source.source_case() == v1::ImportSource::kHostPath) {
      path = source.host_path();  // validated above: absolute, no NUL, no ".."
    } else if (source.streamed()) {
      spool = absl::StrCat(s_.import_dir, "/import-XXXXXX");
      UniqueFd fd(mkostemp(spool.data(), O_CLOEXEC));
      if (!fd.valid()) return ToGrpc(mesh::ErrnoToStatus(errno, "spool the image archive"));
      uint64_t total = 0;
      v1::ImportImageRequest chunk;
      absl::Status status;
      while (status.ok() && reader->Read(&chunk)) {
        if (!chunk.has_chunk()) {
          status = absl::InvalidArgumentError("chunk: only chunks may follow the source");
        } else if ((total += chunk.chunk().size()) > kMaxArchiveBytes) {
          status = absl::InvalidArgumentError("chunk: the archive is larger than 16 GiB");
        } else {
          status = WriteAll(fd.get(), chunk.chunk(), "the spooled image archive");
        }
      }
      if (!status.ok()) {
        unlink(spool.c_str());
        return ToGrpc(status);
      }
      path = spool;
    } else {
      return ToGrpc(absl::InvalidArgumentError("source: give host_path or streamed"));
    }
    absl::StatusOr<std::vector<runtime::image::ImageInfo>> images =
        s_.images->Import(path, source.reference());
    if (!spool.empty()) unlink(spool.c_str());
    if (!images.ok()) return ToGrpc(images.status());
    for (const runtime::image::ImageInfo& info : *images) {
      *response->add_images() = ToApi(info);
      v1::Event event;
      event.set_kind(v1::Event::KIND_IMAGE_IMPORTED);
      event.set_object(info.names.empty() ? info.id : info.names.front());
      (*event.mutable_attributes())["id"] = info.id;
      s_.events->Publish(std::move(event));
    }
    return grpc::Status::OK;
  }

  grpc::Status List(grpc::ServerContext*, const v1::ListImagesRequest*,
                    v1::ListImagesResponse* response) override {
    for (const runtime::image::ImageInfo& info : s_.images->List())
      *response->add_images() = ToApi(info);
    return grpc::Status::OK;
  }

  grpc::Status Get(grpc::ServerContext*, const v1::GetImageRequest* request,
                   v1::Image* response) override {
    absl::StatusOr<runtime::image::ImageInfo> info = s_.images->Inspect(request->image());
    if (!info.ok()) return ToGrpc(info.status());
    *response = ToApi(*info);
    return grpc::Status::OK;
  }

  grpc::Status Remove(grpc::ServerContext*, const v1::RemoveImageRequest* request,
                      v1::RemoveImageResponse* response) override {
    absl::StatusOr<runtime::image::ImageInfo> before = s_.images->Inspect(request->image());
    if (!before.ok()) return ToGrpc(before.status());
    absl::StatusOr<bool> untagged = s_.images->Untag(request->image());
    if (!untagged.ok()) return ToGrpc(untagged.status());
    if (*untagged) {
      response->set_untagged(true);
      PublishImageEvent(v1::Event::KIND_IMAGE_UNTAGGED, request->image(), before->id);
      return grpc::Status::OK;
    }
    if (absl::Status s = s_.images->Remove(request->image()); !s.ok()) return ToGrpc(s);
    // Layers of the removed image that no remaining image has are the deleted ones.
    std::set<std::string> kept;
    for (const runtime::image::ImageInfo& info : s_.images->List()) {
      kept.insert(info.diff_ids.begin(), info.diff_ids.end());
    }
    std::set<std::string> deleted;
    for (const std::string& layer : before->diff_ids) {
      if (!kept.contains(layer)) deleted.insert(layer);
    }
    for (const std::string& layer : deleted) response->add_deleted_layers(layer);
    PublishImageEvent(v1::Event::KIND_IMAGE_REMOVED, request->image(), before->id);
    return grpc::Status::OK;
  }

 private:
  void PublishImageEvent(v1::Event::Kind kind, const std::string& image, const std::string& id) {
    v1::Event event;
    event.set_kind(kind);
    event.set_object(image);
    (*event.mutable_attributes())["id"] = id;
    s_.events->Publish(std::move(event));
  }

  const Services s_;
};

}  // namespace

std::unique_ptr<v1::ImageService::Service> MakeImageService(const Services& s) {
  return std::make_unique<ImageServiceImpl>(s);
}

}  // namespace mesh::agent
