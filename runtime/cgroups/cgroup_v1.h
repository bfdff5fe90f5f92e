#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/cgroups/cgroup.h"
#include "runtime/cgroups/cgroup_fs.h"

namespace mesh::runtime {

// cgroup v1: one hierarchy per controller (or per group of co-mounted controllers, like
// "cpu,cpuacct"), so a cgroup is a directory of the same relative path in each of them.
// Limits go to memory.limit_in_bytes (+ memory.memsw.limit_in_bytes), cpu.cfs_quota_us,
// cpu.cfs_period_us, cpu.shares and pids.max; device rules to devices.deny and devices.allow;
// freezing to freezer.state. Made by
// DetectCgroupDriver; tests may construct it over a FakeCgroupFs.
class CgroupV1Driver : public CgroupDriver {
 public:
  // The controllers this driver needs, each in a mounted v1 hierarchy.
  static constexpr std::array<absl::string_view, 6> kControllers = {"memory", "cpu",     "cpuacct",
                                                                    "pids",   "freezer", "devices"};

  // `roots` maps controller -> mount point (CgroupLayout::v1) and holds every one of
  // kControllers; `parent` is a clean relative path (DetectCgroupDriver checks both).
  CgroupV1Driver(std::map<std::string, std::string> roots, std::string parent,
                 absl::Duration timeout, std::shared_ptr<CgroupFs> fs);

  CgroupVersion version() const override { return CgroupVersion::kV1; }
  std::vector<std::string> ParentPaths() const override;
  absl::StatusOr<std::unique_ptr<Cgroup>> Create(absl::string_view name) override;
  absl::StatusOr<std::unique_ptr<Cgroup>> Open(absl::string_view name) override;
  absl::StatusOr<std::unique_ptr<Cgroup>> Attach(absl::string_view name) override;
  absl::StatusOr<std::vector<std::string>> List() override;
  absl::Status RemoveParent() override;

 private:
  // controller -> the cgroup's directory in that controller's hierarchy.
  std::map<std::string, std::string> DirsFor(absl::string_view name) const;
  // The cgroup's directory in each distinct hierarchy, named after the mount point.
  std::vector<CgroupHierarchyDir> HierarchyDirsFor(absl::string_view name) const;
  // The distinct mount points, in kControllers order.
  std::vector<std::string> DistinctRoots() const;

  std::map<std::string, std::string> roots_;
  std::string parent_;
  absl::Duration timeout_;
  std::shared_ptr<CgroupFs> fs_;
};

}  // namespace mesh::runtime
