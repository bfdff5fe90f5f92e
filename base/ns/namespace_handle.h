#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace mesh {

// An open handle on a Linux namespace (an fd to /proc/PID/ns/TYPE, /run/netns/NAME or any
// bind mount of one). Holding it keeps the namespace alive. Move-only.
class NamespaceHandle {
 public:
  // `type` is a CLONE_NEW* flag. Opens `path` and checks it is a namespace of that type:
  // NotFound if it does not exist, InvalidArgument if it is something else.
  static absl::StatusOr<NamespaceHandle> Open(const std::string& path, int type);
  // The namespace of `type` that process `pid` is in.
  static absl::StatusOr<NamespaceHandle> OfProcess(pid_t pid, int type);
  // The namespace of `type` the calling thread is in.
  static absl::StatusOr<NamespaceHandle> Current(int type);

  NamespaceHandle() = default;
  int fd() const { return fd_.get(); }
  int type() const { return type_; }
  // The namespace's inode number: two handles name the same namespace iff equal.
  ino_t inode() const { return inode_; }
  bool SameAs(const NamespaceHandle& other) const {
    return type_ == other.type_ && inode_ == other.inode_ && dev_ == other.dev_;
  }

 private:
  NamespaceHandle(UniqueFd fd, int type, dev_t dev, ino_t inode)
      : fd_(std::move(fd)), type_(type), dev_(dev), inode_(inode) {}
  UniqueFd fd_;
  int type_ = 0;
  dev_t dev_ = 0;
  ino_t inode_ = 0;
};

// Runs `fn` on a short-lived thread that first joins the network namespace `netns`; the calling
// thread never switches namespaces (STYLE.md rule 4). Sockets `fn` creates belong to `netns`
// and stay there when handed back. Blocks until `fn` returns.
absl::Status RunInNetns(const NamespaceHandle& netns, const std::function<absl::Status()>& fn);

}  // namespace mesh
