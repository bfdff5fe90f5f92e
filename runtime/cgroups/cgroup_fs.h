#pragma once

#include <linux/bpf.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"

namespace mesh::runtime {

// The cgroup drivers' only way to the kernel (STYLE.md rule 5): the handful of file and process
// operations a cgroup filesystem needs. KernelCgroupFs makes the syscalls; FakeCgroupFs
// (runtime/cgroups/testing/) models cgroupfs over a temporary directory for unit tests.
//
// Paths are absolute. Errors keep the errno's code (ErrnoToStatus) and name the path.
// Implementations are safe to call from several threads as long as they do not touch the same
// cgroup at once.
class CgroupFs {
 public:
  virtual ~CgroupFs() = default;

  // mkdir(2) with mode 0755: on cgroupfs this creates a cgroup with its interface files.
  // AlreadyExists if `path` exists; NotFound if its parent does not.
  virtual absl::Status MakeDir(const std::string& path) = 0;
  // rmdir(2) of a cgroup. NotFound if it is gone; FailedPrecondition (EBUSY) while it holds
  // processes or child cgroups.
  virtual absl::Status RemoveDir(const std::string& path) = 0;
  // True if `path` exists (a cgroup directory or an interface file).
  virtual bool Exists(const std::string& path) = 0;
  // Names of the directories (child cgroups) directly under `path`, sorted. NotFound if
  // `path` does not exist.
  virtual absl::StatusOr<std::vector<std::string>> ListDirs(const std::string& path) = 0;
  // Reads a whole interface file. NotFound if it does not exist.
  virtual absl::StatusOr<std::string> Read(const std::string& path) = 0;
  // Writes `value` to an existing interface file in a single write(2): cgroupfs parses each
  // write on its own, so a value must never be split. Never creates the file (NotFound if it
  // does not exist, e.g. when a controller is not enabled). The kernel's refusal comes back
  // with its errno (InvalidArgument for EINVAL, FailedPrecondition for EBUSY, ...).
  virtual absl::Status Write(const std::string& path, absl::string_view value) = 0;
  // Opens the cgroup directory `path` (O_RDONLY | O_DIRECTORY | O_CLOEXEC), e.g. for
  // clone3(CLONE_INTO_CGROUP).
  virtual absl::StatusOr<UniqueFd> OpenDir(const std::string& path) = 0;
  // kill(2). NotFound (ESRCH) if the process is gone.
  virtual absl::Status Kill(pid_t pid, int signal) = 0;
  // cgroup v2 device control: makes `program` (a BPF_PROG_TYPE_CGROUP_DEVICE program,
  // DeviceProgram in runtime/cgroups/devices.h) the one device program of the cgroup2
  // directory `path`, replacing the one set before. The kernel removes it with the cgroup.
  virtual absl::Status SetDeviceProgram(const std::string& path,
                                        const std::vector<bpf_insn>& program) = 0;
};

// The real thing. Stateless.
class KernelCgroupFs : public CgroupFs {
 public:
  absl::Status MakeDir(const std::string& path) override;
  absl::Status RemoveDir(const std::string& path) override;
  bool Exists(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDirs(const std::string& path) override;
  absl::StatusOr<std::string> Read(const std::string& path) override;
  absl::Status Write(const std::string& path, absl::string_view value) override;
  absl::StatusOr<UniqueFd> OpenDir(const std::string& path) override;
  absl::Status Kill(pid_t pid, int signal) override;
  absl::Status SetDeviceProgram(const std::string& path,
                                const std::vector<bpf_insn>& program) override;
};

// Parsers for the shapes cgroupfs files come in. Each returns InvalidArgument naming `what`
// (usually the file's path) on malformed text.

// A single number ("1024\n"). "max" is returned as UINT64_MAX.
absl::StatusOr<uint64_t> ParseCgroupValue(absl::string_view text, absl::string_view what);
// "key value" lines (memory.events, memory.oom_control, cpu.stat, pids.events,
// cgroup.events). Values that are "max" become UINT64_MAX.
absl::StatusOr<std::map<std::string, uint64_t>> ParseKeyedValues(absl::string_view text,
                                                                 absl::string_view what);
// One PID per line (cgroup.procs). 0 (a process outside the reader's pid namespace, as cgroup
// v2 shows it) is left out.
absl::StatusOr<std::vector<pid_t>> ParsePidList(absl::string_view text, absl::string_view what);

}  // namespace mesh::runtime
