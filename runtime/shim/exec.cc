#include "runtime/shim/exec.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "runtime/container/cgroup_access.h"
#include "runtime/container/state.h"
#include "runtime/security/process_security.h"
#include "runtime/shim/process_util.h"

namespace mesh::runtime {

namespace shim {
namespace {

// Best effort: the caller's terminal or pipe may be gone.
void WriteAll(int fd, const char* data, size_t size) {
  mesh::WriteAll(fd, absl::string_view(data, size), "stdio").IgnoreError();
}

int Fail(int code, const absl::Status& status) {
  std::string text = absl::StrCat("mesh exec: ", status.message(), "\n");
  WriteAll(2, text.data(), text.size());
  return code;
}

// Copies between the caller's stdio and the pty master until the process is gone and the pty
// is drained; applies the sizes that come on `resize_fd` (-1: none).
void Relay(int master, int child_pidfd, int resize_fd) {
  bool stdin_open = true;
  char buf[16384];
  for (;;) {
    pollfd fds[4] = {{master, POLLIN, 0},
                     {stdin_open ? 0 : -1, POLLIN, 0},
                     {child_pidfd, POLLIN, 0},
                     {resize_fd, POLLIN, 0}};
    if (poll(fds, 4, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[3].revents) {
      TerminalSize size;
      if (read(resize_fd, &size, sizeof(size)) == sizeof(size)) {
        winsize ws{};
        ws.ws_row = size.rows;
        ws.ws_col = size.cols;
        ioctl(master, TIOCSWINSZ, &ws);  // the foreground process group gets SIGWINCH
      } else {
        resize_fd = -1;  // closed (or a torn record): no more resizes
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(master, buf, sizeof(buf));
      if (n <= 0) return;  // EIO: the last holder of the pty's other end is gone
      WriteAll(1, buf, static_cast<size_t>(n));
    }
    if (fds[1].revents) {
      ssize_t n = read(0, buf, sizeof(buf));
      if (n <= 0) {
        stdin_open = false;
        const char eot = 4;  // ^D: end of input for the process on the terminal
        WriteAll(master, &eot, 1);
      } else {
        WriteAll(master, buf, static_cast<size_t>(n));
      }
    }
    if (fds[2].revents && !(fds[0].revents & POLLIN)) {
      // The process is gone; take what it left in the pty, then stop.
      int flags = fcntl(master, F_GETFL);
      fcntl(master, F_SETFL, flags | O_NONBLOCK);
      for (ssize_t n; (n = read(master, buf, sizeof(buf))) > 0;) {
        WriteAll(1, buf, static_cast<size_t>(n));
      }
      return;
    }
  }
}

}  // namespace

int ExecMain(const std::string& run_dir, const std::string& exec_json, int resize_fd) {
  signal(SIGPIPE, SIG_IGN);
  // Never inherited by what runs in the container (it closes all but 0-2 anyway).
  if (resize_fd >= 0 && fcntl(resize_fd, F_SETFD, FD_CLOEXEC) != 0) resize_fd = -1;
  absl::StatusOr<std::string> config_text = ReadFile(run_dir + "/config.json");
  if (!config_text.ok()) return Fail(126, config_text.status());
  auto config_json = nlohmann::json::parse(*config_text, nullptr, false);
  absl::StatusOr<ShimConfig> config = ShimConfigFromJson(config_json);
  if (!config.ok()) return Fail(126, config.status());
  absl::StatusOr<std::string> exec_text = ReadFile(exec_json);
  if (!exec_text.ok()) return Fail(126, exec_text.status());
  absl::StatusOr<ExecSpec> exec =
      ExecSpecFromJson(nlohmann::json::parse(*exec_text, nullptr, false));
  if (!exec.ok()) return Fail(126, exec.status());
  if (exec->args.empty()) return Fail(126, absl::InvalidArgumentError("no command"));
  absl::StatusOr<ContainerState> state = ReadState(config->paths);
  if (!state.ok()) return Fail(126, state.status());
  if (state->status != Status::kRunning) {
    return Fail(126, absl::FailedPreconditionError(absl::StrCat("container \"", state->id, "\" is ",
                                                                StatusName(state->status))));
  }
  absl::StatusOr<UniqueFd> init = state->init.Open();
  if (!init.ok()) return Fail(126, init.status());

  // The process: the container's, with exec's overrides.
  ContainerSpec spec = config->spec;
  spec.process.args = exec->args;
  if (!exec->env.empty()) spec.process.env = exec->env;
  if (!exec->cwd.empty()) spec.process.cwd = exec->cwd;
  if (exec->user) spec.process.user = *exec->user;
  spec.process.terminal = exec->terminal;
  absl::StatusOr<security::PreparedSecurity> prepared =
      security::Prepare(spec.process, spec.seccomp, spec.privileged);
  if (!prepared.ok()) return Fail(126, prepared.status());

  // Nothing of this helper may be reachable from inside once it is there (CVE-2019-5736):
  // non-dumpable, so /proc/PID/exe and /proc/PID/fd refuse the container's processes.
  security::MakeNonDumpable().IgnoreError();
  {
    absl::StatusOr<std::unique_ptr<CgroupDriver>> driver = HostCgroupDriver(config->cgroup_parent);
    if (!driver.ok()) return Fail(126, driver.status());
    absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = (*driver)->Open(spec.id);
    if (!cgroup.ok()) return Fail(126, cgroup.status());
    if (absl::Status s = (*cgroup)->AddProcess(getpid()); !s.ok()) return Fail(126, s);
  }
  // With a user namespace it is joined first: setns on a pidfd with CLONE_NEWUSER among the
  // flags switches the credentials to that namespace before it enters the others (which
  // belong to it), all or nothing.
  const bool userns = HasUserNamespace(spec);
  if (setns(init->get(), (userns ? CLONE_NEWUSER : 0) | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
                             CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP) != 0) {
    return Fail(126, mesh::ErrnoToStatus(errno, "join the container's namespaces"));
  }
  if (userns && (syscall(SYS_setresgid, 0, 0, 0) != 0 || syscall(SYS_setgroups, 0, nullptr) != 0 ||
                 syscall(SYS_setresuid, 0, 0, 0) != 0)) {
    // Root of the container's namespace (as its init is), until ApplyInChild sets the user.
    return Fail(126, mesh::ErrnoToStatus(errno, "become root in the container's user namespace"));
  }

  UniqueFd master, slave;
  if (exec->terminal) {
    // The container's own devpts (we are in its mount namespace and root now).
    master = UniqueFd(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
    int unlock = 0;
    if (!master.valid() || ioctl(master.get(), TIOCSPTLCK, &unlock) != 0) {
      return Fail(126, mesh::ErrnoToStatus(errno, "open a pty in the container"));
    }
    // TIOCGPTPEER opens the other end without a path lookup.
    slave = UniqueFd(ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!slave.valid()) return Fail(126, mesh::ErrnoToStatus(errno, "open the pty's peer"));
    winsize ws{};
    ws.ws_row = exec->rows;
    ws.ws_col = exec->cols;
    ioctl(master.get(), TIOCSWINSZ, &ws);
  }
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return Fail(126, mesh::ErrnoToStatus(errno, "pipe"));
  int pidfd = -1;
  const pid_t pid = CloneWithPidfd(0, &pidfd);
  if (pid < 0) return Fail(126, mesh::ErrnoToStatus(errno, "fork into the container"));
  if (pid == 0) {
    close(report[0]);
    auto fail = [&](const absl::Status& s) {
      std::string text(s.message());
      WriteAll(report[1], text.data(), text.size());
      _exit(127);
    };
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setsid();
    if (slave.valid()) {
      if (ioctl(slave.get(), TIOCSCTTY, 0) != 0 || dup2(slave.get(), 0) < 0 ||
          dup2(slave.get(), 1) < 0 || dup2(slave.get(), 2) < 0) {
        fail(mesh::ErrnoToStatus(errno, "set up the terminal"));
      }
    }
    if (chdir(spec.process.cwd.c_str()) != 0) {
      fail(
          mesh::ErrnoToStatus(errno, absl::StrCat("working directory \"", spec.process.cwd, "\"")));
    }
    if (absl::Status s = security::CloseFdsExcept0to2({report[1]}); !s.ok()) fail(s);
    if (absl::Status s = prepared->ApplyInChild(); !s.ok()) fail(s);
    Exec(spec.process.args, spec.process.env);
    fail(mesh::ErrnoToStatus(errno, absl::StrCat("exec \"", spec.process.args[0], "\"")));
  }
  UniqueFd child_pidfd(pidfd);
  close(report[1]);
  slave.Reset();
  std::string error;
  char buf[1024];
  for (ssize_t n; (n = read(report[0], buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    error.append(buf, static_cast<size_t>(n));
  }
  close(report[0]);
  if (master.valid() && error.empty()) Relay(master.get(), child_pidfd.get(), resize_fd);
  siginfo_t info{};
  while (waitid(P_PIDFD, static_cast<id_t>(child_pidfd.get()), &info, WEXITED) != 0 &&
         errno == EINTR) {
  }
  if (!error.empty())
    return Fail(absl::StrContains(error, "No such file") ? 127 : 126,
                absl::FailedPreconditionError(error));
  if (info.si_code == CLD_EXITED) return info.si_status;
  signal(info.si_status, SIG_DFL);
  raise(info.si_status);
  return 128 + info.si_status;
}

}  // namespace shim
}  // namespace mesh::runtime
