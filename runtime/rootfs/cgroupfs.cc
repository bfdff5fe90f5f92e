#include "runtime/rootfs/cgroupfs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "runtime/rootfs/mounts.h"

namespace mesh::runtime::rootfs {
namespace {

constexpr char kCgroupDir[] = "/sys/fs/cgroup";
constexpr uint64_t kReadOnly =
    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;

bool IsAbsoluteClean(absl::string_view path) {
  if (path.empty() || path[0] != '/') return false;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return false;
  }
  return true;
}

// A read-only bind of the host directory `source` onto the directory `target_fd`.
absl::Status BindReadOnly(const std::string& source, int target_fd, const std::string& dest) {
  const std::string what = absl::StrCat("bind cgroup ", source, " on ", dest);
  absl::StatusOr<UniqueFd> tree = CloneMount(AT_FDCWD, source, false);
  if (!tree.ok()) return Annotate(tree.status(), what);
  MESH_RETURN_IF_ERROR(Annotate(SetMountAttrs(tree->get(), kReadOnly, 0, false), what));
  return MoveMount(tree->get(), target_fd, what);
}

}  // namespace

absl::Status ValidateCgroupMounts(const std::vector<CgroupMount>& mounts) {
  std::set<std::string> names;
  for (size_t i = 0; i < mounts.size(); ++i) {
    const CgroupMount& m = mounts[i];
    const std::string what =
        absl::StrCat("cgroup mount ", i, " (\"", m.hierarchy, "\" from \"", m.host_dir, "\")");
    if (!IsAbsoluteClean(m.host_dir)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": the host directory must be an absolute path without \"..\""));
    }
    if (m.hierarchy.empty()) {
      if (mounts.size() != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": a cgroup v2 entry (no hierarchy name) must be the only one"));
      }
      continue;
    }
    if (m.hierarchy == "." || m.hierarchy == ".." || m.hierarchy.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": the hierarchy name must be one path component"));
    }
    if (!names.insert(m.hierarchy).second) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": the hierarchy name is repeated"));
    }
  }
  return absl::OkStatus();
}

std::vector<std::pair<std::string, std::string>> CgroupSymlinks(
    const std::vector<CgroupMount>& mounts) {
  std::set<std::string> taken;
  for (const CgroupMount& m : mounts) taken.insert(m.hierarchy);
  std::vector<std::pair<std::string, std::string>> links;
  for (const CgroupMount& m : mounts) {
    if (m.hierarchy.find(',') == std::string::npos) continue;
    for (absl::string_view controller : absl::StrSplit(m.hierarchy, ',', absl::SkipEmpty())) {
      // "name=systemd" is not a directory name anyone looks for.
      if (controller.find('=') != absl::string_view::npos) continue;
      if (taken.insert(std::string(controller)).second) {
        links.emplace_back(std::string(controller), m.hierarchy);
      }
    }
  }
  return links;
}

absl::Status MountCgroupFs(int root_fd, const std::vector<CgroupMount>& mounts) {
  MESH_RETURN_IF_ERROR(ValidateCgroupMounts(mounts));
  if (mounts.empty()) return absl::OkStatus();
  MESH_ASSIGN_OR_RETURN(UniqueFd target, MakeDirInRoot(root_fd, kCgroupDir, 0755, Follow::kNone));
  if (mounts.size() == 1 && mounts[0].hierarchy.empty()) {
    return BindReadOnly(mounts[0].host_dir, target.get(), kCgroupDir);
  }

  // v1: a tmpfs to hold the hierarchies; read-only once they are in.
  const std::string what = absl::StrCat("tmpfs on ", kCgroupDir);
  absl::StatusOr<UniqueFd> tmpfs =
      NewMount("tmpfs", {"mode=755", "size=65536"},
               MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  if (!tmpfs.ok()) return Annotate(tmpfs.status(), what);
  MESH_RETURN_IF_ERROR(MoveMount(tmpfs->get(), target.get(), what));
  for (const CgroupMount& m : mounts) {
    const std::string dest = absl::StrCat(kCgroupDir, "/", m.hierarchy);
    MESH_ASSIGN_OR_RETURN(UniqueFd dir, MakeDirInRoot(root_fd, dest, 0755, Follow::kNone));
    MESH_RETURN_IF_ERROR(BindReadOnly(m.host_dir, dir.get(), dest));
  }
  std::vector<std::pair<std::string, std::string>> links = CgroupSymlinks(mounts);
  if (!links.empty()) {
    MESH_ASSIGN_OR_RETURN(UniqueFd dir,
                          OpenInRoot(root_fd, kCgroupDir, O_RDONLY | O_DIRECTORY, Follow::kNone));
    for (const auto& link : links) {
      if (symlinkat(link.second.c_str(), dir.get(), link.first.c_str()) != 0) {
        return mesh::ErrnoToStatus(errno,
                                   absl::StrCat("create symlink ", kCgroupDir, "/", link.first));
      }
    }
  }
  return Annotate(SetMountAttrs(tmpfs->get(), MOUNT_ATTR_RDONLY, 0, false),
                  absl::StrCat("make ", kCgroupDir, " read-only"));
}

}  // namespace mesh::runtime::rootfs
