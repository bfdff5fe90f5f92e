#pragma once

// A container's root filesystem, built inside its new mount namespace: overlayfs over the
// image layers with a per-container upper dir, the standard mounts with the hardened flags of
// ../shared/TESTING.md, exactly the default devices, the caller's /etc files, the spec's bind
// and tmpfs mounts, Docker's masked and read-only paths, an optional read-only root, then
// pivot_root. Every destination is resolved inside the new root (rootfs/mounts.h).

#include <string>
#include <vector>

#include "absl/status/status.h"
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
};

// Checks a plan without touching anything: mount types, options, absolute destinations
// without "..", bind sources that exist. InvalidArgument naming the mount.
absl::Status ValidatePlan(const RootfsPlan& plan);

// Mounts everything onto plan.rootfs. Call in the container's process after it has its own
// mount namespace (and, for /proc, its own pid namespace; for /sys/fs/cgroup, its cgroup
// namespace), before PivotRoot. Makes "/" recursively private first, so nothing propagates
// back to the host.
absl::Status MountRootfs(const RootfsPlan& plan);

// pivot_root into `rootfs` and detach the old root: afterwards nothing of the host's
// filesystem is reachable, not through ".." nor /proc/1/root.
absl::Status PivotRoot(const std::string& rootfs);

// The devices every container gets: null, zero, full, random, urandom, tty (plus ptmx as a
// link to pts/ptmx, and console with a terminal).
struct Device {
  const char* name;
  unsigned major;
  unsigned minor;
};
const std::vector<Device>& DefaultDevices();

}  // namespace mesh::runtime::rootfs
