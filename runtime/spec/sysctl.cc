#include "runtime/spec/sysctl.h"

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "base/quote.h"

namespace mesh::runtime {

absl::StatusOr<SysctlNamespace> ValidateSysctl(absl::string_view name, absl::string_view value) {
  const std::string quoted = Quote(name);
  if (name.empty() || name.size() > 256) {
    return absl::InvalidArgumentError(absl::StrCat("sysctl ", quoted, ": 1 to 256 bytes"));
  }
  for (absl::string_view part : absl::StrSplit(name, '.')) {
    if (part.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sysctl ", quoted, ": an empty part; write it with dots, such as net.ipv4.ip_forward"));
    }
    for (char ch : part) {
      if (!absl::ascii_islower(static_cast<unsigned char>(ch)) &&
          !absl::ascii_isdigit(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-') {
        return absl::InvalidArgumentError(
            absl::StrCat("sysctl ", quoted,
                         ": only lower-case letters, digits, '_' and '-' between the dots (write "
                         "net.ipv4.ip_forward, not net/ipv4/ip_forward)"));
      }
    }
  }
  if (value.empty() || value.size() > 4096 || value.find('\n') != absl::string_view::npos ||
      value.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("sysctl ", quoted, ": the value ", Quote(value),
                                                   " must be one line of 1 to 4096 bytes"));
  }
  if (absl::StartsWith(name, "net.")) return SysctlNamespace::kNetwork;
  static constexpr absl::string_view kIpc[] = {
      "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
      "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"};
  for (absl::string_view ipc : kIpc) {
    if (name == ipc) return SysctlNamespace::kIpc;
  }
  if (absl::StartsWith(name, "fs.mqueue.")) return SysctlNamespace::kIpc;
  return absl::InvalidArgumentError(absl::StrCat(
      "sysctl ", quoted,
      ": not of the container's own namespaces, so setting it would change the host; a "
      "container may set net.*, kernel.msg*, kernel.sem, kernel.shm* and fs.mqueue.*"));
}

std::string SysctlPath(absl::string_view name) {
  return absl::StrCat("/proc/sys/", absl::StrReplaceAll(name, {{".", "/"}}));
}

}  // namespace mesh::runtime
