#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/cgroups/cgroup.h"
#include "runtime/cgroups/cgroup_fs.h"

namespace mesh::runtime {

// cgroup v2: one unified hierarchy; a cgroup is one directory. Limits go to memory.max,
// memory.swap.max, cpu.max, cpu.weight and pids.max, after the controllers are enabled from the
// root down (cgroup.subtree_control); device rules become a BPF_PROG_TYPE_CGROUP_DEVICE
// program (CgroupFs::SetDeviceProgram); freezing to cgroup.freeze, killing to cgroup.kill, OOM
// kills are counted in memory.events. Made by DetectCgroupDriver; tests may construct it over a
// FakeCgroupFs.
class CgroupV2Driver : public CgroupDriver {
 public:
  // The controllers this driver enables and needs.
  static constexpr std::array<absl::string_view, 3> kControllers = {"cpu", "memory", "pids"};

  // `root` is the cgroup2 mount point; `parent` a clean relative path (DetectCgroupDriver
  // checks it).
  CgroupV2Driver(std::string root, std::string parent, absl::Duration timeout,
                 std::shared_ptr<CgroupFs> fs);

  CgroupVersion version() const override { return CgroupVersion::kV2; }
  std::vector<std::string> ParentPaths() const override;
  absl::StatusOr<std::unique_ptr<Cgroup>> Create(absl::string_view name) override;
  absl::StatusOr<std::unique_ptr<Cgroup>> Open(absl::string_view name) override;
  absl::StatusOr<std::unique_ptr<Cgroup>> Attach(absl::string_view name) override;
  absl::StatusOr<std::vector<std::string>> List() override;
  absl::Status RemoveParent() override;

 private:
  // Enables kControllers for the children of `dir` (those not enabled yet).
  absl::Status EnableControllers(const std::string& dir);
  std::string DirFor(absl::string_view name) const;

  std::string root_;
  std::string parent_;
  absl::Duration timeout_;
  std::shared_ptr<CgroupFs> fs_;
};

}  // namespace mesh::runtime
