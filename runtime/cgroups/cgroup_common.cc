#include "runtime/cgroups/cgroup_common.h"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace mesh::runtime::cgroup_internal {
namespace {

std::string SignalName(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  return abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", signal);
}

// Adds the PIDs listed in `dir` and in its child cgroups to `pids`. Child cgroups that vanish
// meanwhile are skipped.
absl::Status CollectPids(CgroupFs& fs, const std::string& dir, std::vector<pid_t>& pids) {
  const std::string procs = Join(dir, "cgroup.procs");
  MESH_ASSIGN_OR_RETURN(std::string text, fs.Read(procs));
  MESH_ASSIGN_OR_RETURN(std::vector<pid_t> here, ParsePidList(text, procs));
  pids.insert(pids.end(), here.begin(), here.end());
  MESH_ASSIGN_OR_RETURN(std::vector<std::string> children, fs.ListDirs(dir));
  for (const std::string& child : children) {
    absl::Status s = CollectPids(fs, Join(dir, child), pids);
    if (!s.ok() && !absl::IsNotFound(s)) return s;
  }
  return absl::OkStatus();
}

}  // namespace

std::string Join(absl::string_view dir, absl::string_view file) {
  return absl::StrCat(dir, "/", file);
}

absl::StatusOr<uint64_t> ReadValue(CgroupFs& fs, const std::string& path) {
  MESH_ASSIGN_OR_RETURN(std::string text, fs.Read(path));
  return ParseCgroupValue(text, path);
}

absl::StatusOr<std::optional<uint64_t>> ReadOptionalValue(CgroupFs& fs, const std::string& path) {
  if (!fs.Exists(path)) return std::nullopt;
  MESH_ASSIGN_OR_RETURN(uint64_t value, ReadValue(fs, path));
  return value;
}

absl::StatusOr<uint64_t> ReadKey(CgroupFs& fs, const std::string& path, absl::string_view key) {
  MESH_ASSIGN_OR_RETURN(std::optional<uint64_t> value, ReadOptionalKey(fs, path, key));
  if (!value) return absl::NotFoundError(absl::StrCat(path, ": no \"", key, "\" line"));
  return *value;
}

absl::StatusOr<std::optional<uint64_t>> ReadOptionalKey(CgroupFs& fs, const std::string& path,
                                                        absl::string_view key) {
  if (!fs.Exists(path)) return std::nullopt;
  MESH_ASSIGN_OR_RETURN(std::string text, fs.Read(path));
  MESH_ASSIGN_OR_RETURN(auto values, ParseKeyedValues(text, path));
  auto it = values.find(std::string(key));
  if (it == values.end()) return std::nullopt;
  return it->second;
}

absl::Status EnsureDir(CgroupFs& fs, const std::string& dir) {
  absl::Status s = fs.MakeDir(dir);
  if (absl::IsAlreadyExists(s)) return absl::OkStatus();
  return s;
}

absl::StatusOr<std::string> EnsureParent(
    CgroupFs& fs, const std::string& root, const std::string& parent,
    const std::function<absl::Status(const std::string& dir)>& prepare) {
  std::string dir = root;
  MESH_RETURN_IF_ERROR(prepare(dir));
  for (absl::string_view component : absl::StrSplit(parent, '/')) {
    dir = Join(dir, component);
    MESH_RETURN_IF_ERROR(EnsureDir(fs, dir));
    MESH_RETURN_IF_ERROR(prepare(dir));
  }
  return dir;
}

absl::Status JoinErrors(const std::vector<absl::Status>& errors) {
  std::vector<absl::string_view> messages;
  absl::StatusCode code = absl::StatusCode::kOk;
  for (const absl::Status& s : errors) {
    if (s.ok()) continue;
    if (code == absl::StatusCode::kOk) code = s.code();
    messages.push_back(s.message());
  }
  if (code == absl::StatusCode::kOk) return absl::OkStatus();
  return absl::Status(code, absl::StrJoin(messages, "; "));
}

std::string CgroupBase::Describe() const {
  return absl::StrCat("cgroup \"", name_, "\" (", CgroupVersionName(version()), ")");
}

bool CgroupBase::AnyPathExists() {
  for (const std::string& path : Paths()) {
    if (fs_->Exists(path)) return true;
  }
  return false;
}

absl::Status CgroupBase::WaitUntil(const std::function<absl::StatusOr<bool>()>& condition,
                                   absl::Duration timeout, absl::string_view what) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration interval = absl::Milliseconds(2);
  for (;;) {
    MESH_ASSIGN_OR_RETURN(bool done, condition());
    if (done) return absl::OkStatus();
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("timed out after ", absl::FormatDuration(timeout), " waiting for ", what));
    }
    absl::SleepFor(std::min(interval, deadline - now));
    interval = std::min(interval * 2, absl::Milliseconds(50));
  }
}

absl::StatusOr<std::vector<pid_t>> CgroupBase::Pids() {
  std::vector<pid_t> pids;
  bool found = false;
  for (const std::string& path : Paths()) {
    if (!fs_->Exists(path)) continue;
    found = true;
    absl::Status s = CollectPids(*fs_, path, pids);
    if (!s.ok()) return mesh::Annotate(s, absl::StrCat("list processes of ", Describe()));
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat(Describe(), " does not exist (looked for ",
                                            absl::StrJoin(Paths(), ", "), ")"));
  }
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  return pids;
}

absl::StatusOr<bool> CgroupBase::IsEmpty() {
  absl::StatusOr<std::vector<pid_t>> pids = Pids();
  if (absl::IsNotFound(pids.status())) return true;
  if (!pids.ok()) return pids.status();
  return pids->empty();
}

absl::StatusOr<size_t> CgroupBase::SignalRound(int signal, bool& use_freezer) {
  // Frozen, no process can fork or exit between listing and signalling, so none is missed and
  // no PID can be recycled under us.
  bool freeze = false;
  if (use_freezer && CanFreeze()) {
    absl::Status frozen = Freeze();
    if (absl::IsDeadlineExceeded(frozen)) {
      // A task that cannot freeze (stuck in the kernel) must not stop the kill: signal without
      // freezing from now on. Freeze() has thawed the cgroup again.
      use_freezer = false;
    } else {
      MESH_RETURN_IF_ERROR(frozen);
      freeze = true;
    }
  }
  std::vector<absl::Status> errors;
  size_t signalled = 0;
  absl::StatusOr<std::vector<pid_t>> pids = Pids();
  if (pids.ok()) {
    for (pid_t pid : *pids) {
      absl::Status s = fs_->Kill(pid, signal);
      if (s.ok()) ++signalled;
      if (!s.ok() && !absl::IsNotFound(s)) errors.push_back(s);  // NotFound: already gone.
    }
  } else if (!absl::IsNotFound(pids.status())) {
    errors.push_back(pids.status());
  }
  // Thaw even after an error: a cgroup left frozen would hang its container.
  if (freeze) errors.push_back(Thaw());
  MESH_RETURN_IF_ERROR(JoinErrors(errors));
  return signalled;
}

absl::Status CgroupBase::KillAll(int signal) {
  const std::string what =
      absl::StrCat("send ", SignalName(signal), " to every process of ", Describe());
  if (!AnyPathExists()) return absl::OkStatus();
  bool use_freezer = true;
  if (signal != SIGKILL) return mesh::Annotate(SignalRound(signal, use_freezer).status(), what);

  absl::StatusOr<bool> at_once = KillAtOnce();
  if (!at_once.ok()) return mesh::Annotate(at_once.status(), what);
  auto empty = [this] { return IsEmpty(); };
  if (*at_once) return mesh::Annotate(WaitUntil(empty, timeout_, "the processes to exit"), what);

  const absl::Time deadline = absl::Now() + timeout_;
  for (;;) {
    absl::StatusOr<size_t> signalled = SignalRound(SIGKILL, use_freezer);
    if (!signalled.ok()) return mesh::Annotate(signalled.status(), what);
    // Killed processes need a moment to exit; list again only after that.
    absl::Duration round =
        std::clamp(deadline - absl::Now(), absl::ZeroDuration(), absl::Milliseconds(250));
    absl::Status s = WaitUntil(empty, round, "the processes to exit");
    if (s.ok()) return absl::OkStatus();
    if (!absl::IsDeadlineExceeded(s)) return mesh::Annotate(s, what);
    if (absl::Now() >= deadline) {
      absl::StatusOr<std::vector<pid_t>> left = Pids();
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": processes [", left.ok() ? absl::StrJoin(*left, " ") : "?",
                       "] still there after ", absl::FormatDuration(timeout_),
                       " (stuck in uninterruptible sleep? see their /proc/PID/stack)"));
    }
  }
}

absl::Status CgroupBase::RemoveTree(const std::string& dir, absl::Time deadline) {
  if (!fs_->Exists(dir)) return absl::OkStatus();
  std::vector<absl::Status> errors;
  absl::StatusOr<std::vector<std::string>> children = fs_->ListDirs(dir);
  if (absl::IsNotFound(children.status())) return absl::OkStatus();
  if (!children.ok()) return children.status();
  for (const std::string& child : *children) {
    errors.push_back(RemoveTree(Join(dir, child), deadline));
  }
  // A child that stays keeps its parent busy: no point waiting for it.
  if (!JoinErrors(errors).ok()) return JoinErrors(errors);
  auto removed = [this, &dir]() -> absl::StatusOr<bool> {
    absl::Status s = fs_->RemoveDir(dir);
    if (s.ok() || absl::IsNotFound(s)) return true;
    if (absl::IsFailedPrecondition(s)) return false;  // EBUSY: a process is still leaving.
    return s;
  };
  absl::Status s = WaitUntil(removed, std::max(deadline - absl::Now(), absl::ZeroDuration()),
                             absl::StrCat("cgroup directory ", dir, " to become removable"));
  if (absl::IsDeadlineExceeded(s)) {
    // Report the kernel's own words for the last attempt.
    absl::Status last = fs_->RemoveDir(dir);
    if (last.ok() || absl::IsNotFound(last)) return JoinErrors(errors);
    s = absl::Status(last.code(), absl::StrCat(last.message(), " (", s.message(), ")"));
  }
  errors.push_back(s);
  return JoinErrors(errors);
}

absl::Status CgroupBase::Destroy() {
  // Teardown order: processes first (a cgroup that holds any cannot be removed), then the
  // directories, child cgroups before their parent. Every hierarchy is tried even when one
  // fails, and every error is reported.
  std::vector<absl::Status> errors;
  if (AnyPathExists()) {
    absl::Status killed = KillAll(SIGKILL);
    // NotFound: a cgroup file went while killing, so another teardown (the shim's own, on a
    // failed start) removed the cgroup meanwhile; what is left of it, RemoveTree takes.
    if (!absl::IsNotFound(killed)) errors.push_back(killed);
  }
  // After a failed kill the directories stay busy: try once instead of waiting in vain.
  const absl::Time deadline = JoinErrors(errors).ok() ? absl::Now() + timeout_ : absl::Now();
  for (const std::string& path : Paths()) errors.push_back(RemoveTree(path, deadline));
  return mesh::Annotate(JoinErrors(errors), absl::StrCat("destroy ", Describe()));
}

}  // namespace mesh::runtime::cgroup_internal
