#include "runtime/cgroups/cgroup_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "runtime/cgroups/devices.h"

namespace mesh::runtime {

absl::Status KernelCgroupFs::MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("create cgroup directory ", path));
  }
  return absl::OkStatus();
}

absl::Status KernelCgroupFs::RemoveDir(const std::string& path) {
  if (::rmdir(path.c_str()) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("remove cgroup directory ", path));
  }
  return absl::OkStatus();
}

bool KernelCgroupFs::Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::StatusOr<std::vector<std::string>> KernelCgroupFs::ListDirs(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return mesh::ErrnoToStatus(errno, absl::StrCat("list cgroup ", path));
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir)) {
    absl::string_view name = e->d_name;
    if (e->d_type == DT_DIR && name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::string> KernelCgroupFs::Read(const std::string& path) {
  return mesh::ReadFile(path);
}

absl::Status KernelCgroupFs::Write(const std::string& path, absl::string_view value) {
  const std::string what = absl::StrCat("write \"", value, "\" to ", path);
  // No O_CREAT: a missing interface file means a missing controller, never a file to make.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return mesh::ErrnoToStatus(errno, what);
  ssize_t n;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return mesh::ErrnoToStatus(errno, what);
  if (static_cast<size_t>(n) != value.size()) {
    return absl::InternalError(absl::StrCat(what, ": short write (", n, " bytes)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> KernelCgroupFs::OpenDir(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return mesh::ErrnoToStatus(errno, absl::StrCat("open cgroup directory ", path));
  return fd;
}

absl::Status KernelCgroupFs::Kill(pid_t pid, int signal) {
  if (::kill(pid, signal) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("signal process ", pid, " with ", signal));
  }
  return absl::OkStatus();
}

absl::Status KernelCgroupFs::SetDeviceProgram(const std::string& path,
                                              const std::vector<bpf_insn>& program) {
  const std::string what = absl::StrCat("set the device program of cgroup ", path);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return mesh::ErrnoToStatus(errno, what);
  return ReplaceDeviceProgram(fd.get(), program, what);
}

absl::StatusOr<uint64_t> ParseCgroupValue(absl::string_view text, absl::string_view what) {
  absl::string_view value = absl::StripAsciiWhitespace(text);
  if (value == "max") return std::numeric_limits<uint64_t>::max();
  uint64_t out = 0;
  if (!absl::SimpleAtoi(value, &out)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected a number or \"max\", got \"", value, "\""));
  }
  return out;
}

absl::StatusOr<std::map<std::string, uint64_t>> ParseKeyedValues(absl::string_view text,
                                                                 absl::string_view what) {
  std::map<std::string, uint64_t> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> fields =
        absl::StrSplit(absl::StripAsciiWhitespace(line), ' ', absl::SkipEmpty());
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": expected \"key value\" lines, got \"", line, "\""));
    }
    absl::StatusOr<uint64_t> value = ParseCgroupValue(fields[1], what);
    if (!value.ok()) return value.status();
    out[std::string(fields[0])] = *value;
  }
  return out;
}

absl::StatusOr<std::vector<pid_t>> ParsePidList(absl::string_view text, absl::string_view what) {
  std::vector<pid_t> pids;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(line, &pid) || pid < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": expected one process id per line, got \"", line, "\""));
    }
    // cgroup v2 lists a process outside the reader's pid namespace as 0: it cannot be named
    // (or signalled) from here.
    if (pid > 0) pids.push_back(pid);
  }
  return pids;
}

}  // namespace mesh::runtime
