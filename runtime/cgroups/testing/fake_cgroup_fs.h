#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/cgroups/cgroup_fs.h"
#include "runtime/cgroups/layout.h"

namespace mesh::runtime {

// What a fake v1 hierarchy offers (FakeCgroupFs::AddV1Hierarchy).
struct FakeV1Options {
  // memory.memsw.* files exist (swap accounting on).
  bool swap_accounting = true;
  // memory.oom_control has an "oom_kill" line (kernel >= 4.13).
  bool oom_kill_counter = true;
};

// What a fake v2 hierarchy offers (FakeCgroupFs::AddV2Hierarchy).
struct FakeV2Options {
  // The root's cgroup.controllers.
  std::vector<std::string> controllers = {"cpu", "io", "memory", "pids"};
  bool swap_file = true;    // memory.swap.max exists
  bool kill_file = true;    // cgroup.kill exists (Linux 5.14)
  bool freeze_file = true;  // cgroup.freeze exists (Linux 5.2)
  bool peak_file = true;    // memory.peak exists (Linux 5.19)
};

// A cgroup filesystem over a temporary directory, for unit tests without root or kernel
// (STYLE.md rule 5). Hierarchies are plain directories under root(); the fake does what the
// kernel does on top of the files:
//
//   - mkdir of a cgroup creates its interface files with the kernel's defaults: v1 per the
//     hierarchy's controllers (memory.limit_in_bytes, memory.memsw.limit_in_bytes,
//     memory.oom_control, cpu.cfs_quota_us, cpu.cfs_period_us, cpu.shares, cpu.stat,
//     cpuacct.usage, pids.max, pids.current, pids.events, freezer.state, ...); v2 the core
//     files (cgroup.procs, cgroup.controllers, cgroup.subtree_control, cgroup.events,
//     cgroup.freeze, cgroup.kill, cpu.stat) plus the files of each controller the parent
//     enables (memory.max, memory.swap.max, memory.current, memory.peak, memory.events, cpu.max,
//     cpu.weight, pids.max, pids.current, pids.events);
//   - rmdir removes the files with the directory; EBUSY while the cgroup has processes or
//     children, or is a hierarchy's root; ENOENT if gone;
//   - writes are parsed and checked like the kernel does, with its errnos: EINVAL for
//     malformed or out-of-range values (cpu.max quota < 1000 us, period outside 1 ms..1 s,
//     cpu.weight outside 1..10000, v1 memory.limit_in_bytes above memory.memsw.limit_in_bytes and
//     the reverse), EACCES for read-only files, ENOENT for missing files (never created);
//     memory limits are rounded down to 4 KiB pages, "-1" stores v1's "unlimited" number;
//   - cgroup.procs: writing a PID moves it out of every other cgroup of that hierarchy; v2
//     refuses (EBUSY) a process in a non-root cgroup that passes controllers down;
//     cgroup.subtree_control needs the controller in cgroup.controllers (ENOENT) and no
//     processes in a non-root cgroup (EBUSY), and adds the controller's files to existing
//     children; pids.current and cgroup.events "populated" follow the processes of the subtree;
//   - v1 devices: "a" to devices.deny/devices.allow sets the default and clears the exceptions
//     (EINVAL with child cgroups), other lines ("c 1:3 rwm", EINVAL if malformed) add or remove
//     an exception; devices.list shows "a *:* rwm" for an allow default, else the exceptions;
//     a child starts with its parent's rules. v2 device programs are recorded per cgroup
//     (SetDeviceProgram; ENOENT for a missing directory, EBADF outside a v2 hierarchy) and
//     dropped with it;
//   - cgroup.kill SIGKILLs the subtree; freezer.state / cgroup.freeze set the state
//     (frozen at once, unless a process was made unfreezable; cgroup.events "frozen" follows);
//   - Kill() never calls kill(2): it logs the signal; SIGKILL ends the process (it leaves every
//     cgroup.procs) unless it sits in a FROZEN v1 freezer cgroup, where it dies at the thaw as
//     on the real v1 freezer, or was made unkillable. ESRCH for a PID the fake never saw or that
//     ended.
// Not modelled: threads (each PID is one task), memory/cpu usage (tests set those counters
// with SetFileForTest), real OOM kills, delegation and permissions.
// Not thread-safe.
class FakeCgroupFs : public CgroupFs {
 public:
  // An empty fake in a new temporary directory (under $TMPDIR, else /tmp).
  static absl::StatusOr<std::shared_ptr<FakeCgroupFs>> Create();
  // Removes the temporary directory and everything in it.
  ~FakeCgroupFs() override;
  FakeCgroupFs(const FakeCgroupFs&) = delete;
  FakeCgroupFs& operator=(const FakeCgroupFs&) = delete;

  const std::string& root() const { return root_; }

  // "Mounts" a v1 hierarchy holding `controllers` (several for co-mounted ones, like {"cpu",
  // "cpuacct"}) at root()/<mount_name>; returns that path.
  absl::StatusOr<std::string> AddV1Hierarchy(const std::string& mount_name,
                                             const std::vector<std::string>& controllers,
                                             FakeV1Options options = {});
  // The six controllers mesh's v1 driver uses, each in its own hierarchy, as on this
  // project's CI machines, plus cpuset (which mesh does not use).
  absl::Status AddStandardV1Hierarchies(FakeV1Options options = {});

  absl::StatusOr<std::string> AddV2Hierarchy(const std::string& mount_name,
                                             FakeV2Options options = {});

  // The layout /proc/self/mountinfo would show for the hierarchies added so far.
  CgroupLayout Layout() const;

  // Overwrites an existing file as the kernel would update it (memory.current, memory.events,
  // cpuacct.usage, ...), bypassing the write rules. NotFound if it does not exist.
  absl::Status SetFileForTest(const std::string& path, absl::string_view contents);
  // Deletes an interface file, to model a kernel without it.
  absl::Status RemoveFileForTest(const std::string& path);
  // Process `pid` ends by itself: it leaves every cgroup.
  void ExitForTest(pid_t pid);
  // Process `pid` ignores SIGKILL (stuck in uninterruptible sleep).
  void SetUnkillableForTest(pid_t pid) { unkillable_.insert(pid); }
  // Process `pid` never freezes: a cgroup holding it stays "FREEZING" (v1) or never reports
  // "frozen 1" (v2).
  void SetUnfreezableForTest(pid_t pid) { unfreezable_.insert(pid); }
  enum class Op { kMakeDir, kRemoveDir, kWrite, kOpenDir };
  // The next `op` on exactly `path` returns `error` and changes nothing (OK lets it pass once,
  // to target a later call). Calls for the same op and path queue up.
  void FailNextForTest(Op op, const std::string& path, absl::Status error);
  // Every Kill() call so far: (pid, signal), in order.
  const std::vector<std::pair<pid_t, int>>& signals() const { return signals_; }
  // Every successful Write() so far: (path, value), in order.
  const std::vector<std::pair<std::string, std::string>>& writes() const { return writes_; }
  // The device program SetDeviceProgram() last set on cgroup `path`; empty if none (or the
  // cgroup was removed since).
  std::vector<bpf_insn> DeviceProgramForTest(const std::string& path) const;
  // How many times SetDeviceProgram() succeeded.
  int device_program_sets() const { return device_program_sets_; }

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

 private:
  // A v1 devices cgroup (security/device_cgroup.c): a default and its exceptions.
  struct DeviceState {
    bool allow = true;
    std::vector<std::string> exceptions;  // "c 1:3 rwm", in the order added
  };
  struct Hierarchy {
    std::string mount;
    bool v2 = false;
    std::set<std::string> controllers;  // v1: this hierarchy's; v2: the root's
    FakeV1Options v1_options;
    FakeV2Options v2_options;
  };

  explicit FakeCgroupFs(std::string root) : root_(std::move(root)) {}

  // The hierarchy `path` lies in (a mount point or below), or nullptr.
  Hierarchy* HierarchyOf(const std::string& path);
  // Creates the interface files of a new cgroup `dir`; `controllers` are the v2 controllers
  // enabled for it (unused on v1).
  absl::Status Populate(const Hierarchy& h, const std::string& dir,
                        const std::set<std::string>& controllers);
  absl::Status PopulateV2Controller(const Hierarchy& h, const std::string& dir,
                                    const std::string& controller);
  // Every cgroup directory of `h`, parents before children.
  std::vector<std::string> CgroupDirs(const Hierarchy& h);
  std::vector<pid_t> ProcsOf(const std::string& dir);
  void SetProcs(const std::string& dir, const std::vector<pid_t>& pids);
  // The process ends: out of every cgroup of every hierarchy.
  void EndProcess(pid_t pid);
  // Recomputes pids.current and cgroup.events of every cgroup of every hierarchy.
  void Refresh();
  // True if `pid` sits in a FROZEN v1 freezer cgroup.
  bool InFrozenV1Cgroup(pid_t pid);
  // Checks `value` written to `file` of cgroup `dir` as the kernel would and, if accepted,
  // stores it with its side effects. Returns the errno, 0 if accepted.
  int ApplyWrite(const Hierarchy& h, const std::string& dir, const std::string& file,
                 absl::string_view value);
  absl::Status TakeInjectedError(Op op, const std::string& path);
  // devices.list of v1 cgroup `dir` as the kernel shows it.
  std::string DevicesList(const std::string& dir) const;

  std::string root_;
  std::vector<Hierarchy> hierarchies_;
  std::set<pid_t> live_;          // processes the fake has seen and that have not ended
  std::set<pid_t> pending_kill_;  // SIGKILLed while frozen (v1): die at the thaw
  std::set<pid_t> unkillable_;
  std::set<pid_t> unfreezable_;
  std::map<std::pair<Op, std::string>, std::vector<absl::Status>> injected_;
  std::vector<std::pair<pid_t, int>> signals_;
  std::vector<std::pair<std::string, std::string>> writes_;
  std::map<std::string, DeviceState> devices_;             // v1 devices cgroups by dir
  std::map<std::string, std::vector<bpf_insn>> programs_;  // v2 device programs by dir
  int device_program_sets_ = 0;
};

}  // namespace mesh::runtime
