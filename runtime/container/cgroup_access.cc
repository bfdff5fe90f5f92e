#include "runtime/container/cgroup_access.h"

#include "base/status_macros.h"

namespace mesh::runtime {

absl::StatusOr<std::unique_ptr<CgroupDriver>> HostCgroupDriver(const std::string& parent) {
  MESH_ASSIGN_OR_RETURN(CgroupLayout layout, ReadCgroupLayout());
  return DetectCgroupDriver(layout, {.parent = parent});
}

absl::Status DestroyContainerCgroup(const std::string& parent, const std::string& id) {
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<CgroupDriver> driver, HostCgroupDriver(parent));
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<Cgroup> cgroup, driver->Attach(id));
  return cgroup->Destroy();
}

absl::Status DestroyCgroupParent(const std::string& parent) {
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<CgroupDriver> driver, HostCgroupDriver(parent));
  MESH_ASSIGN_OR_RETURN(std::vector<std::string> ids, driver->List());
  for (const std::string& id : ids) MESH_RETURN_IF_ERROR(DestroyContainerCgroup(parent, id));
  return driver->RemoveParent();
}

}  // namespace mesh::runtime
