#include "runtime/rootfs/mounts.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace mesh::runtime::rootfs {
namespace {

int OpenAt2(int dirfd, const char* path, int flags, uint64_t resolve, mode_t mode = 0) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags);
  how.mode = mode;
  how.resolve = resolve;
  return static_cast<int>(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

uint64_t ResolveFlags(Follow follow) {
  uint64_t r = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  if (follow == Follow::kNone) r |= RESOLVE_NO_SYMLINKS;
  return r;
}

// "a/b/c" components of `path`, without empty ones and ".".
std::vector<std::string> Components(absl::string_view path) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part != ".") out.emplace_back(part);
  }
  return out;
}

// `path` with "." and ".." taken lexically, never above "/": what they mean inside a root.
std::string CleanInRoot(absl::string_view path) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.emplace_back(part);
  }
  std::string result;
  for (const std::string& p : out) absl::StrAppend(&result, "/", p);
  return result.empty() ? "/" : result;
}

std::string Where(absl::string_view path) { return absl::StrCat("\"", path, "\" in the rootfs"); }

}  // namespace

absl::StatusOr<UniqueFd> OpenInRoot(int root_fd, absl::string_view path, int flags, Follow follow) {
  std::string relative = absl::StrCat(".", path.empty() || path[0] != '/' ? "/" : "", path);
  int fd = OpenAt2(root_fd, relative.c_str(), flags | O_CLOEXEC, ResolveFlags(follow));
  if (fd < 0) {
    int err = errno;
    if (err == ELOOP && follow == Follow::kNone) {
      return absl::FailedPreconditionError(
          absl::StrCat("open ", Where(path), ": a component is a symlink, which mesh does not ",
                       "follow for this path (a hostile or broken image)"));
    }
    return mesh::ErrnoToStatus(err, absl::StrCat("open ", Where(path)));
  }
  return UniqueFd(fd);
}

absl::StatusOr<UniqueFd> MakeDirInRoot(int root_fd, absl::string_view requested, mode_t mode,
                                       Follow follow) {
  std::string path(requested);
  // Walk one component at a time from the root, creating what is missing. Each step resolves
  // in the root (RESOLVE_IN_ROOT from the root fd with the prefix so far), so a symlink placed
  // anywhere cannot lead outside. A dangling symlink (kInRoot only) is followed by hand: its
  // target, taken inside the root, replaces the prefix and the walk starts over.
  for (int restarts = 0;; ++restarts) {
    if (restarts > 40) {
      return absl::FailedPreconditionError(
          absl::StrCat("create ", Where(requested), ": too many levels of symbolic links"));
    }
    std::vector<std::string> parts = Components(path);
    std::string prefix;
    bool restarted = false;
    for (size_t i = 0; i < parts.size() && !restarted; ++i) {
      if (parts[i] == "..") {
        return absl::InvalidArgumentError(
            absl::StrCat("create ", Where(requested), ": \"..\" is not allowed in a destination"));
      }
      const std::string parent_path = prefix;
      absl::StrAppend(&prefix, "/", parts[i]);
      const mode_t m = i + 1 == parts.size() ? mode : 0755;
      absl::StatusOr<UniqueFd> dir = OpenInRoot(root_fd, prefix, O_PATH | O_DIRECTORY, follow);
      if (dir.ok()) continue;
      if (!absl::IsNotFound(dir.status())) {
        if (absl::IsFailedPrecondition(dir.status())) return dir.status();
        return absl::FailedPreconditionError(absl::StrCat(
            "create ", Where(requested), ": ", Where(prefix), " exists and is not a directory"));
      }
      // Create it inside its parent, opened the same safe way.
      MESH_ASSIGN_OR_RETURN(UniqueFd parent,
                            OpenInRoot(root_fd, parent_path, O_PATH | O_DIRECTORY, follow));
      if (mkdirat(parent.get(), parts[i].c_str(), m) == 0) continue;
      if (errno != EEXIST)
        return mesh::ErrnoToStatus(errno, absl::StrCat("create ", Where(prefix)));
      // It exists but does not open: a dangling symlink (or a race we lost; retry).
      char target[4096];
      ssize_t n = readlinkat(parent.get(), parts[i].c_str(), target, sizeof(target) - 1);
      if (n < 0 || follow == Follow::kNone) continue;  // re-checked by the next open
      target[n] = '\0';
      std::string rest;
      for (size_t j = i + 1; j < parts.size(); ++j) absl::StrAppend(&rest, "/", parts[j]);
      path = CleanInRoot(target[0] == '/' ? absl::StrCat(target, rest)
                                          : absl::StrCat(parent_path, "/", target, rest));
      restarted = true;
    }
    if (!restarted) return OpenInRoot(root_fd, path, O_PATH | O_DIRECTORY, follow);
  }
}

absl::StatusOr<UniqueFd> MakeFileInRoot(int root_fd, absl::string_view path, Follow follow) {
  std::vector<std::string> parts = Components(path);
  if (parts.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("create ", Where(path), ": not a file path"));
  }
  std::string parent_path;
  for (size_t i = 0; i + 1 < parts.size(); ++i) absl::StrAppend(&parent_path, "/", parts[i]);
  MESH_ASSIGN_OR_RETURN(UniqueFd parent, MakeDirInRoot(root_fd, parent_path, 0755, follow));
  if (parts.back() == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("create ", Where(path), ": \"..\" is not allowed in a destination"));
  }
  // O_CREAT cannot be combined with O_PATH: create through a real fd of the parent.
  MESH_ASSIGN_OR_RETURN(UniqueFd parent_dir,
                        OpenInRoot(root_fd, parent_path, O_RDONLY | O_DIRECTORY, follow));
  int fd = openat(parent_dir.get(), parts.back().c_str(),
                  O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd < 0 && errno != EISDIR && errno != ELOOP && errno != ENXIO && errno != EACCES &&
      errno != EROFS && errno != ETXTBSY) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("create ", Where(path)));
  }
  if (fd >= 0) close(fd);
  MESH_ASSIGN_OR_RETURN(UniqueFd file, OpenInRoot(root_fd, path, O_PATH, follow));
  struct stat st;
  if (fstat(file.get(), &st) != 0) return mesh::ErrnoToStatus(errno, Where(path));
  if (S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("create ", Where(path), ": it is a directory, a file is needed here"));
  }
  return file;
}

absl::StatusOr<UniqueFd> NewMount(const std::string& type, const std::vector<std::string>& options,
                                  uint64_t attrs) {
  const std::string what = absl::StrCat("mount a new ", type);
  UniqueFd fs(fsopen(type.c_str(), FSOPEN_CLOEXEC));
  if (!fs.valid()) return mesh::ErrnoToStatus(errno, absl::StrCat(what, ": fsopen"));
  // The source shows in /proc/mounts ("proc /proc proc ..."), as mount(8) would set it.
  if (fsconfig(fs.get(), FSCONFIG_SET_STRING, "source", type.c_str(), 0) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat(what, ": source"));
  }
  for (const std::string& option : options) {
    size_t eq = option.find('=');
    int r = eq == std::string::npos
                ? fsconfig(fs.get(), FSCONFIG_SET_FLAG, option.c_str(), nullptr, 0)
                : fsconfig(fs.get(), FSCONFIG_SET_STRING, option.substr(0, eq).c_str(),
                           option.substr(eq + 1).c_str(), 0);
    if (r != 0) {
      return mesh::ErrnoToStatus(errno, absl::StrCat(what, ": option \"", option, "\""));
    }
  }
  if (fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat(what, ": create"));
  }
  UniqueFd mount(fsmount(fs.get(), FSMOUNT_CLOEXEC, static_cast<unsigned>(attrs)));
  if (!mount.valid()) return mesh::ErrnoToStatus(errno, absl::StrCat(what, ": fsmount"));
  return mount;
}

absl::StatusOr<UniqueFd> CloneMount(int dirfd, const std::string& path, bool recursive) {
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0) |
                   (path.empty() ? AT_EMPTY_PATH : 0);
  UniqueFd tree(open_tree(dirfd, path.c_str(), flags));
  if (!tree.valid()) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("bind \"", path, "\": open_tree"));
  }
  return tree;
}

absl::StatusOr<UniqueFd> IdmappedClone(const std::string& path, bool recursive, int userns_fd,
                                       uint64_t attrs) {
  MESH_ASSIGN_OR_RETURN(UniqueFd tree, CloneMount(AT_FDCWD, path, recursive));
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_IDMAP | attrs;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (mount_setattr(tree.get(), "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr,
                    sizeof(attr)) != 0) {
    const int err = errno;
    if (err == EINVAL) {
      // The filesystem lacks FS_ALLOW_IDMAP (or the mount is idmapped already).
      return absl::FailedPreconditionError(absl::StrCat(
          "idmap \"", path, "\": its filesystem does not support idmapped mounts (", strerror(err),
          "), which a container with a user namespace needs; use a path on a ",
          "filesystem that does (ext4, xfs, btrfs, tmpfs) or run the container without one"));
    }
    return mesh::ErrnoToStatus(err, absl::StrCat("idmap \"", path, "\""));
  }
  return tree;
}

absl::Status SetMountAttrs(int mount_fd, uint64_t set, uint64_t clear, bool recursive) {
  mount_attr attr{};
  attr.attr_set = set;
  attr.attr_clr = clear;
  if (mount_setattr(mount_fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr,
                    sizeof(attr)) != 0) {
    return mesh::ErrnoToStatus(errno, "set mount attributes");
  }
  return absl::OkStatus();
}

absl::Status MoveMount(int mount_fd, int target_fd, absl::string_view what) {
  if (move_mount(mount_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) !=
      0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("mount onto ", what));
  }
  return absl::OkStatus();
}

absl::Status SplitMountOptions(const std::vector<std::string>& options, uint64_t* attrs,
                               std::vector<std::string>* fs_options, bool* recursive) {
  for (const std::string& o : options) {
    if (o == "ro") {
      *attrs |= MOUNT_ATTR_RDONLY;
    } else if (o == "nosuid") {
      *attrs |= MOUNT_ATTR_NOSUID;
    } else if (o == "nodev") {
      *attrs |= MOUNT_ATTR_NODEV;
    } else if (o == "noexec") {
      *attrs |= MOUNT_ATTR_NOEXEC;
    } else if (o == "rbind") {
      *recursive = true;
    } else if (o == "bind" || o == "rw" || o == "rprivate" || o == "private") {
      // bind: the type says so; rw: the default; propagation: always private here.
    } else if (o.find('=') != std::string::npos &&
               (o.rfind("size=", 0) == 0 || o.rfind("mode=", 0) == 0 || o.rfind("uid=", 0) == 0 ||
                o.rfind("gid=", 0) == 0 || o.rfind("nr_inodes=", 0) == 0)) {
      fs_options->push_back(o);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "mount option \"", o,
          "\" is not supported (ro, rw, nosuid, nodev, noexec, bind, rbind, and for tmpfs "
          "size=, mode=, uid=, gid=, nr_inodes=)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace mesh::runtime::rootfs
