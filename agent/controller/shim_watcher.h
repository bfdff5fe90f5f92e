#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"

namespace mesh::agent {

// Notices shims ending: one thread and one epoll set over every shim's pidfd, so watching 1000
// containers costs one thread, not 1000. `on_exit` runs on that thread: it must be quick (hand
// the work to a Scheduler).
class ShimWatcher {
 public:
  explicit ShimWatcher(std::function<void(const std::string& name)> on_exit);
  ~ShimWatcher();
  ShimWatcher(const ShimWatcher&) = delete;
  ShimWatcher& operator=(const ShimWatcher&) = delete;

  // Watches `pidfd` (a pidfd of the shim of `name`), replacing an earlier watch of `name`.
  void Add(const std::string& name, UniqueFd pidfd);
  void Remove(const std::string& name);

 private:
  void Run();

  const std::function<void(const std::string&)> on_exit_;
  UniqueFd epoll_;
  UniqueFd stop_;  // eventfd
  absl::Mutex mu_;
  struct Watch {
    uint64_t id;
    UniqueFd pidfd;
  };
  std::map<std::string, Watch> watches_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> names_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::thread thread_;
};

}  // namespace mesh::agent
