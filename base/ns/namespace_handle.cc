#include "base/ns/namespace_handle.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cerrno>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace mesh {
namespace {

const char* TypeName(int type) {
  switch (type) {
    case CLONE_NEWNET:
      return "net";
    case CLONE_NEWNS:
      return "mnt";
    case CLONE_NEWPID:
      return "pid";
    case CLONE_NEWUTS:
      return "uts";
    case CLONE_NEWIPC:
      return "ipc";
    case CLONE_NEWUSER:
      return "user";
    case CLONE_NEWCGROUP:
      return "cgroup";
    default:
      return "unknown";
  }
}

}  // namespace

absl::StatusOr<NamespaceHandle> NamespaceHandle::Open(const std::string& path, int type) {
  const std::string what = absl::StrCat("open ", TypeName(type), " namespace \"", path, "\"");
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoToStatus(errno, what);
  int actual = ::ioctl(fd.get(), NS_GET_NSTYPE);
  if (actual < 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a namespace file"));
  }
  if (actual != type) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": it is a ", TypeName(actual), " namespace"));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoToStatus(errno, what);
  return NamespaceHandle(std::move(fd), type, st.st_dev, st.st_ino);
}

absl::StatusOr<NamespaceHandle> NamespaceHandle::OfProcess(pid_t pid, int type) {
  return Open(absl::StrCat("/proc/", pid, "/ns/", TypeName(type)), type);
}

absl::StatusOr<NamespaceHandle> NamespaceHandle::Current(int type) {
  return Open(absl::StrCat("/proc/thread-self/ns/", TypeName(type)), type);
}

absl::Status RunInNetns(const NamespaceHandle& netns, const std::function<absl::Status()>& fn) {
  absl::Status result;
  std::thread worker([&] {
    // A thread already in `netns` (new threads start in the caller's) needs no setns, which
    // also lets unprivileged callers use their own namespace.
    absl::StatusOr<NamespaceHandle> here = NamespaceHandle::Current(CLONE_NEWNET);
    bool already_there = here.ok() && here->SameAs(netns);
    if (!already_there && ::setns(netns.fd(), CLONE_NEWNET) != 0) {
      result = ErrnoToStatus(errno, "enter network namespace");
      return;
    }
    result = fn();
  });
  worker.join();
  return result;
}

}  // namespace mesh
