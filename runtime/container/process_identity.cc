#include "runtime/container/process_identity.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace mesh::runtime {

absl::StatusOr<uint64_t> ProcessStartTime(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) {
    return absl::NotFoundError(absl::StrCat("process ", pid, " does not exist"));
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields after the last
  // ')' are space-separated, starttime is field 22 overall, the 20th after comm.
  size_t close = stat->rfind(')');
  if (close == std::string::npos) {
    return absl::DataLossError(absl::StrCat("/proc/", pid, "/stat: unexpected format"));
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*stat).substr(close + 2), ' ');
  uint64_t start = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &start)) {
    return absl::DataLossError(absl::StrCat("/proc/", pid, "/stat: no start time"));
  }
  return start;
}

absl::StatusOr<ProcessIdentity> ProcessIdentity::Of(pid_t pid) {
  MESH_ASSIGN_OR_RETURN(uint64_t start, ProcessStartTime(pid));
  return ProcessIdentity{pid, start};
}

absl::StatusOr<UniqueFd> ProcessIdentity::Open() const {
  UniqueFd fd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!fd.valid()) {
    if (errno == ESRCH) return absl::NotFoundError(absl::StrCat("process ", pid, " is gone"));
    return mesh::ErrnoToStatus(errno, absl::StrCat("pidfd_open ", pid));
  }
  // Checked after opening: if the start time still matches, the pidfd is the process we mean
  // (a pidfd never moves to another process).
  absl::StatusOr<uint64_t> start = ProcessStartTime(pid);
  if (!start.ok() || *start != start_time) {
    return absl::NotFoundError(
        absl::StrCat("process ", pid, " is gone (the pid now belongs to another process)"));
  }
  return fd;
}

}  // namespace mesh::runtime
