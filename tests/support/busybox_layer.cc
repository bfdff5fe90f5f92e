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

}  // namespace mesh::testing
