#pragma once

// Internal to runtime/cgroups: what the v1 and v2 drivers share. Not for use outside.

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/cgroups/cgroup.h"
#include "runtime/cgroups/cgroup_fs.h"

namespace mesh::runtime::cgroup_internal {

// `dir`/`file`.
std::string Join(absl::string_view dir, absl::string_view file);

// Reads a single-number file ("max" = UINT64_MAX).
absl::StatusOr<uint64_t> ReadValue(CgroupFs& fs, const std::string& path);
// Like ReadValue, but unset when the file does not exist (a counter older kernels lack).
absl::StatusOr<std::optional<uint64_t>> ReadOptionalValue(CgroupFs& fs, const std::string& path);
// Reads one key of a "key value" file; NotFound naming the key if it is missing.
absl::StatusOr<uint64_t> ReadKey(CgroupFs& fs, const std::string& path, absl::string_view key);
// Like ReadKey, but unset when the file or the key does not exist.
absl::StatusOr<std::optional<uint64_t>> ReadOptionalKey(CgroupFs& fs, const std::string& path,
                                                        absl::string_view key);

// Creates `dir`; AlreadyExists counts as success.
absl::Status EnsureDir(CgroupFs& fs, const std::string& dir);

// Creates the directories of `parent` (relative, '/'-separated) under `root`, top down, calling
// `prepare(dir)` on the root and on each one (v2 enables controllers there). Returns the full
// parent path.
absl::StatusOr<std::string> EnsureParent(
    CgroupFs& fs, const std::string& root, const std::string& parent,
    const std::function<absl::Status(const std::string& dir)>& prepare);

// One error out of many (teardown collects them all): OK if all are OK, otherwise the first
// error's code with every message joined by "; ".
absl::Status JoinErrors(const std::vector<absl::Status>& errors);

// What both drivers' cgroups share: process listing, the kill loop and removal. Subclasses say
// how to freeze, how to tell emptiness and whether the kernel can kill everything at once.
class CgroupBase : public Cgroup {
 public:
  const std::string& name() const override { return name_; }
  absl::StatusOr<std::vector<pid_t>> Pids() override;
  absl::Status KillAll(int signal) override;
  absl::Status Destroy() override;

 protected:
  CgroupBase(std::string name, std::shared_ptr<CgroupFs> fs, absl::Duration timeout)
      : name_(std::move(name)), fs_(std::move(fs)), timeout_(timeout) {}

  // "cgroup \"name\"", for messages.
  std::string Describe() const;
  // True if any of Paths() exists.
  bool AnyPathExists();
  // Whether Freeze()/Thaw() work for this cgroup now (the freezer directory or file exists).
  virtual bool CanFreeze() = 0;
  // True if no process is left in the cgroup or below it. Default: Pids() is empty.
  virtual absl::StatusOr<bool> IsEmpty();
  // SIGKILLs every process at once if the kernel offers it (v2 cgroup.kill): true if done,
  // false if the caller must signal process by process.
  virtual absl::StatusOr<bool> KillAtOnce() { return false; }
  // Waits until `condition` holds (polling), at most `timeout`; DeadlineExceeded naming `what`.
  absl::Status WaitUntil(const std::function<absl::StatusOr<bool>()>& condition,
                         absl::Duration timeout, absl::string_view what);

  CgroupFs& fs() { return *fs_; }
  absl::Duration timeout() const { return timeout_; }

 private:
  // One round of freeze, signal every listed process, thaw. Returns how many it signalled.
  // Clears `use_freezer` (and signals unfrozen) if the cgroup does not freeze in time.
  absl::StatusOr<size_t> SignalRound(int signal, bool& use_freezer);
  // Removes `dir` and its child cgroups, deepest first, retrying while the kernel still says
  // busy (exiting processes leave a moment after SIGKILL) until `deadline`.
  absl::Status RemoveTree(const std::string& dir, absl::Time deadline);

  std::string name_;
  std::shared_ptr<CgroupFs> fs_;
  absl::Duration timeout_;
};

}  // namespace mesh::runtime::cgroup_internal
