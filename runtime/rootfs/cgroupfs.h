#pragma once

// /sys/fs/cgroup inside a container: the container's own cgroup, read-only, as Docker shows it
// with a private cgroup namespace. Built from bind mounts of the container's cgroup directories
// (open_tree), never from new cgroup mounts, so it works the same with and without a user
// namespace (a cgroup v1 filesystem cannot be mounted in a non-initial user namespace).
//
//   cgroup v1: a read-only tmpfs at /sys/fs/cgroup, holding one read-only bind per hierarchy
//              (/sys/fs/cgroup/memory = the host's /sys/fs/cgroup/memory/mesh/<id>, ...), named
//              as on the host; co-mounted hierarchies ("cpu,cpuacct") also get one symlink per
//              controller ("cpu" -> "cpu,cpuacct"), as on the host.
//   cgroup v2: a read-only bind of the container's cgroup directory at /sys/fs/cgroup.
//
// Only the container's own cgroup is visible: no parent, no sibling, no other hierarchy.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace mesh::runtime::rootfs {

// One hierarchy to show (from runtime/cgroups Cgroup::HierarchyDirs).
struct CgroupMount {
  // v1: the directory's name under /sys/fs/cgroup ("memory", "cpu,cpuacct"); "" for cgroup v2,
  // whose one hierarchy is /sys/fs/cgroup itself.
  std::string hierarchy;
  // The container's cgroup directory in that hierarchy, on the host
  // ("/sys/fs/cgroup/memory/mesh/web-1").
  std::string host_dir;
};

// Checks `mounts` without touching anything: either one v2 entry (hierarchy "") or v1 entries
// with distinct names that are single path components; host dirs absolute, without "..".
// InvalidArgument naming the entry. Empty is fine (nothing to mount).
absl::Status ValidateCgroupMounts(const std::vector<CgroupMount>& mounts);

// The symlinks to make next to the v1 hierarchies: (name, target) for each controller of a
// co-mounted hierarchy ("cpu" -> "cpu,cpuacct", "cpuacct" -> "cpu,cpuacct"), unless a
// hierarchy of that name exists. Empty for v2.
std::vector<std::pair<std::string, std::string>> CgroupSymlinks(
    const std::vector<CgroupMount>& mounts);

// Mounts `mounts` at /sys/fs/cgroup inside the root `root_fd` as described above (nothing if
// empty). Call in the container's mount namespace before pivot_root, while each host_dir still
// resolves; after /sys is mounted. Destinations are resolved inside the root without
// following symlinks (mounts.h). InvalidArgument from ValidateCgroupMounts; NotFound for a
// host_dir that is gone.
absl::Status MountCgroupFs(int root_fd, const std::vector<CgroupMount>& mounts);

}  // namespace mesh::runtime::rootfs
