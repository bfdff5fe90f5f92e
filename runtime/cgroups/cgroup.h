#pragma once

// mesh's cgroups: one interface (Cgroup, made by a CgroupDriver) with two implementations, one
// for cgroup v1 (a hierarchy per controller: memory, cpu, cpuacct, pids, freezer, devices) and
// one for cgroup v2 (one unified hierarchy), chosen by what the host mounts (DetectCgroupDriver).
// docs/cgroups.md maps every limit to the files each driver writes.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/cgroups/cgroup_fs.h"
#include "runtime/cgroups/layout.h"
#include "runtime/spec/spec.h"

namespace mesh::runtime {

enum class CgroupVersion { kV1, kV2 };
absl::string_view CgroupVersionName(CgroupVersion version);  // "v1", "v2"

// What a cgroup has used, read from the kernel's counters.
struct CgroupStats {
  uint64_t memory_usage_bytes = 0;  // v1 memory.usage_in_bytes, v2 memory.current
  // Highest usage since creation: v1 memory.max_usage_in_bytes, v2 memory.peak (kernel >= 5.19).
  std::optional<uint64_t> memory_peak_bytes;
  uint64_t cpu_usage_ns = 0;  // v1 cpuacct.usage, v2 cpu.stat usage_usec * 1000
  // Periods in which the CPU quota stopped the cgroup (cpu.stat nr_throttled); 0 without a
  // quota.
  uint64_t cpu_throttled_periods = 0;
  uint64_t pids_current = 0;  // pids.current: tasks (threads included) charged to the cgroup
  // fork()/clone() calls refused because pids.max was reached (pids.events "max").
  uint64_t pids_rejected = 0;
  // Processes the kernel's OOM killer killed in the cgroup (v2 memory.events "oom_kill", v1
  // memory.oom_control "oom_kill"); unset on v1 kernels older than 4.13, which do not count.
  std::optional<uint64_t> oom_kills;
};

// One directory of a cgroup and the hierarchy it lies in (Cgroup::HierarchyDirs).
struct CgroupHierarchyDir {
  // v1: the base name of the hierarchy's mount point, as /sys/fs/cgroup shows it ("memory",
  // "cpu,cpuacct"); v2: "" (the one unified hierarchy).
  std::string hierarchy;
  std::string dir;  // the cgroup's directory in it ("/sys/fs/cgroup/memory/mesh/web-1")
};

// One cgroup: a directory per hierarchy it lives in (v1: one each for memory, cpu, cpuacct,
// pids, freezer and devices, fewer where controllers are mounted together; v2: one).
//
// The object is a handle, not the owner of the kernel object: a container's cgroup outlives
// the handle (and meshd), so dropping a Cgroup leaves the cgroup as it is. Destroy() removes
// it; CgroupDriver::Open finds it again after a restart. Not thread-safe: one thread at a time.
class Cgroup {
 public:
  virtual ~Cgroup() = default;

  virtual CgroupVersion version() const = 0;
  // The name given to CgroupDriver::Create/Open.
  virtual const std::string& name() const = 0;
  // The cgroup's directories, one per distinct hierarchy, in a fixed order.
  virtual std::vector<std::string> Paths() const = 0;
  // Paths() with the hierarchy of each, for showing the container its own cgroup at
  // /sys/fs/cgroup (runtime/rootfs/cgroupfs.h).
  virtual std::vector<CgroupHierarchyDir> HierarchyDirs() const = 0;
  // v2: a descriptor of the cgroup directory (O_RDONLY | O_DIRECTORY), for
  // clone3(CLONE_INTO_CGROUP), valid while this object lives. -1 on v1, and on v2 when the
  // directory did not exist when the handle was made.
  virtual int dir_fd() const = 0;

  // Sets the limits present in `resources`; absent ones keep their current value (so Apply is
  // also an update). Device rules, when given, replace the cgroup's device access as a whole
  // (v1 devices.deny/devices.allow, v2 a BPF device program; runtime/cgroups/devices.h). Every
  // value is checked first (ValidateResources): InvalidArgument and no file touched if any is
  // wrong. FailedPrecondition if a limit needs what the host lacks (swap accounting for
  // memory_swap). A kernel refusal part way leaves the earlier limits set and names the file.
  virtual absl::Status Apply(const Resources& resources) = 0;
  // The limits the kernel holds now, in Resources' terms; unlimited values are unset. v2 does
  // not report cpu_shares (cpu.weight cannot be converted back exactly). Device rules are not
  // reported (v1 devices.list does not show an allow default's exceptions, a v2 program is
  // not read back).
  virtual absl::StatusOr<Resources> Limits() = 0;

  // Moves process `pid` (with all its threads) into the cgroup, in every hierarchy.
  virtual absl::Status AddProcess(pid_t pid) = 0;
  // Processes in the cgroup and its descendants, as seen from the caller's pid namespace.
  // NotFound if the cgroup is gone.
  virtual absl::StatusOr<std::vector<pid_t>> Pids() = 0;
  virtual absl::StatusOr<CgroupStats> Stats() = 0;
  // The OOM killer's kill count (see CgroupStats::oom_kills). Unimplemented on v1 kernels
  // without the counter.
  virtual absl::StatusOr<uint64_t> OomKillCount() = 0;

  // Stops every process in the cgroup (v1 freezer.state, v2 cgroup.freeze) and waits until the
  // kernel reports the cgroup frozen. Idempotent. DeadlineExceeded if it does not freeze in time.
  virtual absl::Status Freeze() = 0;
  // Lets them run again. Idempotent.
  virtual absl::Status Thaw() = 0;
  // Sends `signal` to every process in the cgroup. For SIGKILL, returns once the cgroup is
  // empty (v2: cgroup.kill where the kernel has it; otherwise, and on v1: freeze, signal every
  // listed process, thaw, repeat until no process is left, so a fork bomb cannot outrun it).
  // Other signals are sent once, while frozen, so no process forked meanwhile is missed.
  // OK if the cgroup is empty. DeadlineExceeded if processes remain after the kill timeout.
  virtual absl::Status KillAll(int signal) = 0;
  // Removes the cgroup: kills whatever still runs in it (SIGKILL), then removes its
  // directories (child cgroups first) in every hierarchy, waiting a bounded time for exiting
  // processes to leave. Idempotent: OK when already gone, also when only some hierarchies still
  // have it (what a crash during Create leaves). Keeps going past errors and returns them all.
  // The parent directory stays (CgroupDriver::RemoveParent).
  virtual absl::Status Destroy() = 0;
};

struct CgroupDriverOptions {
  // Where mesh's cgroups live, relative to the root of each hierarchy: "mesh" in production
  // ("/sys/fs/cgroup/memory/mesh/<name>" on v1, "/sys/fs/cgroup/mesh/<name>" on v2). One or more
  // path components. Tests use "mesh-test-..." (the test launcher sweeps those). On v2 the parent
  // must hold no processes of its own, since it passes controllers down to its children.
  std::string parent = "mesh";
  // How long KillAll and Destroy wait for processes to go, and Freeze for the kernel to freeze.
  absl::Duration timeout = absl::Seconds(10);
  // The filesystem seam; null means the kernel (KernelCgroupFs).
  std::shared_ptr<CgroupFs> fs;
};

// Makes and finds cgroups under one parent directory. Paths are deterministic (parent + name),
// so a restarted agent finds its containers' cgroups with Open. Not thread-safe.
class CgroupDriver {
 public:
  virtual ~CgroupDriver() = default;

  virtual CgroupVersion version() const = 0;
  // The parent directory in each hierarchy the driver uses.
  virtual std::vector<std::string> ParentPaths() const = 0;

  // Creates cgroup `name` (ValidateCgroupName) in every hierarchy, making the parent directories
  // if missing and, on v2, enabling the memory, pids and cpu controllers for them
  // (cgroup.subtree_control from the root down). AlreadyExists if any hierarchy already has
  // it (Destroy the leftover or Open it). On failure, removes what it created.
  virtual absl::StatusOr<std::unique_ptr<Cgroup>> Create(absl::string_view name) = 0;
  // Re-attaches to an existing cgroup. NotFound, naming the missing directory, unless every
  // hierarchy has it.
  virtual absl::StatusOr<std::unique_ptr<Cgroup>> Open(absl::string_view name) = 0;
  // A handle on `name` whatever is left of it, for Destroy() of partial leftovers. Never
  // touches the kernel (only names are checked).
  virtual absl::StatusOr<std::unique_ptr<Cgroup>> Attach(absl::string_view name) = 0;
  // Names of the cgroups under the parent (the union over hierarchies), sorted; empty if the
  // parent does not exist. For reconcile: anything no record owns is an orphan.
  virtual absl::StatusOr<std::vector<std::string>> List() = 0;
  // Removes the parent directory (its last component) in every hierarchy. OK if gone;
  // FailedPrecondition while cgroups remain under it.
  virtual absl::Status RemoveParent() = 0;
};

// Chooses the driver for a host:
//   - v2 if the cgroup2 mount's cgroup.controllers lists memory, pids and cpu (pure v2 hosts,
//     and hybrid hosts that moved those controllers to v2);
//   - else v1 if memory, cpu, cpuacct, pids, freezer and devices are mounted as v1 hierarchies
//     (pure v1, and hybrid hosts such as this project's CI machines, whose cgroup2 mount holds
//     no such controller);
//   - else FailedPrecondition saying what is missing.
// InvalidArgument if options.parent is not a clean relative path.
absl::StatusOr<std::unique_ptr<CgroupDriver>> DetectCgroupDriver(const CgroupLayout& layout,
                                                                 CgroupDriverOptions options = {});

// Reads the layout of the calling process's mount namespace (/proc/self/mountinfo).
absl::StatusOr<CgroupLayout> ReadCgroupLayout(
    const std::string& mountinfo = "/proc/self/mountinfo");

// A cgroup name: 1 to 255 characters of [A-Za-z0-9_-], starting with a letter or digit. No
// '.', so a name can never collide with an interface file ("memory.max"), and none of v1's
// dot-less file names ("tasks", "notify_on_release", "release_agent"). InvalidArgument naming
// the problem otherwise.
absl::Status ValidateCgroupName(absl::string_view name);

// Checks every value of `resources` against what the kernel accepts, before anything is
// written (see docs/cgroups.md for the ranges). InvalidArgument naming the field, the value
// and the allowed range.
absl::Status ValidateResources(const Resources& resources);

// Limits below this are refused: a process cannot even start in them, and an instant OOM kill
// explains less than an error.
inline constexpr int64_t kMinMemoryLimit = int64_t{1} << 20;

// cgroup v2 cpu.weight (1..10000) from v1 cpu.shares (2..262144), the conversion runc and crun
// use: 1 + ((shares - 2) * 9999) / 262142, so 2 -> 1, 1024 -> 39, 262144 -> 10000.
uint64_t CpuSharesToWeight(uint64_t shares);

// The exit reason rule: a container's process that ended by SIGKILL while the cgroup's OOM kill
// count grew (OomKillCount before the start and after the exit) was killed by the OOM killer.
bool WasOomKilled(int term_signal, uint64_t oom_kills_before, uint64_t oom_kills_after);

}  // namespace mesh::runtime
