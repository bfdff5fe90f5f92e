#pragma once

// A container's root filesystem, built inside its new mount namespace: overlayfs over the
// image layers with a per-container upper dir, the standard mounts with the hardened flags of
// ../shared/TESTING.md, exactly the default devices, the caller's /etc files, the spec's bind
// and tmpfs mounts, Docker's masked and read-only paths, an optional read-only root, then
// pivot_root. Every destination is resolved inside the new root (rootfs/mounts.h).

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "runtime/rootfs/cgroupfs.h"
#include "runtime/spec/spec.h"

namespace mesh::runtime::rootfs {

struct RootfsPlan {
  std::string rootfs;                   // an empty directory: the overlay is mounted on it
  std::vector<std::string> lower_dirs;  // image layers, top first (overlayfs order)
  std::string upper_dir;                // the container's writable layer
  std::string work_dir;                 // overlayfs scratch, same filesystem as upper_dir
  std::string etc_dir;                  // holds "hostname", "hosts", "resolv.conf" to mount
  bool readonly_root = false;
  bool privileged = false;
  bool terminal = false;      // a console will be bind-mounted (by the caller)
  std::vector<Mount> mounts;  // the spec's own mounts
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  // The container's own cgroup, shown read-only at /sys/fs/cgroup (rootfs/cgroupfs.h); empty:
  // sysfs's empty directory stays.
  std::vector<CgroupMount> cgroups;
  // The container has its own user namespace: the rootfs, the /etc files and the bind mounts
  // come ready (idmapped, from MakeIdmappedMounts), and the default devices are the host's
  // nodes bound in (mknod is refused in a user namespace).
  bool user_namespace = false;
};

// What MakeIdmappedMounts makes: detached mounts, each attached by MountRootfs in the
// container's mount namespace. Absent ones are invalid fds.
struct IdmappedMounts {
  // plan.rootfs (O_PATH) as the container's mount namespace holds it, for the overlay to be
  // moved onto: its parents are closed to the mapped root. Not made by MakeIdmappedMounts;
  // the caller opens it inside that namespace.
  UniqueFd mountpoint;
  UniqueFd rootfs;              // overlayfs over the idmapped layers and upper dir
  UniqueFd etc[3];              // hostname, hosts, resolv.conf of plan.etc_dir, if present
  std::vector<UniqueFd> binds;  // per plan.mounts: the idmapped bind tree; invalid for tmpfs
};

// The same, borrowed (plain fds, as a process that received them over a socket holds them).
struct ReadyMounts {
  int mountpoint = -1;
  int rootfs = -1;
  int etc[3] = {-1, -1, -1};
  std::vector<int> binds;  // one per plan.mounts, -1 for tmpfs
};

// The files of plan.etc_dir mounted over /etc, in IdmappedMounts::etc order.
inline constexpr const char* kEtcFiles[3] = {"hostname", "hosts", "resolv.conf"};

// For a container with a user namespace, in the initial user namespace (idmapping needs
// CAP_SYS_ADMIN over the filesystems): every layer, the directory holding upper and work, the
// /etc files and the spec's bind sources cloned and idmapped with `userns_fd` (the container's
// own namespace, its maps written), and the overlay built over them with the credentials of
// the container's root (host ids `root_uid`/`root_gid`), so that its work dir and what the
// container's root writes land on disk as uid 0 (never a chown -R of the image). The overlay
// superblock belongs to the initial user namespace, so the image's trusted.overlay.* markers
// (opaque directories) keep working. FailedPrecondition for a source on a filesystem without
// idmapped mounts.
absl::StatusOr<IdmappedMounts> MakeIdmappedMounts(const RootfsPlan& plan, int userns_fd,
                                                  uid_t root_uid, gid_t root_gid);

// Checks a plan without touching anything: mount types, options, absolute destinations
// without "..", bind sources that exist. InvalidArgument naming the mount.
absl::Status ValidatePlan(const RootfsPlan& plan);

// Mounts everything onto plan.rootfs. Call in the container's process after it has its own
// mount namespace (and, for /proc, its own pid namespace; for /sys/fs/cgroup, its cgroup
// namespace), before PivotRoot. Makes "/" recursively private first, so nothing propagates
// back to the host. With plan.user_namespace, `ready` holds what MakeIdmappedMounts made (the
// caller keeps the fds open).
absl::Status MountRootfs(const RootfsPlan& plan, const ReadyMounts* ready = nullptr);

// pivot_root into `rootfs` and detach the old root: afterwards nothing of the host's
// filesystem is reachable, not through ".." nor /proc/1/root.
absl::Status PivotRoot(const std::string& rootfs);
// The same into the mount `rootfs_fd` is the root of (ReadyMounts::rootfs once MountRootfs has
// attached it): the mapped root of a user namespace cannot reach plan.rootfs by path.
absl::Status PivotRootAt(int rootfs_fd, const std::string& name);

// The devices every container gets: null, zero, full, random, urandom, tty (plus ptmx as a
// link to pts/ptmx, and console with a terminal).
struct Device {
  const char* name;
  unsigned major;
  unsigned minor;
};
const std::vector<Device>& DefaultDevices();

}  // namespace mesh::runtime::rootfs
