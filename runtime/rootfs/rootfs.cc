#include "runtime/rootfs/rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "runtime/rootfs/mounts.h"

namespace mesh::runtime::rootfs {
namespace {

constexpr uint64_t kNoSuidDevExec = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;

std::string Quote(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

// Mounts a new filesystem of `type` on the directory `dest` inside the root.
absl::Status MountNew(int root_fd, const std::string& dest, const std::string& type,
                      const std::vector<std::string>& options, uint64_t attrs, mode_t mode,
                      Follow follow) {
  const std::string what = absl::StrCat(type, " on ", dest);
  MESH_ASSIGN_OR_RETURN(UniqueFd target, MakeDirInRoot(root_fd, dest, mode, follow));
  absl::StatusOr<UniqueFd> mount = NewMount(type, options, attrs);
  if (!mount.ok()) return Annotate(mount.status(), what);
  return MoveMount(mount->get(), target.get(), what);
}

// Binds the host path `source` (a file or a directory) onto `dest` inside the root.
absl::Status BindInto(int root_fd, const std::string& source, const std::string& dest,
                      uint64_t attrs, bool recursive, Follow follow) {
  const std::string what = absl::StrCat("bind ", Quote(source), " on ", dest);
  struct stat st;
  if (stat(source.c_str(), &st) != 0) return mesh::ErrnoToStatus(errno, what);
  absl::StatusOr<UniqueFd> target = S_ISDIR(st.st_mode) ? MakeDirInRoot(root_fd, dest, 0755, follow)
                                                        : MakeFileInRoot(root_fd, dest, follow);
  if (!target.ok()) return Annotate(target.status(), what);
  MESH_ASSIGN_OR_RETURN(UniqueFd tree, CloneMount(AT_FDCWD, source, recursive));
  if (attrs != 0) MESH_RETURN_IF_ERROR(Annotate(SetMountAttrs(tree.get(), attrs, 0, true), what));
  return MoveMount(tree.get(), target->get(), what);
}

// Attaches the ready (detached) mount `tree` onto `dest` inside the root: a directory or a file
// is made there to match what the tree's root is.
absl::Status AttachInto(int root_fd, int tree, const std::string& dest, const std::string& what,
                        Follow follow) {
  struct stat st;
  if (fstat(tree, &st) != 0) return mesh::ErrnoToStatus(errno, what);
  absl::StatusOr<UniqueFd> target = S_ISDIR(st.st_mode) ? MakeDirInRoot(root_fd, dest, 0755, follow)
                                                        : MakeFileInRoot(root_fd, dest, follow);
  if (!target.ok()) return Annotate(target.status(), what);
  return MoveMount(tree, target->get(), what);
}

// In a user namespace mknod of a device is refused (it needs CAP_MKNOD in the initial one):
// the host's nodes are bound onto empty files instead, as runc does for rootless containers.
absl::Status BindHostDevice(int dev_fd, const char* name) {
  const std::string what = absl::StrCat("bind the host's /dev/", name);
  UniqueFd file(openat(dev_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
  if (!file.valid()) return mesh::ErrnoToStatus(errno, what);
  UniqueFd target(openat(dev_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!target.valid()) return mesh::ErrnoToStatus(errno, what);
  MESH_ASSIGN_OR_RETURN(UniqueFd node, CloneMount(AT_FDCWD, absl::StrCat("/dev/", name), false));
  MESH_RETURN_IF_ERROR(
      Annotate(SetMountAttrs(node.get(), MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0, false), what));
  return MoveMount(node.get(), target.get(), what);
}

absl::Status MakeDevices(int root_fd, bool terminal, bool bind_host_nodes) {
  MESH_ASSIGN_OR_RETURN(UniqueFd dev,
                        OpenInRoot(root_fd, "/dev", O_RDONLY | O_DIRECTORY, Follow::kNone));
  const mode_t old_umask = umask(0);
  absl::Status status;
  for (const Device& d : DefaultDevices()) {
    if (bind_host_nodes) {
      status = BindHostDevice(dev.get(), d.name);
      if (!status.ok()) break;
    } else if (mknodat(dev.get(), d.name, S_IFCHR | 0666, makedev(d.major, d.minor)) != 0) {
      status = mesh::ErrnoToStatus(errno, absl::StrCat("create /dev/", d.name));
      break;
    }
  }
  umask(old_umask);
  MESH_RETURN_IF_ERROR(status);
  if (terminal) {
    // The caller bind-mounts the pty onto it.
    UniqueFd console(openat(dev.get(), "console", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!console.valid()) return mesh::ErrnoToStatus(errno, "create /dev/console");
  }
  struct Link {
    const char* target;
    const char* name;
  };
  for (const Link& l :
       {Link{"pts/ptmx", "ptmx"}, Link{"/proc/self/fd", "fd"}, Link{"/proc/self/fd/0", "stdin"},
        Link{"/proc/self/fd/1", "stdout"}, Link{"/proc/self/fd/2", "stderr"}}) {
    if (symlinkat(l.target, dev.get(), l.name) != 0) {
      return mesh::ErrnoToStatus(errno, absl::StrCat("create /dev/", l.name));
    }
  }
  return absl::OkStatus();
}

// Paths of `pattern` inside the root; a pattern may hold one "*" component
// (/sys/devices/system/cpu/cpu*/thermal_throttle).
std::vector<std::string> Expand(int root_fd, const std::string& pattern) {
  size_t star = pattern.find('*');
  if (star == std::string::npos) return {pattern};
  size_t begin = pattern.rfind('/', star);
  size_t end = pattern.find('/', star);
  const std::string dir = pattern.substr(0, begin);
  const std::string glob = pattern.substr(begin + 1, end - begin - 1);
  const std::string rest = end == std::string::npos ? "" : pattern.substr(end);
  std::vector<std::string> out;
  absl::StatusOr<UniqueFd> fd = OpenInRoot(root_fd, dir, O_RDONLY | O_DIRECTORY, Follow::kNone);
  if (!fd.ok()) return out;
  DIR* d = fdopendir(fd->Release());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (fnmatch(glob.c_str(), e->d_name, 0) == 0) {
      out.push_back(absl::StrCat(dir, "/", e->d_name, rest));
    }
  }
  closedir(d);
  return out;
}

absl::Status MaskPath(int root_fd, const std::string& path) {
  absl::StatusOr<UniqueFd> target = OpenInRoot(root_fd, path, O_PATH, Follow::kNone);
  if (absl::IsNotFound(target.status())) return absl::OkStatus();  // nothing to hide
  MESH_RETURN_IF_ERROR(target.status());
  struct stat st;
  if (fstat(target->get(), &st) != 0) return mesh::ErrnoToStatus(errno, path);
  const std::string what = absl::StrCat("mask ", path);
  if (S_ISDIR(st.st_mode)) {
    absl::StatusOr<UniqueFd> empty =
        NewMount("tmpfs", {"size=0", "mode=0555"}, MOUNT_ATTR_RDONLY | kNoSuidDevExec);
    if (!empty.ok()) return Annotate(empty.status(), what);
    return MoveMount(empty->get(), target->get(), what);
  }
  MESH_ASSIGN_OR_RETURN(UniqueFd null, CloneMount(AT_FDCWD, "/dev/null", false));
  return MoveMount(null.get(), target->get(), what);
}

absl::Status ReadonlyPath(int root_fd, const std::string& path) {
  absl::StatusOr<UniqueFd> target = OpenInRoot(root_fd, path, O_PATH, Follow::kNone);
  if (absl::IsNotFound(target.status())) return absl::OkStatus();
  MESH_RETURN_IF_ERROR(target.status());
  const std::string what = absl::StrCat("make ", path, " read-only");
  MESH_ASSIGN_OR_RETURN(UniqueFd tree, CloneMount(target->get(), "", true));
  MESH_RETURN_IF_ERROR(Annotate(
      SetMountAttrs(tree.get(), MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, true),
      what));
  return MoveMount(tree.get(), target->get(), what);
}

// The overlay keeps the credentials of whoever creates it and does its own work in the upper
// dir with them (the work dir, copy-up). Through an idmapped upper dir those must be ids the
// mapping holds: host root is not in it, and the kernel mounts read-only ("overlayfs: failed
// to create directory .../work/work (errno: 75)", EOVERFLOW). So the overlay is created with
// fsuid/fsgid set to the container's root as the host sees it; real and effective ids stay 0.
// Leaving fsuid 0 drops the file capabilities from the effective set: they are raised again
// (copy-up chowns and reads files of any owner), and come back by themselves with fsuid 0.
absl::StatusOr<UniqueFd> NewMountAs(uid_t uid, gid_t gid, const std::string& type,
                                    const std::vector<std::string>& options, uint64_t attrs) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct caps[2] = {};
  if (syscall(SYS_capget, &header, caps) != 0) return mesh::ErrnoToStatus(errno, "capget");
  // The raw calls: glibc's setfsuid has no way to report failure but the old value.
  syscall(SYS_setfsgid, gid);
  syscall(SYS_setfsuid, uid);
  absl::StatusOr<UniqueFd> mount;
  if (static_cast<uid_t>(syscall(SYS_setfsuid, -1)) != uid ||
      static_cast<gid_t>(syscall(SYS_setfsgid, -1)) != gid) {
    mount = absl::InternalError(absl::StrCat("switch to fsuid ", uid, " and fsgid ", gid));
  } else {
    __user_cap_data_struct raised[2] = {caps[0], caps[1]};
    raised[0].effective = raised[0].permitted;
    raised[1].effective = raised[1].permitted;
    if (syscall(SYS_capset, &header, raised) != 0) {
      mount = mesh::ErrnoToStatus(errno, "capset");
    } else {
      mount = NewMount(type, options, attrs);
    }
  }
  syscall(SYS_setfsuid, 0);
  syscall(SYS_setfsgid, 0);
  if (syscall(SYS_capset, &header, caps) != 0 || syscall(SYS_setfsuid, -1) != 0 ||
      syscall(SYS_setfsgid, -1) != 0) {
    return absl::InternalError("could not return to fsuid 0 after creating the overlay");
  }
  return mount;
}

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool IsAbsoluteClean(const std::string& path) {
  if (path.empty() || path[0] != '/') return false;
  for (size_t pos = 0; pos != std::string::npos;) {
    size_t next = path.find('/', pos + 1);
    absl::string_view part(path.data() + pos + 1,
                           (next == std::string::npos ? path.size() : next) - pos - 1);
    if (part == "..") return false;
    pos = next;
  }
  return true;
}

}  // namespace

const std::vector<Device>& DefaultDevices() {
  static const auto* devices =
      new std::vector<Device>{{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
                              {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  return *devices;
}

absl::Status ValidatePlan(const RootfsPlan& plan) {
  if (plan.lower_dirs.empty()) {
    return absl::InvalidArgumentError("rootfs: the image has no layers");
  }
  for (const Mount& m : plan.mounts) {
    const std::string what = absl::StrCat("mount on ", Quote(m.destination));
    if (!IsAbsoluteClean(m.destination)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": the destination must be an absolute path without \"..\""));
    }
    uint64_t attrs = 0;
    bool recursive = false;
    std::vector<std::string> fs_options;
    MESH_RETURN_IF_ERROR(
        Annotate(SplitMountOptions(m.options, &attrs, &fs_options, &recursive), what));
    if (m.type == "bind") {
      if (!IsAbsoluteClean(m.source)) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": bind source ", Quote(m.source),
                         " must be an absolute host path without \"..\""));
      }
      struct stat st;
      if (stat(m.source.c_str(), &st) != 0) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": bind source ", Quote(m.source),
                                                       " does not exist; create it first"));
      }
      if (!fs_options.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": option ", Quote(fs_options[0]), " is for tmpfs only"));
      }
    } else if (m.type != "tmpfs") {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": type ", Quote(m.type), " is not supported (bind, tmpfs)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<IdmappedMounts> MakeIdmappedMounts(const RootfsPlan& plan, int userns_fd,
                                                  uid_t root_uid, gid_t root_gid) {
  MESH_RETURN_IF_ERROR(ValidatePlan(plan));
  IdmappedMounts out;
  // The layers as detached idmapped mounts, named to overlayfs by /proc/self/fd/N (each
  // "lowerdir+" value stays far below fsconfig's 256 bytes). overlayfs supports idmapped
  // layers; an idmapped overlay mount itself it does not (mount_setattr: EINVAL).
  std::vector<UniqueFd> layers;
  std::vector<std::string> options;
  for (const std::string& lower : plan.lower_dirs) {
    absl::StatusOr<UniqueFd> layer = IdmappedClone(lower, false, userns_fd, 0);
    if (!layer.ok()) return Annotate(layer.status(), "image layer");
    options.push_back(absl::StrCat("lowerdir+=/proc/self/fd/", layer->get()));
    layers.push_back(*std::move(layer));
  }
  // upper and work must be on one mount: their common parent, idmapped.
  const std::string parent = Dirname(plan.upper_dir);
  if (Dirname(plan.work_dir) != parent) {
    return absl::InvalidArgumentError(absl::StrCat("rootfs: upper dir ", Quote(plan.upper_dir),
                                                   " and work dir ", Quote(plan.work_dir),
                                                   " must be in the same directory"));
  }
  MESH_ASSIGN_OR_RETURN(UniqueFd data, IdmappedClone(parent, false, userns_fd, 0));
  options.push_back(
      absl::StrCat("upperdir=/proc/self/fd/", data.get(), "/", Basename(plan.upper_dir)));
  options.push_back(
      absl::StrCat("workdir=/proc/self/fd/", data.get(), "/", Basename(plan.work_dir)));
  absl::StatusOr<UniqueFd> overlay =
      NewMountAs(root_uid, root_gid, "overlay", options, MOUNT_ATTR_NODEV);
  if (!overlay.ok()) return Annotate(overlay.status(), "overlay over idmapped layers");
  out.rootfs = *std::move(overlay);

  for (size_t i = 0; i < 3; ++i) {
    const std::string source = absl::StrCat(plan.etc_dir, "/", kEtcFiles[i]);
    if (plan.etc_dir.empty() || access(source.c_str(), F_OK) != 0) continue;
    MESH_ASSIGN_OR_RETURN(out.etc[i], IdmappedClone(source, false, userns_fd, kNoSuidDevExec));
  }
  for (const Mount& m : plan.mounts) {
    if (m.type != "bind") {
      out.binds.emplace_back();
      continue;
    }
    uint64_t attrs = 0;
    bool recursive = false;
    std::vector<std::string> fs_options;
    MESH_RETURN_IF_ERROR(SplitMountOptions(m.options, &attrs, &fs_options, &recursive));
    absl::StatusOr<UniqueFd> tree = IdmappedClone(m.source, recursive, userns_fd, attrs);
    if (!tree.ok()) return Annotate(tree.status(), absl::StrCat("mount on ", Quote(m.destination)));
    out.binds.push_back(*std::move(tree));
  }
  return out;
}

absl::Status MountRootfs(const RootfsPlan& plan, const ReadyMounts* ready) {
  if (plan.user_namespace) {
    // Validated by MakeIdmappedMounts: the mapped root may not even see the bind sources.
    if (ready == nullptr || ready->rootfs < 0 || ready->mountpoint < 0 ||
        ready->binds.size() != plan.mounts.size()) {
      return absl::InternalError("rootfs: a user namespace needs its idmapped mounts made first");
    }
  } else {
    MESH_RETURN_IF_ERROR(ValidatePlan(plan));
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return mesh::ErrnoToStatus(errno, "make / private in the container's mount namespace");
  }

  // 1. overlayfs. "lowerdir+" (one layer per option, Linux 6.8+) avoids fsconfig's 256-byte
  // limit on one string value. With a user namespace it comes ready (MakeIdmappedMounts).
  UniqueFd own_overlay;
  if (!plan.user_namespace) {
    std::vector<std::string> overlay_options;
    for (const std::string& lower : plan.lower_dirs) {
      overlay_options.push_back("lowerdir+=" + lower);
    }
    overlay_options.push_back("upperdir=" + plan.upper_dir);
    overlay_options.push_back("workdir=" + plan.work_dir);
    MESH_ASSIGN_OR_RETURN(own_overlay, NewMount("overlay", overlay_options, MOUNT_ATTR_NODEV));
  }
  const int overlay = plan.user_namespace ? ready->rootfs : own_overlay.get();
  if (plan.user_namespace) {
    MESH_RETURN_IF_ERROR(MoveMount(overlay, ready->mountpoint, "the rootfs"));
  } else {
    UniqueFd mountpoint(open(plan.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!mountpoint.valid()) return mesh::ErrnoToStatus(errno, Quote(plan.rootfs));
    MESH_RETURN_IF_ERROR(MoveMount(overlay, mountpoint.get(), "the rootfs"));
  }
  // The mount's fd is its root, attached now.
  UniqueFd root(plan.user_namespace ? fcntl(overlay, F_DUPFD_CLOEXEC, 0)
                                    : open(plan.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return mesh::ErrnoToStatus(errno, Quote(plan.rootfs));
  const int r = root.get();

  // 2. The standard mounts (no symlink may lead them anywhere).
  MESH_RETURN_IF_ERROR(MountNew(r, "/proc", "proc", {}, kNoSuidDevExec, 0555, Follow::kNone));
  if (plan.privileged) {
    MESH_RETURN_IF_ERROR(BindInto(r, "/dev", "/dev", 0, true, Follow::kNone));
  } else {
    MESH_RETURN_IF_ERROR(MountNew(r, "/dev", "tmpfs", {"mode=755", "size=65536"},
                                  MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0755, Follow::kNone));
    MESH_RETURN_IF_ERROR(MakeDevices(r, plan.terminal, plan.user_namespace));
  }
  MESH_RETURN_IF_ERROR(MountNew(r, "/dev/pts", "devpts",
                                {"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
                                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0755, Follow::kNone));
  MESH_RETURN_IF_ERROR(MountNew(r, "/dev/shm", "tmpfs", {"mode=1777", "size=67108864"},
                                kNoSuidDevExec, 01777, Follow::kNone));
  MESH_RETURN_IF_ERROR(
      MountNew(r, "/dev/mqueue", "mqueue", {}, kNoSuidDevExec, 0755, Follow::kNone));
  const uint64_t sys_ro = plan.privileged ? 0 : MOUNT_ATTR_RDONLY;
  absl::Status sys = MountNew(r, "/sys", "sysfs", {}, sys_ro | kNoSuidDevExec, 0555, Follow::kNone);
  if (absl::IsPermissionDenied(sys)) {
    // A network namespace owned by another user namespace: sysfs cannot be mounted fresh;
    // the host's, read-only, is what runc does too.
    sys = BindInto(r, "/sys", "/sys", MOUNT_ATTR_RDONLY | kNoSuidDevExec, true, Follow::kNone);
  }
  MESH_RETURN_IF_ERROR(sys);
  MESH_RETURN_IF_ERROR(MountCgroupFs(r, plan.cgroups));

  // 3. The caller's /etc files.
  for (size_t i = 0; i < 3; ++i) {
    const char* name = kEtcFiles[i];
    if (plan.user_namespace) {
      if (ready->etc[i] < 0) continue;
      MESH_RETURN_IF_ERROR(AttachInto(r, ready->etc[i], absl::StrCat("/etc/", name),
                                      absl::StrCat("bind /etc/", name), Follow::kNone));
      continue;
    }
    const std::string source = absl::StrCat(plan.etc_dir, "/", name);
    if (plan.etc_dir.empty() || access(source.c_str(), F_OK) != 0) continue;
    MESH_RETURN_IF_ERROR(BindInto(r, source, absl::StrCat("/etc/", name),
                                  MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, false,
                                  Follow::kNone));
  }

  // 4. The spec's mounts, in order (a later one may sit inside an earlier one).
  for (size_t i = 0; i < plan.mounts.size(); ++i) {
    const Mount& m = plan.mounts[i];
    uint64_t attrs = 0;
    bool recursive = false;
    std::vector<std::string> fs_options;
    MESH_RETURN_IF_ERROR(SplitMountOptions(m.options, &attrs, &fs_options, &recursive));
    if (m.type == "bind" && plan.user_namespace) {
      MESH_RETURN_IF_ERROR(AttachInto(r, ready->binds[i], m.destination,
                                      absl::StrCat("bind ", Quote(m.source), " on ", m.destination),
                                      Follow::kInRoot));
    } else if (m.type == "bind") {
      MESH_RETURN_IF_ERROR(BindInto(r, m.source, m.destination, attrs, recursive, Follow::kInRoot));
    } else {
      MESH_RETURN_IF_ERROR(MountNew(r, m.destination, "tmpfs", fs_options,
                                    attrs | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0755,
                                    Follow::kInRoot));
    }
  }

  // 5. Masked and read-only paths, then the root itself read-only if asked.
  for (const std::string& pattern : plan.masked_paths) {
    for (const std::string& path : Expand(r, pattern)) {
      MESH_RETURN_IF_ERROR(MaskPath(r, path));
    }
  }
  for (const std::string& path : plan.readonly_paths) {
    MESH_RETURN_IF_ERROR(ReadonlyPath(r, path));
  }
  if (plan.readonly_root) {
    MESH_RETURN_IF_ERROR(
        Annotate(SetMountAttrs(overlay, MOUNT_ATTR_RDONLY, 0, false), "read-only root"));
  }
  return absl::OkStatus();
}

absl::Status PivotRoot(const std::string& rootfs) {
  if (chdir(rootfs.c_str()) != 0) return mesh::ErrnoToStatus(errno, Quote(rootfs));
  return PivotRootAt(-1, rootfs);
}

absl::Status PivotRootAt(int rootfs_fd, const std::string& name) {
  if (rootfs_fd >= 0 && fchdir(rootfs_fd) != 0) return mesh::ErrnoToStatus(errno, Quote(name));
  // pivot_root(".", "."): the old root ends up stacked on "/", and is detached at once.
  if (syscall(SYS_pivot_root, ".", ".") != 0) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("pivot_root into ", Quote(name)));
  }
  if (umount2(".", MNT_DETACH) != 0) return mesh::ErrnoToStatus(errno, "detach the old root");
  if (chdir("/") != 0) return mesh::ErrnoToStatus(errno, "chdir /");
  return absl::OkStatus();
}

}  // namespace mesh::runtime::rootfs
