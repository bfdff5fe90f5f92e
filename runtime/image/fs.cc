#include "runtime/image/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace mesh::runtime::image {
namespace {

// Empties the directory `rel` (relative to `base_fd`, "." for base itself). Subdirectories are
// emptied by recursion that holds no fd, then removed through a freshly opened parent, so deep
// trees cost stack frames, not file descriptors.
absl::Status RemoveContents(int base_fd, const std::string& rel) {
  std::vector<std::string> subdirs;
  {
    int fd = OpenAt2(base_fd, rel.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                     RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
    if (fd < 0) return mesh::ErrnoToStatus(errno, absl::StrCat("open directory \"", rel, "\""));
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
      int err = errno;
      ::close(fd);
      return mesh::ErrnoToStatus(err, absl::StrCat("read directory \"", rel, "\""));
    }
    absl::Status status;
    errno = 0;
    while (dirent* e = ::readdir(dir)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      bool is_dir = e->d_type == DT_DIR;
      if (e->d_type == DT_UNKNOWN) {
        struct stat st;
        if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
          is_dir = S_ISDIR(st.st_mode);
        }
      }
      if (is_dir) {
        subdirs.emplace_back(e->d_name);
      } else if (::unlinkat(::dirfd(dir), e->d_name, 0) != 0 && errno != ENOENT && status.ok()) {
        status = mesh::ErrnoToStatus(errno, absl::StrCat("remove \"", rel, "/", e->d_name, "\""));
      }
      errno = 0;
    }
    if (errno != 0 && status.ok()) {
      status = mesh::ErrnoToStatus(errno, absl::StrCat("read directory \"", rel, "\""));
    }
    ::closedir(dir);
    if (!status.ok()) return status;
  }
  if (subdirs.empty()) return absl::OkStatus();
  for (const std::string& sub : subdirs) {
    MESH_RETURN_IF_ERROR(RemoveContents(base_fd, rel == "." ? sub : rel + "/" + sub));
  }
  int fd = OpenAt2(base_fd, rel.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  if (fd < 0) return mesh::ErrnoToStatus(errno, absl::StrCat("open directory \"", rel, "\""));
  UniqueFd parent(fd);
  for (const std::string& sub : subdirs) {
    if (::unlinkat(parent.get(), sub.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return mesh::ErrnoToStatus(errno, absl::StrCat("remove directory \"", rel, "/", sub, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int OpenAt2(int dir_fd, const char* path, int flags, uint64_t resolve, mode_t mode) {
  struct open_how how;
  std::memset(&how, 0, sizeof(how));
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) != 0 ? mode : 0;
  how.resolve = resolve;
  for (;;) {
    long fd = ::syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
    // EAGAIN: RESOLVE_IN_ROOT saw a concurrent rename and asks for a retry.
    if (fd < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    return static_cast<int>(fd);
  }
}

absl::StatusOr<UniqueFd> OpenIn(int dir_fd, const std::string& path, int flags, uint64_t resolve,
                                const std::string& what) {
  int fd = OpenAt2(dir_fd, path.c_str(), flags, resolve);
  if (fd < 0) return mesh::ErrnoToStatus(errno, absl::StrCat(what, ": open \"", path, "\""));
  return UniqueFd(fd);
}

absl::StatusOr<UniqueFd> OpenDirectory(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return mesh::ErrnoToStatus(errno, absl::StrCat("open directory \"", path, "\""));
  return UniqueFd(fd);
}

absl::Status RemoveTreeAt(int dir_fd, const std::string& name) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return mesh::ErrnoToStatus(errno, absl::StrCat("stat \"", name, "\""));
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return mesh::ErrnoToStatus(errno, absl::StrCat("remove \"", name, "\""));
    }
    return absl::OkStatus();
  }
  int fd = OpenAt2(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  if (fd < 0) return mesh::ErrnoToStatus(errno, absl::StrCat("open directory \"", name, "\""));
  UniqueFd tree(fd);
  absl::Status status = RemoveContents(tree.get(), ".");
  if (!status.ok()) return mesh::Annotate(status, absl::StrCat("remove tree \"", name, "\""));
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("remove directory \"", name, "\""));
  }
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string parent =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (name.empty() || name == "." || name == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("remove tree \"", path, "\": path must end in a file or directory name"));
  }
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return mesh::ErrnoToStatus(errno, absl::StrCat("open directory \"", parent, "\""));
  }
  UniqueFd dir(fd);
  return mesh::Annotate(RemoveTreeAt(dir.get(), name), absl::StrCat("in \"", parent, "\""));
}

absl::StatusOr<std::string> MakeTempDir(const std::string& parent, const std::string& prefix) {
  std::string path = absl::StrCat(parent, "/", prefix, "XXXXXX");
  if (::mkdtemp(path.data()) == nullptr) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("create temp directory in \"", parent, "\""));
  }
  return path;
}

absl::Status EnsureDirectory(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) == 0) return absl::OkStatus();
  if (errno != EEXIST) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("create directory \"", path, "\""));
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("stat \"", path, "\""));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "\"", path, "\" exists and is not a directory: move it away so mesh can use the path"));
  }
  return absl::OkStatus();
}

}  // namespace mesh::runtime::image
