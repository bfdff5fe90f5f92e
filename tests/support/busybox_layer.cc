#include "tests/support/busybox_layer.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/child_process.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace mesh::testing {

absl::Status MakeBusyboxLayer(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  for (const char* sub : {"/bin", "/etc", "/tmp", "/proc", "/sys", "/dev", "/root"}) {
    std::filesystem::create_directories(dir + sub, ec);
    if (ec) return mesh::ErrnoToStatus(ec.value(), absl::StrCat("create ", dir, sub));
  }
  std::filesystem::copy_file("/bin/busybox", dir + "/bin/busybox", ec);
  if (ec) return mesh::ErrnoToStatus(ec.value(), "copy /bin/busybox");
  MESH_ASSIGN_OR_RETURN(CommandResult list,
                        RunCommand({.argv = {"/bin/busybox", "--list"}}, absl::Seconds(10)));
  for (absl::string_view applet : absl::StrSplit(list.out, '\n', absl::SkipEmpty())) {
    if (applet == "busybox") continue;
    std::filesystem::create_symlink("busybox", absl::StrCat(dir, "/bin/", applet), ec);
    if (ec) return mesh::ErrnoToStatus(ec.value(), absl::StrCat("link applet ", applet));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MakeBusyboxArchive(const std::string& dir, const std::string& tag,
                                               const std::string& greeting) {
  MESH_RETURN_IF_ERROR(MakeBusyboxLayer(dir + "/rootfs"));
  const std::string script = absl::StrCat(
      "cd '", dir,
      "' && tar -C rootfs -cf layer.tar . && sha=$(sha256sum layer.tar | cut -d' ' -f1) && "
      "printf '{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\",\"-c\","
      "\"echo ",
      greeting,
      "\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:%s\"]}}' $sha > config.json && "
      "printf '[{\"Config\":\"config.json\",\"RepoTags\":[\"",
      tag,
      "\"],\"Layers\":[\"layer.tar\"]}]' > manifest.json && "
      "tar -cf image.tar manifest.json config.json layer.tar && rm -rf rootfs layer.tar");
  MESH_ASSIGN_OR_RETURN(CommandResult made,
                        RunCommand({.argv = {"sh", "-c", script},
                                    .env = std::vector<std::string>{"PATH=/usr/bin:/bin"}},
                                   absl::Seconds(60)));
  if (!made.status.ok()) {
    return absl::InternalError(absl::StrCat("make the image archive in ", dir, ": ",
                                            made.status.ToString(), ": ", made.err));
  }
  return dir + "/image.tar";
}

}  // namespace mesh::testing
