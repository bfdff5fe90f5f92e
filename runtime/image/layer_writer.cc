#include "runtime/image/layer_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "runtime/image/fs.h"

namespace mesh::runtime::image {
namespace {

constexpr char kOpaqueXattr[] = "trusted.overlay.opaque";

std::pair<std::string, std::string> SplitParent(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

std::string Quote(absl::string_view s) { return absl::StrCat("\"", absl::CHexEscape(s), "\""); }

bool IsWhiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == 0; }

// An error from a confined lookup: ELOOP and EXDEV mean the path tried to go through a
// symlink or a mount point, which is a rule violation, not an I/O problem.
absl::Status LookupError(int err, const std::string& path) {
  if (err == ELOOP || err == EXDEV) {
    return absl::InvalidArgumentError(
        absl::StrCat("path ", Quote(path), " goes through a symlink or mount point (refused)"));
  }
  if (err == ENOTDIR) {
    return absl::InvalidArgumentError(
        absl::StrCat("path ", Quote(path), " goes through something that is not a directory"));
  }
  return mesh::ErrnoToStatus(err, absl::StrCat("open directory ", Quote(path)));
}

absl::Status WriteAllAt(int fd, const void* data, size_t size, int64_t offset) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return mesh::ErrnoToStatus(errno, "write file content");
    p += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DiskLayerSink>> DiskLayerSink::Create(const std::string& root,
                                                                     DiskSinkOptions options) {
  MESH_ASSIGN_OR_RETURN(UniqueFd fd, OpenDirectory(root));
  return std::unique_ptr<DiskLayerSink>(new DiskLayerSink(std::move(fd), options));
}

absl::Status DiskLayerSink::SetOpaque(int dir_fd) {
  if (::fsetxattr(dir_fd, kOpaqueXattr, "y", 1, 0) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("set xattr ", kOpaqueXattr,
                                                   " (needs root and a file system with "
                                                   "trusted xattrs)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> DiskLayerSink::OpenDir(const std::string& path) {
  const char* target = path.empty() ? "." : path.c_str();
  int fd = OpenAt2(root_.get(), target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, kResolveNoSymlinks);
  if (fd >= 0) return UniqueFd(fd);
  if (errno != ENOENT && errno != ENOTDIR) return LookupError(errno, path);
  // Walk down one component at a time, creating what is missing.
  fd = OpenAt2(root_.get(), ".", O_RDONLY | O_DIRECTORY, kResolveNoSymlinks);
  if (fd < 0) return mesh::ErrnoToStatus(errno, "open layer root");
  UniqueFd cur(fd);
  std::string walked;
  for (absl::string_view part_view : absl::StrSplit(path, '/')) {
    std::string part(part_view);
    walked = walked.empty() ? part : absl::StrCat(walked, "/", part);
    bool made_over_whiteout = false;
    struct stat st;
    if (::fstatat(cur.get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (options_.overlay_whiteouts && IsWhiteout(st)) {
        // A whiteout earlier in this layer, now a directory with content: the directory
        // replaces the deleted one, so lower layers must not show through.
        if (::unlinkat(cur.get(), part.c_str(), 0) != 0) {
          return mesh::ErrnoToStatus(errno, absl::StrCat("remove whiteout ", Quote(walked)));
        }
        made_over_whiteout = true;
      } else if (!S_ISDIR(st.st_mode)) {
        return LookupError(S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR, walked);
      }
    } else if (errno != ENOENT) {
      return mesh::ErrnoToStatus(errno, absl::StrCat("stat ", Quote(walked)));
    }
    if (::mkdirat(cur.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
      return mesh::ErrnoToStatus(errno, absl::StrCat("create directory ", Quote(walked)));
    }
    int next =
        OpenAt2(cur.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW, kResolveNoSymlinks);
    if (next < 0) return LookupError(errno, walked);
    cur = UniqueFd(next);
    if (made_over_whiteout) MESH_RETURN_IF_ERROR(SetOpaque(cur.get()));
  }
  return cur;
}

absl::Status DiskLayerSink::ApplyMetadata(int fd, const PlannedEntry& entry) {
  // Order matters: chown clears setuid/setgid bits and security.capability, so it goes first.
  if (options_.preserve_owner && ::fchown(fd, entry.uid, entry.gid) != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("chown to ", entry.uid, ":", entry.gid));
  }
  if (::fchmod(fd, entry.mode) != 0) {
    return mesh::ErrnoToStatus(errno,
                               absl::StrCat("chmod to ", absl::StrFormat("%04o", entry.mode)));
  }
  if (options_.preserve_xattrs) {
    for (const auto& [name, value] : entry.xattrs) {
      if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) != 0) {
        return mesh::ErrnoToStatus(errno, absl::StrCat("set xattr ", Quote(name)));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status DiskLayerSink::WriteRegular(int parent, const std::string& name,
                                         const PlannedEntry& entry, EntryData& data) {
  int raw =
      ::openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (raw < 0) return mesh::ErrnoToStatus(errno, "create file");
  UniqueFd fd(raw);
  EntryData::Block block;
  for (;;) {
    MESH_ASSIGN_OR_RETURN(bool more, data.Next(&block));
    if (!more) break;
    MESH_RETURN_IF_ERROR(WriteAllAt(fd.get(), block.data, block.size, block.offset));
  }
  // Sparse files may end in a hole.
  if (::ftruncate(fd.get(), entry.size) != 0) {
    return mesh::ErrnoToStatus(errno, "set file size");
  }
  MESH_RETURN_IF_ERROR(ApplyMetadata(fd.get(), entry));
  struct timespec times[2] = {{entry.mtime_sec, entry.mtime_nsec},
                              {entry.mtime_sec, entry.mtime_nsec}};
  if (::futimens(fd.get(), times) != 0) return mesh::ErrnoToStatus(errno, "set file times");
  return absl::OkStatus();
}

absl::Status DiskLayerSink::Apply(const PlannedEntry& entry, EntryData& data) {
  struct timespec times[2] = {{entry.mtime_sec, entry.mtime_nsec},
                              {entry.mtime_sec, entry.mtime_nsec}};
  if (entry.action == EntryAction::kOpaque) {
    MESH_ASSIGN_OR_RETURN(UniqueFd dir, OpenDir(entry.path));
    return SetOpaque(dir.get());
  }
  if (entry.path.empty()) {  // the layer root itself
    MESH_RETURN_IF_ERROR(ApplyMetadata(root_.get(), entry));
    dir_times_.push_back({entry.path, {entry.mtime_sec, entry.mtime_nsec}});
    return absl::OkStatus();
  }
  auto [parent_path, name] = SplitParent(entry.path);
  MESH_ASSIGN_OR_RETURN(UniqueFd parent, OpenDir(parent_path));
  struct stat st;
  bool exists = ::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (!exists && errno != ENOENT) return mesh::ErrnoToStatus(errno, "stat");

  if (entry.action == EntryAction::kWhiteout) {
    // What this layer already holds at the path stays (see LayerPolicy).
    if (exists) return absl::OkStatus();
    if (::mknodat(parent.get(), name.c_str(), S_IFCHR | 0, ::makedev(0, 0)) != 0) {
      return mesh::ErrnoToStatus(errno, "create whiteout (character device 0/0)");
    }
    return absl::OkStatus();
  }

  bool replaced_whiteout = exists && options_.overlay_whiteouts && IsWhiteout(st);
  if (entry.type == EntryType::kDirectory && exists && S_ISDIR(st.st_mode)) {
    // An existing directory keeps its content; only its metadata changes.
  } else if (exists) {
    MESH_RETURN_IF_ERROR(RemoveTreeAt(parent.get(), name));
  }

  switch (entry.type) {
    case EntryType::kDirectory: {
      if (!(exists && S_ISDIR(st.st_mode)) && ::mkdirat(parent.get(), name.c_str(), 0700) != 0) {
        return mesh::ErrnoToStatus(errno, "create directory");
      }
      int raw = OpenAt2(parent.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                        kResolveNoSymlinks);
      if (raw < 0) return LookupError(errno, entry.path);
      UniqueFd dir(raw);
      if (replaced_whiteout) MESH_RETURN_IF_ERROR(SetOpaque(dir.get()));
      MESH_RETURN_IF_ERROR(ApplyMetadata(dir.get(), entry));
      dir_times_.push_back({entry.path, {entry.mtime_sec, entry.mtime_nsec}});
      return absl::OkStatus();
    }
    case EntryType::kRegular:
      return WriteRegular(parent.get(), name, entry, data);
    case EntryType::kSymlink:
      if (::symlinkat(entry.link_target.c_str(), parent.get(), name.c_str()) != 0) {
        return mesh::ErrnoToStatus(errno, "create symlink");
      }
      if (options_.preserve_owner &&
          ::fchownat(parent.get(), name.c_str(), entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) != 0) {
        return mesh::ErrnoToStatus(errno, "chown symlink");
      }
      if (::utimensat(parent.get(), name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
        return mesh::ErrnoToStatus(errno, "set symlink times");
      }
      return absl::OkStatus();
    case EntryType::kHardlink: {
      auto [target_parent_path, target_name] = SplitParent(entry.link_target);
      const char* tp = target_parent_path.empty() ? "." : target_parent_path.c_str();
      int raw = OpenAt2(root_.get(), tp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, kResolveNoSymlinks);
      if (raw < 0) return LookupError(errno, entry.link_target);
      UniqueFd target_parent(raw);
      struct stat tst;
      if (::fstatat(target_parent.get(), target_name.c_str(), &tst, AT_SYMLINK_NOFOLLOW) != 0 ||
          !S_ISREG(tst.st_mode)) {
        return absl::InvalidArgumentError(absl::StrCat("hardlink target ", Quote(entry.link_target),
                                                       " is not a regular file in the layer"));
      }
      // No AT_SYMLINK_FOLLOW: the target is the regular file just checked, never a symlink.
      if (::linkat(target_parent.get(), target_name.c_str(), parent.get(), name.c_str(), 0) != 0) {
        return mesh::ErrnoToStatus(errno, absl::StrCat("hardlink to ", Quote(entry.link_target)));
      }
      return absl::OkStatus();
    }
    case EntryType::kFifo: {
      if (::mkfifoat(parent.get(), name.c_str(), 0600) != 0) {
        return mesh::ErrnoToStatus(errno, "create fifo");
      }
      // Opening a fifo would block, so it is changed by name: the name was just created in a
      // directory only this writer touches.
      if (options_.preserve_owner &&
          ::fchownat(parent.get(), name.c_str(), entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) != 0) {
        return mesh::ErrnoToStatus(errno, "chown fifo");
      }
      if (::fchmodat(parent.get(), name.c_str(), entry.mode, 0) != 0) {
        return mesh::ErrnoToStatus(errno, "chmod fifo");
      }
      if (::utimensat(parent.get(), name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
        return mesh::ErrnoToStatus(errno, "set fifo times");
      }
      return absl::OkStatus();
    }
    case EntryType::kCharDevice:
    case EntryType::kBlockDevice:
    case EntryType::kSocket:
    case EntryType::kUnknown:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(EntryTypeName(entry.type), " entries are not written (refused)"));
}

absl::Status DiskLayerSink::Finish() {
  for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
    const std::string& path = it->first;
    // A later entry may have replaced the directory (even by a symlink): look it up again,
    // confined, and skip it if it is no longer a directory.
    int raw = OpenAt2(root_.get(), path.empty() ? "." : path.c_str(),
                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW, kResolveNoSymlinks);
    if (raw < 0) continue;
    UniqueFd dir(raw);
    struct timespec times[2] = {{it->second.first, it->second.second},
                                {it->second.first, it->second.second}};
    if (::futimens(dir.get(), times) != 0) {
      return mesh::ErrnoToStatus(errno, absl::StrCat("set times of directory ", Quote(path)));
    }
  }
  dir_times_.clear();
  return absl::OkStatus();
}

}  // namespace mesh::runtime::image
