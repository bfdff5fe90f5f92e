#include "agent/controller/scheduler.h"

namespace mesh::agent {

Scheduler::Scheduler() : thread_([this] { Run(); }) {}

Scheduler::~Scheduler() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void Scheduler::Post(std::function<void()> task, absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  tasks_.emplace(absl::Now() + delay, std::move(task));
}

void Scheduler::Run() {
  absl::MutexLock lock(&mu_);
  while (true) {
    auto due = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_ || (!tasks_.empty() && tasks_.begin()->first <= absl::Now());
    };
    const absl::Time next = tasks_.empty() ? absl::InfiniteFuture() : tasks_.begin()->first;
    // Wakes for a new task (Post changes tasks_) or when the first one is due.
    mu_.AwaitWithDeadline(absl::Condition(&due), std::min(next, absl::Now() + absl::Seconds(1)));
    if (stop_) return;
    if (tasks_.empty() || tasks_.begin()->first > absl::Now()) continue;
    std::function<void()> task = std::move(tasks_.begin()->second);
    tasks_.erase(tasks_.begin());
    mu_.Unlock();
    task();
    mu_.Lock();
  }
}

}  // namespace mesh::agent
