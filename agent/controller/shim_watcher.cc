#include "agent/controller/shim_watcher.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "base/log.h"

namespace mesh::agent {

ShimWatcher::ShimWatcher(std::function<void(const std::string&)> on_exit)
    : on_exit_(std::move(on_exit)),
      epoll_(epoll_create1(EPOLL_CLOEXEC)),
      stop_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = 0;  // the stop eventfd
  if (!epoll_.valid() || !stop_.valid() ||
      epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, stop_.get(), &event) != 0) {
    MESH_LOG(Error) << "shim watcher: cannot set up epoll (errno " << errno
                    << "); container exits will be noticed only when asked for";
    return;
  }
  thread_ = std::thread([this] { Run(); });
}

ShimWatcher::~ShimWatcher() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    if (write(stop_.get(), &one, sizeof(one)) < 0) {
      MESH_LOG(Error) << "shim watcher: cannot wake its thread to stop";
    }
    thread_.join();
  }
}

void ShimWatcher::Add(const std::string& name, UniqueFd pidfd) {
  Remove(name);
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = id;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, pidfd.get(), &event) != 0) {
    MESH_LOG(Error) << "shim watcher: cannot watch the shim of \"" << name << "\" (errno " << errno
                    << ")";
    return;
  }
  names_[id] = name;
  watches_[name] = Watch{id, std::move(pidfd)};
}

void ShimWatcher::Remove(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = watches_.find(name);
  if (it == watches_.end()) return;
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.pidfd.get(), nullptr);
  names_.erase(it->second.id);
  watches_.erase(it);
}

void ShimWatcher::Run() {
  epoll_event events[64];
  while (true) {
    const int n = epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      MESH_LOG(Error) << "shim watcher: epoll_wait failed (errno " << errno << "); stopped";
      return;
    }
    std::vector<std::string> ended;
    {
      absl::MutexLock lock(&mu_);
      for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 == 0) return;  // stop
        auto id = names_.find(events[i].data.u64);
        if (id == names_.end()) continue;  // removed meanwhile
        auto watch = watches_.find(id->second);
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, watch->second.pidfd.get(), nullptr);
        ended.push_back(id->second);
        watches_.erase(watch);
        names_.erase(id);
      }
    }
    for (const std::string& name : ended) on_exit_(name);
  }
}

}  // namespace mesh::agent
