#include "cli/signals.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

namespace mesh::cli {
namespace {

// One OnInterrupt at a time per process (a command has one stream to guard).
int signal_pipe[2] = {-1, -1};

void Handler(int signal) {
  const int saved = errno;
  const char byte = static_cast<char>(signal);
  (void)!write(signal_pipe[1], &byte, 1);
  errno = saved;
}

}  // namespace

OnInterrupt::OnInterrupt(std::function<void(int)> on_signal) : on_signal_(std::move(on_signal)) {
  if (pipe2(signal_pipe, O_CLOEXEC) != 0) return;
  struct sigaction action {};
  action.sa_handler = Handler;
  action.sa_flags = SA_RESTART;  // the main thread's reads and writes go on
  sigaction(SIGINT, &action, &old_int_);
  sigaction(SIGTERM, &action, &old_term_);
  thread_ = std::thread([this] {
    char byte = 0;
    while (read(signal_pipe[0], &byte, 1) == 1 && byte != 0) {
      signal_ = byte;
      on_signal_(byte);
    }
  });
}

OnInterrupt::~OnInterrupt() {
  if (!thread_.joinable()) return;
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
  const char stop = 0;  // ends the thread
  (void)!write(signal_pipe[1], &stop, 1);
  thread_.join();
  close(signal_pipe[0]);
  close(signal_pipe[1]);
  signal_pipe[0] = signal_pipe[1] = -1;
}

}  // namespace mesh::cli
