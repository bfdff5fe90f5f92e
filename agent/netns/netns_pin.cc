#include "agent/netns/netns_pin.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"

namespace mesh::agent {
namespace {

// Sets `lo` up in the calling thread's network namespace.
absl::Status LoopbackUp() {
  UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return mesh::ErrnoToStatus(errno, "socket for lo");
  ifreq req{};
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(sock.get(), SIOCGIFFLAGS, &req) != 0) return mesh::ErrnoToStatus(errno, "get lo flags");
  req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP);
  if (ioctl(sock.get(), SIOCSIFFLAGS, &req) != 0) return mesh::ErrnoToStatus(errno, "set lo up");
  return absl::OkStatus();
}

}  // namespace

bool IsPinnedNetns(const std::string& path) {
  struct statfs fs {};
  return statfs(path.c_str(), &fs) == 0 &&
         fs.f_type == static_cast<decltype(fs.f_type)>(NSFS_MAGIC);
}

absl::Status PinNewNetns(const std::string& path) {
  if (IsPinnedNetns(path)) {
    return absl::AlreadyExistsError(absl::StrCat("a network namespace is pinned at ", path));
  }
  {
    UniqueFd file(open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0444));
    if (!file.valid()) return mesh::ErrnoToStatus(errno, absl::StrCat("create ", path));
  }
  // unshare(CLONE_NEWNET) moves only the calling thread: do it on a thread of its own, which
  // pins the namespace and ends (no gRPC worker ever switches namespaces; DESIGN.md 6).
  absl::Status status;
  std::thread([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      status = mesh::ErrnoToStatus(errno, "unshare a network namespace");
      return;
    }
    status = LoopbackUp();
    if (!status.ok()) return;
    if (mount("/proc/thread-self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      status = mesh::ErrnoToStatus(errno, absl::StrCat("pin the network namespace at ", path));
    }
  }).join();
  if (!status.ok()) unlink(path.c_str());
  return status;
}

absl::Status UnpinNetns(const std::string& path) {
  if (umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("unmount the network namespace at ", path));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return mesh::ErrnoToStatus(errno, absl::StrCat("remove ", path));
  }
  return absl::OkStatus();
}

std::vector<std::string> ListPinFiles(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

}  // namespace mesh::agent
