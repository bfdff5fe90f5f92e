#pragma once

// Mount helpers that never resolve a path outside a container's root: every destination is
// opened relative to the root's fd with openat2(RESOLVE_IN_ROOT) and mounted by fd with the
// new mount API (fsopen/fsmount, open_tree, move_mount, mount_setattr), so a symlink in the
// image, or one swapped in while we work, cannot redirect a mount to the host
// (CVE-2019-16884, CVE-2021-30465 and their kind).

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"

namespace mesh::runtime::rootfs {

// How a path inside the root is resolved.
enum class Follow {
  kNone,    // no symlink anywhere in the path (the standard mounts: /proc, /dev, /sys, ...)
  kInRoot,  // symlinks followed, but "/" and ".." never leave the root (user mounts, cwd)
};

// openat2(root_fd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS [| RESOLVE_NO_SYMLINKS]).
// `path` may be absolute; it is taken relative to the root.
absl::StatusOr<UniqueFd> OpenInRoot(int root_fd, absl::string_view path, int flags, Follow follow);

// The directory `path` inside the root, created with its missing parents (mode 0755 for
// parents, `mode` for the last one), as an O_PATH fd. FailedPrecondition if a component
// exists and is not a directory.
absl::StatusOr<UniqueFd> MakeDirInRoot(int root_fd, absl::string_view path, mode_t mode,
                                       Follow follow);

// The regular file `path` inside the root, created empty (0644) if missing, parents too; an
// O_PATH fd. For bind-mounting a file onto it.
absl::StatusOr<UniqueFd> MakeFileInRoot(int root_fd, absl::string_view path, Follow follow);

// A new, detached filesystem mount: fsopen(type) + fsconfig(options: "key" or "key=value") +
// fsmount(attrs: MOUNT_ATTR_*). The returned fd is the mount, ready for MoveMount.
absl::StatusOr<UniqueFd> NewMount(const std::string& type, const std::vector<std::string>& options,
                                  uint64_t attrs);

// A detached copy of the mount tree at `path` (relative to `dirfd`; "" = dirfd itself),
// recursive or not: open_tree(OPEN_TREE_CLONE).
absl::StatusOr<UniqueFd> CloneMount(int dirfd, const std::string& path, bool recursive);

// A detached, idmapped copy of the mount tree at `path` (open_tree(OPEN_TREE_CLONE), then
// mount_setattr(MOUNT_ATTR_IDMAP | attrs) with the user namespace `userns_fd`): files owned by
// id N on disk show as owned by the id the namespace maps to N (for a namespace mapping 0 to
// host 100000, on-disk 0 is the namespace's root), and what that root creates lands as 0 on
// disk. Needs CAP_SYS_ADMIN in the user namespace that owns the filesystem, so the caller is in
// the initial one. FailedPrecondition if the filesystem does not support idmapped mounts.
absl::StatusOr<UniqueFd> IdmappedClone(const std::string& path, bool recursive, int userns_fd,
                                       uint64_t attrs);

// mount_setattr on a mount fd (or the mount at an fd): sets `set`, clears `clear` MOUNT_ATTR_*
// flags, recursively if asked.
absl::Status SetMountAttrs(int mount_fd, uint64_t set, uint64_t clear, bool recursive);

// Attaches the detached mount `mount_fd` onto the file or directory `target_fd` refers to.
absl::Status MoveMount(int mount_fd, int target_fd, absl::string_view what);

// MOUNT_ATTR_* flags from OCI-style options ("ro", "nosuid", "nodev", "noexec"); other
// options (for the filesystem itself, e.g. "size=64m", "mode=1777") go to `fs_options`.
// InvalidArgument for an option that is neither ("rbind"/"bind"/"rw"/"rprivate" are accepted
// and handled by the caller).
absl::Status SplitMountOptions(const std::vector<std::string>& options, uint64_t* attrs,
                               std::vector<std::string>* fs_options, bool* recursive);

}  // namespace mesh::runtime::rootfs
