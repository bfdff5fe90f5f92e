#include "runtime/cgroups/cgroup_v1.h"

#include <algorithm>
#include <limits>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/rollback.h"
#include "base/status_macros.h"
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

// v1 memory files show "no limit" as the page counter's maximum (0x7ffffffffffff000 with 4 KiB
// pages; the exact number depends on the page size). Nothing real comes near 2^62 bytes.
constexpr uint64_t kV1Unlimited = uint64_t{1} << 62;

absl::StatusOr<int64_t> ReadSigned(CgroupFs& fs, const std::string& path) {
  MESH_ASSIGN_OR_RETURN(std::string text, fs.Read(path));
  int64_t value = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected a number, got \"", absl::StripAsciiWhitespace(text), "\""));
  }
  return value;
}

class CgroupV1 : public CgroupBase {
 public:
  CgroupV1(std::string name, std::map<std::string, std::string> dirs,
           std::vector<CgroupHierarchyDir> hierarchies, std::shared_ptr<CgroupFs> fs,
           absl::Duration timeout)
      : CgroupBase(std::move(name), std::move(fs), timeout),
        dirs_(std::move(dirs)),
        hierarchies_(std::move(hierarchies)) {}

  CgroupVersion version() const override { return CgroupVersion::kV1; }
  int dir_fd() const override { return -1; }

  std::vector<std::string> Paths() const override {
    std::vector<std::string> paths;
    for (absl::string_view controller : CgroupV1Driver::kControllers) {
      const std::string& dir = dirs_.at(std::string(controller));
      if (std::find(paths.begin(), paths.end(), dir) == paths.end()) paths.push_back(dir);
    }
    return paths;
  }

  std::vector<CgroupHierarchyDir> HierarchyDirs() const override { return hierarchies_; }

  absl::Status Apply(const Resources& r) override {
    const std::string what = absl::StrCat("apply resources to ", Describe());
    MESH_RETURN_IF_ERROR(mesh::Annotate(ValidateResources(r), what));
    const std::string limit = File("memory", "memory.limit_in_bytes");
    const std::string memsw = File("memory", "memory.memsw.limit_in_bytes");
    const bool has_memsw = fs().Exists(memsw);
    // Everything that can be refused is checked before the first write.
    if (r.memory_limit && !has_memsw) {
      int64_t swap = r.memory_swap.value_or(*r.memory_limit);
      if (swap != -1 && swap != *r.memory_limit) {
        return absl::FailedPreconditionError(absl::StrCat(
            what, ": memory_swap needs swap accounting, which this kernel has off (", memsw,
            " is missing; boot with swapaccount=1), or leave memory_swap unset"));
      }
    }

    if (r.memory_limit) {
      const int64_t mem = *r.memory_limit;
      if (!has_memsw) {
        MESH_RETURN_IF_ERROR(mesh::Annotate(fs().Write(limit, absl::StrCat(mem)), what));
      } else {
        // The kernel keeps memory.limit <= memory.memsw.limit at every moment and refuses a
        // write that breaks it, so the order depends on the current memsw limit: lower or
        // keep memory first when it still fits under the old memsw, else raise memsw first.
        const int64_t swap = r.memory_swap.value_or(mem);
        const std::string swap_text = swap == -1 ? "-1" : absl::StrCat(swap);
        MESH_ASSIGN_OR_RETURN(uint64_t current_memsw, ReadValue(fs(), memsw));
        if (static_cast<uint64_t>(mem) <= current_memsw) {
          MESH_RETURN_IF_ERROR(mesh::Annotate(fs().Write(limit, absl::StrCat(mem)), what));
          MESH_RETURN_IF_ERROR(mesh::Annotate(fs().Write(memsw, swap_text), what));
        } else {
          MESH_RETURN_IF_ERROR(mesh::Annotate(fs().Write(memsw, swap_text), what));
          MESH_RETURN_IF_ERROR(mesh::Annotate(fs().Write(limit, absl::StrCat(mem)), what));
        }
      }
    }
    // The period first: a quota is then checked against the period it will run with.
    if (r.cpu_period) {
      MESH_RETURN_IF_ERROR(mesh::Annotate(
          fs().Write(File("cpu", "cpu.cfs_period_us"), absl::StrCat(*r.cpu_period)), what));
    }
    if (r.cpu_quota) {
      MESH_RETURN_IF_ERROR(mesh::Annotate(
          fs().Write(File("cpu", "cpu.cfs_quota_us"), absl::StrCat(*r.cpu_quota)), what));
    }
    if (r.cpu_shares) {
      MESH_RETURN_IF_ERROR(
          mesh::Annotate(fs().Write(File("cpu", "cpu.shares"), absl::StrCat(*r.cpu_shares)), what));
    }
    if (r.pids_limit) {
      // OCI: 0 and -1 mean no limit.
      std::string value = *r.pids_limit <= 0 ? "max" : absl::StrCat(*r.pids_limit);
      MESH_RETURN_IF_ERROR(mesh::Annotate(fs().Write(File("pids", "pids.max"), value), what));
    }
    if (!r.devices.empty()) {
      // The default first: "a" to devices.deny (or .allow) sets it and clears every earlier
      // exception, so applying the same rules again gives the same result. Then each
      // exception, one line per write.
      auto file = [this](bool allow) {
        return File("devices", allow ? "devices.allow" : "devices.deny");
      };
      for (const DeviceRule& rule : r.devices) {
        MESH_RETURN_IF_ERROR(
            mesh::Annotate(fs().Write(file(rule.allow), DeviceRuleLine(rule)), what));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Resources> Limits() override {
    const std::string what = absl::StrCat("read limits of ", Describe());
    Resources out;
    absl::StatusOr<uint64_t> memory = ReadValue(fs(), File("memory", "memory.limit_in_bytes"));
    if (!memory.ok()) return mesh::Annotate(memory.status(), what);
    if (*memory < kV1Unlimited) out.memory_limit = static_cast<int64_t>(*memory);
    absl::StatusOr<std::optional<uint64_t>> memsw =
        ReadOptionalValue(fs(), File("memory", "memory.memsw.limit_in_bytes"));
    if (!memsw.ok()) return mesh::Annotate(memsw.status(), what);
    if (out.memory_limit && memsw->has_value()) {
      out.memory_swap = **memsw >= kV1Unlimited ? -1 : static_cast<int64_t>(**memsw);
    }
    absl::StatusOr<int64_t> quota = ReadSigned(fs(), File("cpu", "cpu.cfs_quota_us"));
    if (!quota.ok()) return mesh::Annotate(quota.status(), what);
    if (*quota > 0) out.cpu_quota = *quota;
    absl::StatusOr<uint64_t> period = ReadValue(fs(), File("cpu", "cpu.cfs_period_us"));
    if (!period.ok()) return mesh::Annotate(period.status(), what);
    out.cpu_period = *period;
    absl::StatusOr<uint64_t> shares = ReadValue(fs(), File("cpu", "cpu.shares"));
    if (!shares.ok()) return mesh::Annotate(shares.status(), what);
    out.cpu_shares = *shares;
    absl::StatusOr<uint64_t> pids = ReadValue(fs(), File("pids", "pids.max"));
    if (!pids.ok()) return mesh::Annotate(pids.status(), what);
    if (*pids != std::numeric_limits<uint64_t>::max()) out.pids_limit = *pids;
    return out;
  }

  absl::Status AddProcess(pid_t pid) override {
    for (const std::string& dir : Paths()) {
      MESH_RETURN_IF_ERROR(mesh::Annotate(fs().Write(Join(dir, "cgroup.procs"), absl::StrCat(pid)),
                                          absl::StrCat("add process ", pid, " to ", Describe())));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<CgroupStats> Stats() override {
    absl::StatusOr<CgroupStats> stats = ReadStats();
    if (!stats.ok())
      return mesh::Annotate(stats.status(), absl::StrCat("read stats of ", Describe()));
    return stats;
  }

  absl::StatusOr<uint64_t> OomKillCount() override {
    const std::string path = File("memory", "memory.oom_control");
    MESH_ASSIGN_OR_RETURN(std::optional<uint64_t> count, ReadOptionalKey(fs(), path, "oom_kill"));
    if (!count) {
      return absl::UnimplementedError(absl::StrCat(
          "count OOM kills of ", Describe(), ": ", path,
          " has no \"oom_kill\" line (kernel older than 4.13, or the cgroup is gone)"));
    }
    return *count;
  }

  absl::Status Freeze() override {
    const std::string state = File("freezer", "freezer.state");
    const std::string what = absl::StrCat("freeze ", Describe());
    MESH_RETURN_IF_ERROR(mesh::Annotate(fs().Write(state, "FROZEN"), what));
    // The write starts freezing ("FREEZING"); the state reads "FROZEN" once every task stopped.
    absl::Status s = WaitUntil(
        [&]() -> absl::StatusOr<bool> {
          MESH_ASSIGN_OR_RETURN(std::string text, fs().Read(state));
          return absl::StripAsciiWhitespace(text) == "FROZEN";
        },
        timeout(), absl::StrCat(state, " to read FROZEN"));
    if (!s.ok()) {
      Thaw().IgnoreError();  // Best effort: do not leave the cgroup half frozen.
      return mesh::Annotate(s, what);
    }
    return absl::OkStatus();
  }

  absl::Status Thaw() override {
    return mesh::Annotate(fs().Write(File("freezer", "freezer.state"), "THAWED"),
                          absl::StrCat("thaw ", Describe()));
  }

 protected:
  bool CanFreeze() override { return fs().Exists(File("freezer", "freezer.state")); }

 private:
  std::string File(absl::string_view controller, absl::string_view file) const {
    return Join(dirs_.at(std::string(controller)), file);
  }

  absl::StatusOr<CgroupStats> ReadStats() {
    CgroupStats stats;
    MESH_ASSIGN_OR_RETURN(stats.memory_usage_bytes,
                          ReadValue(fs(), File("memory", "memory.usage_in_bytes")));
    MESH_ASSIGN_OR_RETURN(stats.memory_peak_bytes,
                          ReadOptionalValue(fs(), File("memory", "memory.max_usage_in_bytes")));
    MESH_ASSIGN_OR_RETURN(stats.oom_kills,
                          ReadOptionalKey(fs(), File("memory", "memory.oom_control"), "oom_kill"));
    MESH_ASSIGN_OR_RETURN(stats.cpu_usage_ns, ReadValue(fs(), File("cpuacct", "cpuacct.usage")));
    MESH_ASSIGN_OR_RETURN(std::optional<uint64_t> throttled,
                          ReadOptionalKey(fs(), File("cpu", "cpu.stat"), "nr_throttled"));
    stats.cpu_throttled_periods = throttled.value_or(0);
    MESH_ASSIGN_OR_RETURN(stats.pids_current, ReadValue(fs(), File("pids", "pids.current")));
    MESH_ASSIGN_OR_RETURN(std::optional<uint64_t> rejected,
                          ReadOptionalKey(fs(), File("pids", "pids.events"), "max"));
    stats.pids_rejected = rejected.value_or(0);
    return stats;
  }

  std::map<std::string, std::string> dirs_;
  std::vector<CgroupHierarchyDir> hierarchies_;
};

}  // namespace

CgroupV1Driver::CgroupV1Driver(std::map<std::string, std::string> roots, std::string parent,
                               absl::Duration timeout, std::shared_ptr<CgroupFs> fs)
    : roots_(std::move(roots)), parent_(std::move(parent)), timeout_(timeout), fs_(std::move(fs)) {}

std::vector<std::string> CgroupV1Driver::DistinctRoots() const {
  std::vector<std::string> roots;
  for (absl::string_view controller : kControllers) {
    const std::string& root = roots_.at(std::string(controller));
    if (std::find(roots.begin(), roots.end(), root) == roots.end()) roots.push_back(root);
  }
  return roots;
}

std::vector<std::string> CgroupV1Driver::ParentPaths() const {
  std::vector<std::string> paths;
  for (const std::string& root : DistinctRoots()) paths.push_back(Join(root, parent_));
  return paths;
}

std::vector<CgroupHierarchyDir> CgroupV1Driver::HierarchyDirsFor(absl::string_view name) const {
  std::vector<CgroupHierarchyDir> out;
  for (const std::string& root : DistinctRoots()) {
    out.push_back({root.substr(root.rfind('/') + 1), Join(Join(root, parent_), name)});
  }
  return out;
}

std::map<std::string, std::string> CgroupV1Driver::DirsFor(absl::string_view name) const {
  std::map<std::string, std::string> dirs;
  for (absl::string_view controller : kControllers) {
    dirs[std::string(controller)] = Join(Join(roots_.at(std::string(controller)), parent_), name);
  }
  return dirs;
}

absl::StatusOr<std::unique_ptr<Cgroup>> CgroupV1Driver::Create(absl::string_view name) {
  const std::string what = absl::StrCat("create cgroup \"", name, "\" (v1)");
  MESH_RETURN_IF_ERROR(mesh::Annotate(ValidateCgroupName(name), what));
  Rollback undo;
  for (const std::string& root : DistinctRoots()) {
    absl::StatusOr<std::string> parent = cgroup_internal::EnsureParent(
        *fs_, root, parent_, [](const std::string&) { return absl::OkStatus(); });
    if (!parent.ok()) return mesh::Annotate(parent.status(), what);
    const std::string dir = Join(*parent, name);
    absl::Status s = fs_->MakeDir(dir);
    if (absl::IsAlreadyExists(s)) {
      return absl::AlreadyExistsError(
          absl::StrCat(what, ": ", dir, " already exists: Open it, or Destroy the leftover first"));
    }
    MESH_RETURN_IF_ERROR(mesh::Annotate(s, what));
    // Best effort on a path that is already failing; the directory is empty.
    undo.Push([fs = fs_, dir] { fs->RemoveDir(dir).IgnoreError(); });
  }
  undo.Commit();
  return std::make_unique<CgroupV1>(std::string(name), DirsFor(name), HierarchyDirsFor(name), fs_,
                                    timeout_);
}

absl::StatusOr<std::unique_ptr<Cgroup>> CgroupV1Driver::Open(absl::string_view name) {
  const std::string what = absl::StrCat("open cgroup \"", name, "\" (v1)");
  MESH_RETURN_IF_ERROR(mesh::Annotate(ValidateCgroupName(name), what));
  std::map<std::string, std::string> dirs = DirsFor(name);
  for (absl::string_view controller : kControllers) {
    const std::string& dir = dirs.at(std::string(controller));
    if (!fs_->Exists(dir)) {
      return absl::NotFoundError(
          absl::StrCat(what, ": ", dir, " (hierarchy \"", controller, "\") does not exist"));
    }
  }
  return std::make_unique<CgroupV1>(std::string(name), std::move(dirs), HierarchyDirsFor(name), fs_,
                                    timeout_);
}

absl::StatusOr<std::unique_ptr<Cgroup>> CgroupV1Driver::Attach(absl::string_view name) {
  MESH_RETURN_IF_ERROR(mesh::Annotate(ValidateCgroupName(name),
                                      absl::StrCat("attach to cgroup \"", name, "\" (v1)")));
  return std::make_unique<CgroupV1>(std::string(name), DirsFor(name), HierarchyDirsFor(name), fs_,
                                    timeout_);
}

absl::StatusOr<std::vector<std::string>> CgroupV1Driver::List() {
  std::set<std::string> names;
  for (const std::string& parent : ParentPaths()) {
    absl::StatusOr<std::vector<std::string>> here = fs_->ListDirs(parent);
    if (absl::IsNotFound(here.status())) continue;
    if (!here.ok()) return mesh::Annotate(here.status(), "list cgroups (v1)");
    names.insert(here->begin(), here->end());
  }
  return std::vector<std::string>(names.begin(), names.end());
}

absl::Status CgroupV1Driver::RemoveParent() {
  std::vector<absl::Status> errors;
  for (const std::string& parent : ParentPaths()) {
    absl::Status s = fs_->RemoveDir(parent);
    if (!absl::IsNotFound(s)) errors.push_back(s);
  }
  return mesh::Annotate(cgroup_internal::JoinErrors(errors),
                        absl::StrCat("remove cgroup parent \"", parent_, "\" (v1)"));
}

}  // namespace mesh::runtime
