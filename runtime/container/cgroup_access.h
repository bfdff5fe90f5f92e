#pragma once

// A container's cgroup: <cgroup_parent>/<container id> under every hierarchy the host's
// driver uses (runtime/cgroups). Shared by the runtime, the shim and exec.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/cgroups/cgroup.h"

namespace mesh::runtime {

// The driver for this host, with `parent` as mesh's cgroup parent.
absl::StatusOr<std::unique_ptr<CgroupDriver>> HostCgroupDriver(const std::string& parent);

// Removes the container's cgroup (killing what is left in it); OK if there is none.
absl::Status DestroyContainerCgroup(const std::string& parent, const std::string& id);

// Removes every container cgroup under `parent` (killing what is left in them), then `parent`
// itself; OK if there is none. For tests and tools that own a parent of their own.
absl::Status DestroyCgroupParent(const std::string& parent);

}  // namespace mesh::runtime
