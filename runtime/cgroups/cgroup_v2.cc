#include "runtime/cgroups/cgroup_v2.h"

#include <limits>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/errno_status.h"
#include "base/rollback.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "runtime/cgroups/cgroup_common.h"
#include "runtime/cgroups/devices.h"

namespace mesh::runtime {
namespace {

using cgroup_internal::CgroupBase;
using cgroup_internal::Join;
using cgroup_internal::ReadKey;
using cgroup_internal::ReadOptionalKey;
using cgroup_internal::ReadOptionalValue;
using cgroup_internal::ReadValue;

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// The controller whose files a cgroup v2 interface file belongs to ("memory.max" -> "memory").
absl::string_view ControllerOf(absl::string_view file) { return file.substr(0, file.find('.')); }

class CgroupV2 : public CgroupBase {
 public:
  CgroupV2(std::string name, std::string dir, UniqueFd dir_fd, std::shared_ptr<CgroupFs> fs,
           absl::Duration timeout)
      : CgroupBase(std::move(name), std::move(fs), timeout),
        dir_(std::move(dir)),
        dir_fd_(std::move(dir_fd)) {}

  CgroupVersion version() const override { return CgroupVersion::kV2; }
  std::vector<std::string> Paths() const override { return {dir_}; }
  std::vector<CgroupHierarchyDir> HierarchyDirs() const override { return {{"", dir_}}; }
  int dir_fd() const override { return dir_fd_.get(); }

  absl::Status Apply(const Resources& r) override {
    const std::string what = absl::StrCat("apply resources to ", Describe());
    MESH_RETURN_IF_ERROR(mesh::Annotate(ValidateResources(r), what));

    // Everything that can be refused is checked before the first write: the files of each
    // limit asked for must exist, i.e. its controller is enabled for this cgroup.
    std::vector<absl::string_view> needed;
    if (r.memory_limit) needed.push_back("memory.max");
    if (r.cpu_quota || r.cpu_period) needed.push_back("cpu.max");
    if (r.cpu_shares) needed.push_back("cpu.weight");
    if (r.pids_limit) needed.push_back("pids.max");
    for (absl::string_view file : needed) {
      if (!fs().Exists(File(file))) {
        return absl::FailedPreconditionError(absl::StrCat(
            what, ": ", File(file), " does not exist: the \"", ControllerOf(file),
            "\" controller is not enabled for this cgroup (see cgroup.subtree_control of ",
            "its parent)"));
      }
    }
    const std::string swap_file = File("memory.swap.max");
    const bool has_swap = fs().Exists(swap_file);
    if (r.memory_limit && !has_swap) {
      int64_t swap = r.memory_swap.value_or(*r.memory_limit);
      if (swap != -1 && swap != *r.memory_limit) {
        return absl::FailedPreconditionError(
            absl::StrCat(what, ": memory_swap needs swap accounting, which this kernel lacks (",
                         swap_file, " is missing), or leave memory_swap unset"));
      }
    }

    if (r.memory_limit) {
      MESH_RETURN_IF_ERROR(
          mesh::Annotate(fs().Write(File("memory.max"), absl::StrCat(*r.memory_limit)), what));
      if (has_swap) {
        // OCI's memory_swap is memory + swap; v2 limits swap alone.
        const int64_t swap = r.memory_swap.value_or(*r.memory_limit);
        std::string value = swap == -1 ? "max" : absl::StrCat(swap - *r.memory_limit);
        MESH_RETURN_IF_ERROR(mesh::Annotate(fs().Write(swap_file, value), what));
      }
    }
    if (r.cpu_quota || r.cpu_period) {
      // cpu.max is "$QUOTA $PERIOD"; the kernel keeps the period when only a quota is written.
      // A period alone needs the current quota written back with it.
      std::string quota;
      if (r.cpu_quota) {
        quota = *r.cpu_quota == -1 ? "max" : absl::StrCat(*r.cpu_quota);
      } else {
        MESH_ASSIGN_OR_RETURN(std::string current, fs().Read(File("cpu.max")));
        std::vector<std::string> fields =
            absl::StrSplit(absl::StripAsciiWhitespace(current), ' ', absl::SkipEmpty());
        quota = fields.empty() ? "max" : fields[0];
      }
      std::string value = r.cpu_period ? absl::StrCat(quota, " ", *r.cpu_period) : quota;
      MESH_RETURN_IF_ERROR(mesh::Annotate(fs().Write(File("cpu.max"), value), what));
    }
    if (r.cpu_shares) {
      MESH_RETURN_IF_ERROR(mesh::Annotate(
          fs().Write(File("cpu.weight"), absl::StrCat(CpuSharesToWeight(*r.cpu_shares))), what));
    }
    if (r.pids_limit) {
      // OCI: 0 and -1 mean no limit.
      std::string value = *r.pids_limit <= 0 ? "max" : absl::StrCat(*r.pids_limit);
      MESH_RETURN_IF_ERROR(mesh::Annotate(fs().Write(File("pids.max"), value), what));
    }
    if (!r.devices.empty()) {
      // cgroup v2 has no devices files: a BPF program decides, replacing the one set before.
      MESH_RETURN_IF_ERROR(
          mesh::Annotate(fs().SetDeviceProgram(dir_, DeviceProgram(r.devices)), what));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Resources> Limits() override {
    absl::StatusOr<Resources> limits = ReadLimits();
    if (!limits.ok()) {
      return mesh::Annotate(limits.status(), absl::StrCat("read limits of ", Describe()));
    }
    return limits;
  }

  absl::Status AddProcess(pid_t pid) override {
    return mesh::Annotate(fs().Write(File("cgroup.procs"), absl::StrCat(pid)),
                          absl::StrCat("add process ", pid, " to ", Describe()));
  }

  absl::StatusOr<CgroupStats> Stats() override {
    absl::StatusOr<CgroupStats> stats = ReadStats();
    if (!stats.ok()) {
      return mesh::Annotate(stats.status(), absl::StrCat("read stats of ", Describe()));
    }
    return stats;
  }

  absl::StatusOr<uint64_t> OomKillCount() override {
    absl::StatusOr<uint64_t> count = ReadKey(fs(), File("memory.events"), "oom_kill");
    if (!count.ok()) {
      return mesh::Annotate(count.status(), absl::StrCat("count OOM kills of ", Describe()));
    }
    return count;
  }

  absl::Status Freeze() override { return SetFrozen(true); }
  absl::Status Thaw() override { return SetFrozen(false); }

 protected:
  bool CanFreeze() override { return fs().Exists(File("cgroup.freeze")); }

  // "populated" covers descendants and processes our pid namespace cannot see.
  absl::StatusOr<bool> IsEmpty() override {
    if (!fs().Exists(dir_)) return true;
    MESH_ASSIGN_OR_RETURN(uint64_t populated, ReadKey(fs(), File("cgroup.events"), "populated"));
    return populated == 0;
  }

  // cgroup.kill (Linux 5.14) SIGKILLs the whole subtree in the kernel, racing no fork.
  absl::StatusOr<bool> KillAtOnce() override {
    if (!fs().Exists(File("cgroup.kill"))) return false;
    MESH_RETURN_IF_ERROR(fs().Write(File("cgroup.kill"), "1"));
    return true;
  }

 private:
  std::string File(absl::string_view file) const { return Join(dir_, file); }

  absl::Status SetFrozen(bool frozen) {
    const std::string what = absl::StrCat(frozen ? "freeze " : "thaw ", Describe());
    MESH_RETURN_IF_ERROR(
        mesh::Annotate(fs().Write(File("cgroup.freeze"), frozen ? "1" : "0"), what));
    // The write starts it; cgroup.events says "frozen 1" once every task stopped.
    absl::Status s = WaitUntil(
        [&]() -> absl::StatusOr<bool> {
          MESH_ASSIGN_OR_RETURN(uint64_t state, ReadKey(fs(), File("cgroup.events"), "frozen"));
          return state == (frozen ? 1u : 0u);
        },
        timeout(), absl::StrCat(File("cgroup.events"), " to say frozen ", frozen ? 1 : 0));
    if (!s.ok() && frozen) {
      // Best effort: do not leave the cgroup half frozen.
      fs().Write(File("cgroup.freeze"), "0").IgnoreError();
    }
    return mesh::Annotate(s, what);
  }

  absl::StatusOr<Resources> ReadLimits() {
    Resources out;
    MESH_ASSIGN_OR_RETURN(std::optional<uint64_t> memory,
                          ReadOptionalValue(fs(), File("memory.max")));
    if (memory && *memory != kMax) out.memory_limit = static_cast<int64_t>(*memory);
    MESH_ASSIGN_OR_RETURN(std::optional<uint64_t> swap,
                          ReadOptionalValue(fs(), File("memory.swap.max")));
    if (out.memory_limit && swap) {
      out.memory_swap = *swap == kMax ? -1 : *out.memory_limit + static_cast<int64_t>(*swap);
    }
    if (fs().Exists(File("cpu.max"))) {
      MESH_ASSIGN_OR_RETURN(std::string text, fs().Read(File("cpu.max")));
      std::vector<absl::string_view> fields =
          absl::StrSplit(absl::StripAsciiWhitespace(text), ' ', absl::SkipEmpty());
      int64_t quota = 0;
      uint64_t period = 0;
      if (fields.size() != 2 || !absl::SimpleAtoi(fields[1], &period) ||
          (fields[0] != "max" && !absl::SimpleAtoi(fields[0], &quota))) {
        return absl::InvalidArgumentError(
            absl::StrCat(File("cpu.max"), ": expected \"$QUOTA $PERIOD\", got \"", text, "\""));
      }
      if (fields[0] != "max") out.cpu_quota = quota;
      out.cpu_period = period;
    }
    MESH_ASSIGN_OR_RETURN(std::optional<uint64_t> pids, ReadOptionalValue(fs(), File("pids.max")));
    if (pids && *pids != kMax) out.pids_limit = static_cast<int64_t>(*pids);
    return out;
  }

  absl::StatusOr<CgroupStats> ReadStats() {
    CgroupStats stats;
    MESH_ASSIGN_OR_RETURN(stats.memory_usage_bytes, ReadValue(fs(), File("memory.current")));
    MESH_ASSIGN_OR_RETURN(stats.memory_peak_bytes, ReadOptionalValue(fs(), File("memory.peak")));
    MESH_ASSIGN_OR_RETURN(stats.oom_kills,
                          ReadOptionalKey(fs(), File("memory.events"), "oom_kill"));
    // cpu.stat exists in every cgroup; nr_throttled only with the cpu controller enabled.
    MESH_ASSIGN_OR_RETURN(uint64_t usage_usec, ReadKey(fs(), File("cpu.stat"), "usage_usec"));
    stats.cpu_usage_ns = usage_usec * 1000;
    MESH_ASSIGN_OR_RETURN(std::optional<uint64_t> throttled,
                          ReadOptionalKey(fs(), File("cpu.stat"), "nr_throttled"));
    stats.cpu_throttled_periods = throttled.value_or(0);
    MESH_ASSIGN_OR_RETURN(stats.pids_current, ReadValue(fs(), File("pids.current")));
    MESH_ASSIGN_OR_RETURN(std::optional<uint64_t> rejected,
                          ReadOptionalKey(fs(), File("pids.events"), "max"));
    stats.pids_rejected = rejected.value_or(0);
    return stats;
  }

  std::string dir_;
  UniqueFd dir_fd_;
};

}  // namespace

CgroupV2Driver::CgroupV2Driver(std::string root, std::string parent, absl::Duration timeout,
                               std::shared_ptr<CgroupFs> fs)
    : root_(std::move(root)), parent_(std::move(parent)), timeout_(timeout), fs_(std::move(fs)) {}

std::vector<std::string> CgroupV2Driver::ParentPaths() const { return {Join(root_, parent_)}; }

std::string CgroupV2Driver::DirFor(absl::string_view name) const {
  return Join(Join(root_, parent_), name);
}

absl::Status CgroupV2Driver::EnableControllers(const std::string& dir) {
  const std::string subtree = Join(dir, "cgroup.subtree_control");
  MESH_ASSIGN_OR_RETURN(std::string text, fs_->Read(subtree));
  std::set<absl::string_view> enabled =
      absl::StrSplit(absl::StripAsciiWhitespace(text), ' ', absl::SkipEmpty());
  for (absl::string_view controller : kControllers) {
    if (enabled.contains(controller)) continue;
    // One controller per write, so an error names the controller the kernel refused.
    absl::Status s = fs_->Write(subtree, absl::StrCat("+", controller));
    if (absl::IsFailedPrecondition(s)) {
      return mesh::Annotate(
          s, absl::StrCat("enable controller \"", controller, "\" for the children of ", dir,
                          ": the cgroup holds processes, and cgroup v2 lets only a cgroup "
                          "without processes pass controllers down; pick a parent without "
                          "processes"));
    }
    if (absl::IsNotFound(s)) {
      return mesh::Annotate(
          s, absl::StrCat("enable controller \"", controller, "\" for the children of ", dir,
                          ": not in its cgroup.controllers (not enabled by its parent)"));
    }
    MESH_RETURN_IF_ERROR(s);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Cgroup>> CgroupV2Driver::Create(absl::string_view name) {
  const std::string what = absl::StrCat("create cgroup \"", name, "\" (v2)");
  MESH_RETURN_IF_ERROR(mesh::Annotate(ValidateCgroupName(name), what));
  absl::StatusOr<std::string> parent = cgroup_internal::EnsureParent(
      *fs_, root_, parent_, [this](const std::string& dir) { return EnableControllers(dir); });
  if (!parent.ok()) return mesh::Annotate(parent.status(), what);
  const std::string dir = Join(*parent, name);
  absl::Status s = fs_->MakeDir(dir);
  if (absl::IsAlreadyExists(s)) {
    return absl::AlreadyExistsError(
        absl::StrCat(what, ": ", dir, " already exists: Open it, or Destroy the leftover first"));
  }
  MESH_RETURN_IF_ERROR(mesh::Annotate(s, what));
  Rollback undo;
  // Best effort on a path that is already failing; the directory is empty.
  undo.Push([fs = fs_, dir] { fs->RemoveDir(dir).IgnoreError(); });
  absl::StatusOr<UniqueFd> fd = fs_->OpenDir(dir);
  if (!fd.ok()) return mesh::Annotate(fd.status(), what);
  undo.Commit();
  return std::make_unique<CgroupV2>(std::string(name), dir, std::move(*fd), fs_, timeout_);
}

absl::StatusOr<std::unique_ptr<Cgroup>> CgroupV2Driver::Open(absl::string_view name) {
  const std::string what = absl::StrCat("open cgroup \"", name, "\" (v2)");
  MESH_RETURN_IF_ERROR(mesh::Annotate(ValidateCgroupName(name), what));
  const std::string dir = DirFor(name);
  if (!fs_->Exists(dir)) {
    return absl::NotFoundError(absl::StrCat(what, ": ", dir, " does not exist"));
  }
  absl::StatusOr<UniqueFd> fd = fs_->OpenDir(dir);
  if (!fd.ok()) return mesh::Annotate(fd.status(), what);
  return std::make_unique<CgroupV2>(std::string(name), dir, std::move(*fd), fs_, timeout_);
}

absl::StatusOr<std::unique_ptr<Cgroup>> CgroupV2Driver::Attach(absl::string_view name) {
  MESH_RETURN_IF_ERROR(mesh::Annotate(ValidateCgroupName(name),
                                      absl::StrCat("attach to cgroup \"", name, "\" (v2)")));
  return std::make_unique<CgroupV2>(std::string(name), DirFor(name), UniqueFd(), fs_, timeout_);
}

absl::StatusOr<std::vector<std::string>> CgroupV2Driver::List() {
  absl::StatusOr<std::vector<std::string>> names = fs_->ListDirs(Join(root_, parent_));
  if (absl::IsNotFound(names.status())) return std::vector<std::string>{};
  if (!names.ok()) return mesh::Annotate(names.status(), "list cgroups (v2)");
  return names;
}

absl::Status CgroupV2Driver::RemoveParent() {
  absl::Status s = fs_->RemoveDir(Join(root_, parent_));
  if (absl::IsNotFound(s)) return absl::OkStatus();
  return mesh::Annotate(s, absl::StrCat("remove cgroup parent \"", parent_, "\" (v2)"));
}

}  // namespace mesh::runtime
