#pragma once

// File-system helpers of the image store: confined opens and tree removal that never follow a
// symlink. Paths given to these functions are relative to a directory fd.

#include <linux/openat2.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace mesh::runtime::image {

// Resolution inside a layer being written: never follow any symlink, never cross a mount.
inline constexpr uint64_t kResolveNoSymlinks =
    RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
// Resolution inside an unpacked archive or a layout directory being read: symlinks are
// followed but stay inside the root ("/" and ".." resolve to the root itself).
inline constexpr uint64_t kResolveConfined =
    RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

// openat2(2) with O_CLOEXEC added. Returns the fd, or -1 with errno set.
int OpenAt2(int dir_fd, const char* path, int flags, uint64_t resolve, mode_t mode = 0);

// OpenAt2 as a status: the error names `path` and what the open was for (`what`).
absl::StatusOr<UniqueFd> OpenIn(int dir_fd, const std::string& path, int flags, uint64_t resolve,
                                const std::string& what);

// Opens a directory (O_RDONLY | O_DIRECTORY | O_CLOEXEC) by absolute or cwd-relative path.
absl::StatusOr<UniqueFd> OpenDirectory(const std::string& path);

// Removes `name` (relative to `dir_fd`, a single component) and, if it is a directory,
// everything below it. Symlinks are removed, never followed; at most two fds are open at any
// time whatever the depth. A missing `name` is success.
absl::Status RemoveTreeAt(int dir_fd, const std::string& name);

// RemoveTreeAt on an absolute path. A missing path is success.
absl::Status RemoveTree(const std::string& path);

// Creates a fresh directory "<parent>/<prefix>XXXXXX" (mode 0700) and returns its path.
absl::StatusOr<std::string> MakeTempDir(const std::string& parent, const std::string& prefix);

// Creates `path` (mode `mode`) if missing; an existing directory is success.
absl::Status EnsureDirectory(const std::string& path, mode_t mode);

}  // namespace mesh::runtime::image
