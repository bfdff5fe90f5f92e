#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace mesh {

// How a process ended: exited with a code, or killed by a signal.
struct ExitStatus {
  int code = 0;    // exit code when signal == 0
  int signal = 0;  // terminating signal, 0 if it exited
  bool ok() const { return code == 0 && signal == 0; }
  std::string ToString() const;  // "exited with code 3", "killed by signal SIGKILL"
};

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is looked up in $PATH when it has no '/'
  // Replaces the environment when set; otherwise the child inherits ours.
  std::optional<std::vector<std::string>> env;
  // Network namespace to run in (an fd to /proc/PID/ns/net or /run/netns/NAME), borrowed;
  // -1 runs in ours. The switch happens in the forked child, never in the calling thread.
  int netns_fd = -1;
  // Mount namespace to run in, borrowed; -1 keeps ours.
  int mntns_fd = -1;
  // Where the child's stdin/stdout/stderr go; -1 means /dev/null. Borrowed.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  // Becomes fd 3 in the child when >= 0 (borrowed), for a channel besides stdio; else only
  // 0, 1 and 2 reach it.
  int fd3 = -1;
  // Starts a new session (setsid) so a terminal's signals do not reach the child.
  bool new_session = false;
};

// A child process we started, owned like any other kernel resource (STYLE.md rule 2): the
// destructor SIGKILLs it if it still runs and reaps it. Signals go through a pidfd, so they can
// never hit a recycled PID. Move-only.
class ChildProcess {
 public:
  // fork+exec. Only async-signal-safe calls run between fork and exec, so this is safe from a
  // multi-threaded process. Fails (and leaves no child) if the program cannot be executed.
  static absl::StatusOr<ChildProcess> Spawn(const SpawnOptions& options);

  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !exit_.has_value(); }

  // Sends `signal`. Succeeds if the process already exited (there is nothing left to signal).
  absl::Status Signal(int signal);
  // Waits for the process to end. DeadlineExceeded if it still runs after `timeout`
  // (absl::InfiniteDuration() waits forever). Returns the same status again once reaped.
  absl::StatusOr<ExitStatus> Wait(absl::Duration timeout = absl::InfiniteDuration());
  // SIGTERM, wait up to `grace`, then SIGKILL and reap.
  absl::StatusOr<ExitStatus> Stop(absl::Duration grace);

 private:
  ChildProcess(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  void KillAndReap();

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  std::optional<ExitStatus> exit_;
};

struct CommandResult {
  ExitStatus status;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs a command to completion, capturing stdout and stderr (stdio fields of `options` are
// ignored; stdin is /dev/null). Killed and DeadlineExceeded after `timeout`. A non-zero exit is
// not an error here: look at result.status.
absl::StatusOr<CommandResult> RunCommand(const SpawnOptions& options,
                                         absl::Duration timeout = absl::Seconds(30));

}  // namespace mesh
