// meshctl image ls|import|rm|inspect.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "base/unique_fd.h"
#include "cli/cli.h"

namespace mesh::cli {
namespace {

std::string ShortId(const std::string& id) {
  absl::string_view view = id;
  absl::ConsumePrefix(&view, "sha256:");
  return std::string(view.substr(0, 12));
}

}  // namespace

void AddImageCommands(CLI::App& app, Cli& cli) {
  CLI::App* image = app.add_subcommand("image", "Manage images")->alias("images");
  image->require_subcommand(1);

  CLI::App* ls = image->add_subcommand("ls", "List images")->alias("list");
  cli.Action(ls, [&cli]() -> absl::StatusOr<int> {
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    v1::ListImagesResponse response;
    grpc::Status status = (*c)->images().List((*c)->Context().get(), {}, &response);
    if (!status.ok()) return cli.Failed(status);
    return PrintItems(cli, response.images(), {"references", "id", "size", "created", "used by"},
                      [](const v1::Image& i) -> std::vector<std::string> {
                        return {absl::StrJoin(i.references(), ", "), ShortId(i.id()),
                                HumanBytes(i.size_bytes()), Ago(i.created_at()),
                                absl::StrCat(i.containers_size())};
                      });
  });

  CLI::App* import = image->add_subcommand(
      "import", "Import an image: a docker-save or OCI archive (tar, tar.gz), or - for stdin");
  struct ImportFlags {
    std::string path;
    std::string reference;
    bool on_host = false;
  };
  auto f = std::make_shared<ImportFlags>();
  import->add_option("archive", f->path, "the archive (sent to meshd), or - for stdin")->required();
  import->add_option("-r,--reference", f->reference, "name it (web:1.2); default: its own");
  import->add_flag("--on-host", f->on_host,
                   "meshd reads the path itself (an absolute path on meshd's host; a directory "
                   "or an archive): nothing is sent");
  cli.Action(import, [&cli, f]() -> absl::StatusOr<int> {
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    UniqueFd file;
    if (!f->on_host && f->path != "-") {
      file = UniqueFd(open(f->path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!file.valid()) {
        return absl::NotFoundError(absl::StrCat("image import ", f->path, ": ", strerror(errno)));
      }
    }
    auto context = (*c)->Context(absl::InfiniteDuration());
    v1::ImportImageResponse response;
    auto writer = (*c)->images().Import(context.get(), &response);
    v1::ImportImageRequest first;
    if (f->on_host) {
      first.mutable_source()->set_host_path(f->path);
    } else {
      first.mutable_source()->set_streamed(true);
    }
    first.mutable_source()->set_reference(f->reference);
    bool sending = writer->Write(first);
    const int fd = f->on_host ? -1 : (file.valid() ? file.get() : STDIN_FILENO);
    std::string chunk(1 << 20, '\0');
    while (sending && fd >= 0) {
      ssize_t n = read(fd, chunk.data(), chunk.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        context->TryCancel();
        writer->Finish().ok();
        return absl::InternalError(absl::StrCat("image import ", f->path, ": ", strerror(errno)));
      }
      if (n == 0) break;
      v1::ImportImageRequest request;
      request.set_chunk(chunk.data(), static_cast<size_t>(n));
      sending = writer->Write(request);
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (!status.ok()) return cli.Failed(status);
    return PrintItems(
        cli, response.images(), {"references", "id", "size"},
        [](const v1::Image& i) -> std::vector<std::string> {
          return {absl::StrJoin(i.references(), ", "), ShortId(i.id()), HumanBytes(i.size_bytes())};
        });
  });

  CLI::App* rm = image->add_subcommand("rm", "Remove images")->alias("remove");
  auto names = std::make_shared<std::vector<std::string>>();
  rm->add_option("images", *names, "the images (reference or id)")->required();
  cli.Action(rm, [&cli, names]() -> absl::StatusOr<int> {
    absl::StatusOr<Client*> c = cli.client();
    if (!c.ok()) return c.status();
    int code = kExitOk;
    for (const std::string& name : *names) {
      v1::RemoveImageRequest request;
      request.set_image(name);
      v1::RemoveImageResponse response;
      grpc::Status status = (*c)->images().Remove((*c)->Context().get(), request, &response);
      if (!status.ok()) {
        code = cli.Failed(status);
        continue;
      }
      if (response.untagged()) {
        std::printf("untagged %s (the image keeps its other names)\n", name.c_str());
      } else {
        std::printf("removed %s (%d layers deleted)\n", name.c_str(),
                    response.deleted_layers_size());
      }
    }
    return code;
  });

  CLI::App* inspect = image->add_subcommand("inspect", "Show images in full (JSON or YAML)");
  auto inspect_names = std::make_shared<std::vector<std::string>>();
  inspect->add_option("images", *inspect_names, "the images")->required();
  cli.Action(inspect, [&cli, inspect_names]() -> absl::StatusOr<int> {
    return InspectEach(cli, *inspect_names, {ImageGetter()}, "image");
  });
}

}  // namespace mesh::cli
