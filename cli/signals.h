#pragma once

// Ctrl-C (SIGINT) and SIGTERM while a command streams: instead of dying, meshctl runs
// `on_signal` (cancel a stream, pass the signal on to a container) on a thread of its own. The
// handler only writes the signal number to a pipe (async-signal-safe); the thread does the rest.
// The old dispositions come back when the object goes.

#include <atomic>
#include <csignal>
#include <functional>
#include <thread>

namespace mesh::cli {

class OnInterrupt {
 public:
  explicit OnInterrupt(std::function<void(int signal)> on_signal);
  ~OnInterrupt();
  OnInterrupt(const OnInterrupt&) = delete;
  OnInterrupt& operator=(const OnInterrupt&) = delete;

  // The last signal that came (0: none).
  int signal() const { return signal_; }

 private:
  std::function<void(int)> on_signal_;
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
  std::thread thread_;
  std::atomic<int> signal_{0};
};

}  // namespace mesh::cli
