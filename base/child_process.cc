#include "base/child_process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errno_status.h"

// glibc 2.36 (Debian 12) declares pidfd_open/pidfd_send_signal without C linkage (fixed in
// 2.37), so C++ would look for mangled names.
extern "C" {
#include <sys/pidfd.h>
}

extern char** environ;

namespace mesh {
namespace {

ExitStatus FromWaitStatus(int wstatus) {
  ExitStatus s;
  if (WIFEXITED(wstatus)) s.code = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) s.signal = WTERMSIG(wstatus);
  return s;
}

// Builds a NULL-terminated pointer array over `strings` (which must outlive it).
std::vector<char*> CArray(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Child side of Spawn: async-signal-safe calls only. Reports errno through `report_fd`
// (close-on-exec, so a successful exec closes it with nothing written).
[[noreturn]] void ExecChild(const SpawnOptions& o, int devnull, int report_fd, char* const* argv,
                            char* const* envp) {
  auto fail = [report_fd](int step) {
    int payload[2] = {step, errno};
    (void)!::write(report_fd, payload, sizeof(payload));
    ::_exit(127);
  };
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (o.new_session && ::setsid() < 0) fail(1);
  if (o.mntns_fd >= 0 && ::setns(o.mntns_fd, CLONE_NEWNS) != 0) fail(2);
  if (o.netns_fd >= 0 && ::setns(o.netns_fd, CLONE_NEWNET) != 0) fail(3);
  int fds[4] = {o.stdin_fd >= 0 ? o.stdin_fd : devnull, o.stdout_fd >= 0 ? o.stdout_fd : devnull,
                o.stderr_fd >= 0 ? o.stderr_fd : devnull, o.fd3};
  const int count = o.fd3 >= 0 ? 4 : 3;
  // dup every source below `count` out of the way first, so that dup2 onto 0..count-1 cannot
  // clobber a later source.
  for (int i = 0; i < count; ++i) {
    if (fds[i] < count) {
      fds[i] = ::fcntl(fds[i], F_DUPFD_CLOEXEC, count);
      if (fds[i] < 0) fail(4);
    }
  }
  for (int i = 0; i < count; ++i) {
    if (::dup2(fds[i], i) < 0) fail(4);
  }
  // Only these may reach the new program, whatever some library opened without CLOEXEC.
  if (::close_range(static_cast<unsigned>(count), ~0U, CLOSE_RANGE_CLOEXEC) != 0) fail(4);
  ::execvpe(argv[0], argv, envp);
  fail(5);
  ::_exit(127);
}

const char* StepName(int step) {
  switch (step) {
    case 1:
      return "setsid";
    case 2:
      return "enter mount namespace";
    case 3:
      return "enter network namespace";
    case 4:
      return "set up stdio";
    default:
      return "exec";
  }
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (signal != 0) {
    const char* name = sigabbrev_np(signal);
    return name != nullptr ? absl::StrCat("killed by signal SIG", name)
                           : absl::StrCat("killed by signal ", signal);
  }
  return absl::StrCat("exited with code ", code);
}

absl::StatusOr<ChildProcess> ChildProcess::Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("spawn: empty command line");
  const std::string what = absl::StrCat("run \"", absl::StrJoin(options.argv, " "), "\"");

  std::vector<char*> argv = CArray(options.argv);
  std::vector<char*> envp = options.env ? CArray(*options.env) : std::vector<char*>{};
  char* const* env_ptr = options.env ? envp.data() : environ;

  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) return ErrnoToStatus(errno, absl::StrCat(what, ": open /dev/null"));
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return ErrnoToStatus(errno, absl::StrCat(what, ": pipe"));
  UniqueFd report_read(report[0]), report_write(report[1]);

  pid_t pid = ::fork();
  if (pid < 0) return ErrnoToStatus(errno, absl::StrCat(what, ": fork"));
  if (pid == 0) ExecChild(options, devnull.get(), report_write.get(), argv.data(), env_ptr);

  report_write.Reset();
  // We are the parent and have not reaped the child, so its PID cannot be reused yet.
  UniqueFd pidfd(::pidfd_open(pid, 0));
  int saved_errno = errno;
  ChildProcess child(pid, std::move(pidfd));
  if (!child.pidfd_) {
    return ErrnoToStatus(saved_errno, absl::StrCat(what, ": pidfd_open"));  // ~child reaps.
  }

  int payload[2];
  ssize_t n;
  do {
    n = ::read(report_read.get(), payload, sizeof(payload));
  } while (n < 0 && errno == EINTR);
  if (n == sizeof(payload)) {
    child.Wait().IgnoreError();  // It already called _exit; reap it.
    return ErrnoToStatus(payload[1], absl::StrCat(what, ": ", StepName(payload[0])));
  }
  return child;
}

ChildProcess::~ChildProcess() { KillAndReap(); }

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      exit_(std::exchange(other.exit_, std::nullopt)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    KillAndReap();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    exit_ = std::exchange(other.exit_, std::nullopt);
  }
  return *this;
}

void ChildProcess::KillAndReap() {
  if (!running()) return;
  // Best effort in a destructor: nothing to report to, and the process is ours.
  Signal(SIGKILL).IgnoreError();
  Wait().IgnoreError();
}

absl::Status ChildProcess::Signal(int signal) {
  if (!running()) return absl::OkStatus();
  if (::pidfd_send_signal(pidfd_.get(), signal, nullptr, 0) != 0 && errno != ESRCH) {
    return ErrnoToStatus(errno, absl::StrCat("signal process ", pid_));
  }
  return absl::OkStatus();
}

absl::StatusOr<ExitStatus> ChildProcess::Wait(absl::Duration timeout) {
  if (exit_) return *exit_;
  if (pid_ <= 0) return absl::FailedPreconditionError("wait: no process");
  if (timeout != absl::InfiniteDuration()) {
    absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      int ms = static_cast<int>(
          absl::ToInt64Milliseconds(std::max(deadline - absl::Now(), absl::ZeroDuration())));
      pollfd pfd{pidfd_.get(), POLLIN, 0};
      int r = ::poll(&pfd, 1, ms);
      if (r > 0) break;
      if (r < 0 && errno != EINTR) return ErrnoToStatus(errno, "poll pidfd");
      if (r == 0) {
        return absl::DeadlineExceededError(
            absl::StrCat("process ", pid_, " still runs after ", absl::FormatDuration(timeout)));
      }
    }
  }
  int wstatus = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &wstatus, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return ErrnoToStatus(errno, absl::StrCat("wait for process ", pid_));
  exit_ = FromWaitStatus(wstatus);
  pidfd_.Reset();
  return *exit_;
}

absl::StatusOr<ExitStatus> ChildProcess::Stop(absl::Duration grace) {
  if (absl::Status s = Signal(SIGTERM); !s.ok()) return s;
  absl::StatusOr<ExitStatus> status = Wait(grace);
  if (status.ok() || !absl::IsDeadlineExceeded(status.status())) return status;
  if (absl::Status s = Signal(SIGKILL); !s.ok()) return s;
  return Wait();
}

absl::StatusOr<CommandResult> RunCommand(const SpawnOptions& options, absl::Duration timeout) {
  const std::string what = absl::StrCat("run \"", absl::StrJoin(options.argv, " "), "\"");
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoToStatus(errno, what + ": pipe");
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return ErrnoToStatus(errno, what + ": pipe");
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);

  SpawnOptions o = options;
  o.stdin_fd = -1;
  o.stdout_fd = out_w.get();
  o.stderr_fd = err_w.get();
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(o);
  if (!child.ok()) return child.status();
  out_w.Reset();
  err_w.Reset();

  CommandResult result;
  absl::Time deadline = absl::Now() + timeout;
  pollfd pfds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_count = 2;
  while (open_count > 0) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": still running after ", absl::FormatDuration(timeout)));
      // ~ChildProcess kills and reaps it.
    }
    int r = ::poll(pfds, 2, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, what + ": poll");
    }
    for (int i = 0; i < 2; ++i) {
      if (pfds[i].fd < 0 || pfds[i].revents == 0) continue;
      char buf[8192];
      ssize_t n = ::read(pfds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        pfds[i].fd = -1;
        --open_count;
      }
    }
  }
  // Output closed; the process may still run (it could have closed its stdio).
  absl::StatusOr<ExitStatus> status =
      child->Wait(std::max(deadline - absl::Now(), absl::ZeroDuration()));
  if (!status.ok()) return Annotate(status.status(), what);
  result.status = *status;
  return result;
}

}  // namespace mesh
