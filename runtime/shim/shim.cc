#include "runtime/shim/shim.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/atomic_file.h"
#include "base/errno_status.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "nlohmann/json.hpp"
#include "runtime/container/cgroup_access.h"
#include "runtime/container/state.h"
#include "runtime/rootfs/mounts.h"
#include "runtime/rootfs/rootfs.h"
#include "runtime/security/process_security.h"
#include "runtime/shim/log_writer.h"
#include "runtime/shim/process_util.h"
#include "runtime/spec/sysctl.h"

namespace mesh::runtime::shim {
namespace {

struct Pipe {
  UniqueFd read;
  UniqueFd write;
  static absl::StatusOr<Pipe> Make(int flags = O_CLOEXEC) {
    int fds[2];
    if (pipe2(fds, flags) != 0) return mesh::ErrnoToStatus(errno, "pipe");
    return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
  }
};

// Best effort: the other end reads what arrived, or sees the pipe close.
void WriteAllBestEffort(int fd, absl::string_view data) {
  WriteAll(fd, data, "pipe").IgnoreError();
}

// Reads until EOF; what the other end wrote.
std::string ReadToEnd(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

bool ReadByte(int fd, char expected) {
  char b = 0;
  for (;;) {
    ssize_t n = read(fd, &b, 1);
    if (n < 0 && errno == EINTR) continue;
    return n == 1 && b == expected;
  }
}

int NamespaceFlag(NamespaceType type) {
  switch (type) {
    case NamespaceType::kPid:
      return CLONE_NEWPID;
    case NamespaceType::kMount:
      return CLONE_NEWNS;
    case NamespaceType::kNetwork:
      return CLONE_NEWNET;
    case NamespaceType::kUts:
      return CLONE_NEWUTS;
    case NamespaceType::kIpc:
      return CLONE_NEWIPC;
    case NamespaceType::kCgroup:
      return CLONE_NEWCGROUP;
    case NamespaceType::kUser:
      return CLONE_NEWUSER;
  }
  return 0;
}

// PID 1 when spec.init: reaps every zombie and forwards signals to the command (`child`),
// exits as the command did.
[[noreturn]] void InitLoop(pid_t child) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, nullptr);
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      kill(child, sig);
      continue;
    }
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      if (pid != child) continue;
      // The command is gone: PID 1 leaving takes the rest of the namespace with it.
      _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
  }
}

struct ChildFds {
  int sync_read;  // shim -> child: 'c' (cgroup and ids set up), then 's' (start)
  int report;     // child -> shim: 'r' once set up; "E<message>" on failure; EOF at exec
  int stdin_fd;
  int stdout_fd;
  int stderr_fd;
  // With a terminal or a user namespace, else -1. A socket (SCM_RIGHTS): with a user
  // namespace the shim sends the idmapped mounts right after 'c'; with a terminal the child
  // sends the pty master before 'r'.
  int socket;
};

// Sends `fd` over the unix socket `sock`; -1 sends a message without an fd ("none").
bool SendFd(int sock, int fd) {
  char byte = fd >= 0 ? 't' : 'n';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  }
  return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1;
}

// Receives one message of SendFd: true with *fd the fd (close-on-exec), or -1 for "none";
// false if the socket failed or closed. Async-signal-safe (the child uses it).
bool ReceiveFdOrNone(int sock, int* fd) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n != 1) return false;
  *fd = -1;
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (cmsg != nullptr && cmsg->cmsg_type == SCM_RIGHTS) {
    std::memcpy(fd, CMSG_DATA(cmsg), sizeof(int));
  }
  return byte == 'n' || *fd >= 0;
}

// Receives an fd sent with SendFd; invalid on failure.
UniqueFd ReceiveFd(int sock) {
  int fd = -1;
  if (!ReceiveFdOrNone(sock, &fd)) return UniqueFd();
  return UniqueFd(fd);
}

// The order in which the idmapped mounts travel from the shim to the child.
std::vector<int*> ReadySlots(rootfs::ReadyMounts& ready) {
  std::vector<int*> slots = {&ready.mountpoint, &ready.rootfs, &ready.etc[0], &ready.etc[1],
                             &ready.etc[2]};
  for (int& b : ready.binds) slots.push_back(&b);
  return slots;
}

const char* NamespaceProcName(NamespaceType type) {
  switch (type) {
    case NamespaceType::kNetwork:
      return "net";
    case NamespaceType::kIpc:
      return "ipc";
    case NamespaceType::kUts:
      return "uts";
    default:
      return nullptr;  // joining by path is refused for the others (ValidateSpec)
  }
}

// Writes `mappings` to /proc/<pid>/<file> ("uid_map", "gid_map") in the one write the kernel
// allows. The shim has CAP_SETUID/CAP_SETGID in the parent (initial) user namespace, so any
// mapping is accepted and setgroups stays allowed in the container.
absl::Status WriteIdMap(pid_t pid, const char* file, const std::vector<IdMapping>& mappings) {
  const std::string path = absl::StrCat("/proc/", pid, "/", file);
  const std::string text = IdMapText(mappings);
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return mesh::ErrnoToStatus(errno, absl::StrCat("open ", path));
  ssize_t n = write(fd.get(), text.data(), text.size());
  if (n != static_cast<ssize_t>(text.size())) {
    return mesh::ErrnoToStatus(n < 0 ? errno : EIO, absl::StrCat("write ", path));
  }
  return absl::OkStatus();
}

// In the container, after pivot_root and setsid: a pty of the container's own devpts becomes
// the controlling terminal and stdio, its peer is bound over /dev/console, and the master goes
// to the shim.
absl::Status SetUpConsole(int console_socket) {
  UniqueFd master(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  int unlock = 0;
  if (!master.valid() || ioctl(master.get(), TIOCSPTLCK, &unlock) != 0) {
    return mesh::ErrnoToStatus(errno, "open a pty for the console");
  }
  // TIOCGPTPEER opens the peer without a path lookup.
  UniqueFd peer(ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!peer.valid()) return mesh::ErrnoToStatus(errno, "open the console's peer");
  UniqueFd console(open("/dev/console", O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!console.valid()) return mesh::ErrnoToStatus(errno, "open /dev/console");
  MESH_ASSIGN_OR_RETURN(UniqueFd tree, rootfs::CloneMount(peer.get(), "", false));
  MESH_RETURN_IF_ERROR(rootfs::MoveMount(tree.get(), console.get(), "/dev/console"));
  if (!SendFd(console_socket, master.get())) {
    return mesh::ErrnoToStatus(errno, "hand the console to the shim");
  }
  if (ioctl(peer.get(), TIOCSCTTY, 0) != 0 || dup2(peer.get(), 0) < 0 || dup2(peer.get(), 1) < 0 ||
      dup2(peer.get(), 2) < 0) {
    return mesh::ErrnoToStatus(errno, "make the console the controlling terminal");
  }
  return absl::OkStatus();
}

// The container's first process, from clone to execve. Never returns.
[[noreturn]] void ContainerChild(const ShimConfig& config, const rootfs::RootfsPlan& plan,
                                 const security::PreparedSecurity& prepared, const ChildFds& fds,
                                 std::vector<int*>& ready_slots, const rootfs::ReadyMounts& ready) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // the supervisor gone: nobody would record us
  // Until it execs, this process runs the shim's code inside the container: nothing of it may
  // be reachable from there (/proc/PID/exe, /proc/PID/fd: CVE-2019-5736).
  security::MakeNonDumpable().IgnoreError();
  // Only what the child needs stays open: stdio on 0-2, the sync pipe on 3, the report pipe
  // on 4 (both close-on-exec). Anything else of the shim's (its report pipe to the runtime,
  // the log) must not be held by the container.
  // With a terminal or a user namespace, the socket on 5.
  constexpr int kSync = 3, kReport = 4, kSocket = 5;
  const int sync_high = fcntl(fds.sync_read, F_DUPFD_CLOEXEC, 1000);
  const int report_high = fcntl(fds.report, F_DUPFD_CLOEXEC, 1000);
  const int socket_high = fds.socket >= 0 ? fcntl(fds.socket, F_DUPFD_CLOEXEC, 1000) : -1;
  if (sync_high < 0 || report_high < 0 || dup2(fds.stdin_fd, 0) < 0 || dup2(fds.stdout_fd, 1) < 0 ||
      dup2(fds.stderr_fd, 2) < 0 || dup3(sync_high, kSync, O_CLOEXEC) < 0 ||
      dup3(report_high, kReport, O_CLOEXEC) < 0 ||
      (socket_high >= 0 && dup3(socket_high, kSocket, O_CLOEXEC) < 0)) {
    _exit(126);
  }
  syscall(SYS_close_range, (socket_high >= 0 ? kSocket : kReport) + 1, ~0U, 0);
  auto fail = [&](const absl::Status& status) {
    WriteAllBestEffort(kReport, absl::StrCat("E", status.message()));
    _exit(127);
  };
  if (!ReadByte(kSync, 'c')) _exit(1);
  const ContainerSpec& spec = config.spec;
  if (plan.user_namespace) {
    // The shim has written our uid and gid maps: become the namespace's root (host
    // root_uid/root_gid), without the host's supplementary groups. The raw calls, as glibc's
    // would try to change every thread.
    if (syscall(SYS_setresgid, 0, 0, 0) != 0 || syscall(SYS_setgroups, 0, nullptr) != 0 ||
        syscall(SYS_setresuid, 0, 0, 0) != 0) {
      fail(mesh::ErrnoToStatus(errno, "become root in the container's user namespace"));
    }
    // A change of ids clears the parent-death signal (commit_creds): set it again.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The idmapped rootfs, /etc files and binds the shim made for us, in ReadySlots order.
    for (int* slot : ready_slots) {
      if (!ReceiveFdOrNone(kSocket, slot)) {
        fail(mesh::ErrnoToStatus(errno, "receive the idmapped mounts from the shim"));
      }
    }
  }
  // Joined namespaces first (a shared network namespace, like a pod), then our own cgroup
  // namespace, rooted at the cgroup the shim has just put us in. With a user namespace the
  // shim joined them for us before the clone (they belong to the initial user namespace,
  // where this process has no capability).
  for (const NamespaceSpec& ns : spec.namespaces) {
    if (ns.path.empty() || plan.user_namespace) continue;
    UniqueFd fd(open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid() || setns(fd.get(), NamespaceFlag(ns.type)) != 0) {
      fail(mesh::ErrnoToStatus(errno, absl::StrCat("join namespace \"", ns.path, "\"")));
    }
  }
  for (const NamespaceSpec& ns : spec.namespaces) {
    if (ns.type == NamespaceType::kCgroup && ns.path.empty() && unshare(CLONE_NEWCGROUP) != 0) {
      fail(mesh::ErrnoToStatus(errno, "new cgroup namespace"));
    }
  }
  // A joined uts namespace keeps its hostname (it is the pod's, as with Docker's
  // --uts=container:X); only our own gets the container's.
  const bool own_uts =
      std::any_of(spec.namespaces.begin(), spec.namespaces.end(),
                  [](const auto& ns) { return ns.type == NamespaceType::kUts && ns.path.empty(); });
  if (own_uts && sethostname(spec.hostname.data(), spec.hostname.size()) != 0) {
    fail(mesh::ErrnoToStatus(errno, "set the hostname"));
  }
  // Sysctls of our own namespaces, through the host's /proc while it is still there: a
  // /proc/sys file belongs to the namespace of whoever opens it, and we are in ours now.
  for (const auto& [name, value] : spec.sysctls) {
    UniqueFd file(open(SysctlPath(name).c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!file.valid() || write(file.get(), value.data(), value.size()) < 0) {
      fail(mesh::ErrnoToStatus(errno, absl::StrCat("sysctl ", name, "=", value)));
    }
  }
  if (absl::Status s = rootfs::MountRootfs(plan, plan.user_namespace ? &ready : nullptr); !s.ok()) {
    fail(s);
  }
  if (absl::Status s = plan.user_namespace ? rootfs::PivotRootAt(ready.rootfs, plan.rootfs)
                                           : rootfs::PivotRoot(plan.rootfs);
      !s.ok()) {
    fail(s);
  }
  if (setsid() < 0) fail(mesh::ErrnoToStatus(errno, "setsid"));
  if (spec.process.terminal) {
    if (absl::Status s = SetUpConsole(kSocket); !s.ok()) fail(s);
  }
  if (socket_high >= 0) close(kSocket);
  WriteAllBestEffort(kReport, "r");
  if (!ReadByte(kSync, 's')) _exit(1);

  if (spec.process.oom_score_adj) {
    std::string value = absl::StrCat(*spec.process.oom_score_adj);
    if (absl::Status s = WriteFileAtomically("/proc/self/oom_score_adj", value, 0644); !s.ok()) {
      UniqueFd f(open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC));
      if (!f.valid() || write(f.get(), value.data(), value.size()) < 0) {
        fail(mesh::ErrnoToStatus(errno, "set oom_score_adj"));
      }
    }
  }
  // cwd is resolved in the new root: nothing of the host is left to escape to, and no fd but
  // 0-2 survives exec (CVE-2024-21626).
  if (chdir(spec.process.cwd.c_str()) != 0) {
    fail(mesh::ErrnoToStatus(errno, absl::StrCat("working directory \"", spec.process.cwd, "\"")));
  }
  if (spec.init) {
    pid_t child = fork();
    if (child < 0) fail(mesh::ErrnoToStatus(errno, "fork the command under init"));
    if (child > 0) {
      close(kReport);
      close(kSync);
      prctl(PR_SET_DUMPABLE, 0);  // /proc/1/exe is the shim's binary: keep it out of reach
      InitLoop(child);
    }
  }
  // Everything but 0-2 goes at exec; the report pipe stays until then (CVE-2024-21626).
  if (absl::Status s = security::CloseFdsExcept0to2({kReport}); !s.ok()) fail(s);
  if (absl::Status s = prepared.ApplyInChild(); !s.ok()) fail(s);  // seccomp is last
  Exec(spec.process.args, spec.process.env);
  fail(mesh::ErrnoToStatus(errno, absl::StrCat("exec \"", spec.process.args[0], "\"")));
  _exit(127);
}

class Shim {
 public:
  explicit Shim(ShimConfig config) : config_(std::move(config)) {}

  // Everything up to "created": the container waits in its rootfs for Start.
  absl::Status Create();
  // Serves the control socket and the container's output until it ends.
  void Serve();

 private:
  absl::Status WriteStateFile() { return WriteState(config_.paths, state_); }
  // For a container with a user namespace, once its process `pid` exists (waiting for 'c'):
  // writes its uid and gid maps, then makes its idmapped mounts with its namespace.
  absl::StatusOr<rootfs::IdmappedMounts> SetUpUserNamespace(pid_t pid,
                                                            const rootfs::RootfsPlan& plan);
  absl::Status StartContainer();
  std::string Handle(const std::string& command);
  void Reap();
  void Pump(int fd, LogStream stream);

  ShimConfig config_;
  ContainerState state_;
  std::unique_ptr<Cgroup> cgroup_;
  uint64_t oom_kills_before_ = 0;
  UniqueFd init_pidfd_;
  UniqueFd sync_write_;
  UniqueFd report_read_;
  UniqueFd stdout_read_;
  UniqueFd stderr_read_;
  UniqueFd control_;
  UniqueFd console_;  // the pty master, with a terminal
  std::optional<LogWriter> log_;
  bool done_ = false;

 public:
  // A Create that failed after making the cgroup removes it again.
  ~Shim() {
    if (cgroup_guard_ && cgroup_) cgroup_->Destroy().IgnoreError();
  }
  void KeepCgroup() { cgroup_guard_ = false; }

 private:
  bool cgroup_guard_ = false;
};

absl::Status Shim::Create() {
  const ContainerSpec& spec = config_.spec;
  state_.id = spec.id;
  state_.created = absl::Now();
  MESH_ASSIGN_OR_RETURN(state_.shim, ProcessIdentity::Of(getpid()));

  // Everything that can fail on bad input fails here, before any kernel change.
  MESH_ASSIGN_OR_RETURN(security::PreparedSecurity prepared,
                        security::Prepare(spec.process, spec.seccomp, spec.privileged));
  rootfs::RootfsPlan plan;
  plan.rootfs = config_.paths.rootfs();
  plan.lower_dirs = config_.lower_dirs;
  plan.upper_dir = config_.paths.upper();
  plan.work_dir = config_.paths.work();
  plan.etc_dir = config_.paths.etc();
  plan.readonly_root = spec.readonly_root;
  plan.privileged = spec.privileged;
  plan.terminal = spec.process.terminal;
  plan.mounts = spec.mounts;
  plan.masked_paths = spec.masked_paths;
  plan.readonly_paths = spec.readonly_paths;
  plan.user_namespace = HasUserNamespace(spec);
  MESH_RETURN_IF_ERROR(rootfs::ValidatePlan(plan));
  // With a user namespace the child receives its mounts into these (allocated now: the child
  // only fills them in).
  rootfs::ReadyMounts ready;
  ready.binds.assign(plan.mounts.size(), -1);
  std::vector<int*> ready_slots = ReadySlots(ready);
  MESH_ASSIGN_OR_RETURN(
      LogWriter log, LogWriter::Open(config_.paths.log(), spec.log.max_size, spec.log.max_files));
  log_.emplace(std::move(log));

  MESH_ASSIGN_OR_RETURN(Pipe sync, Pipe::Make());
  MESH_ASSIGN_OR_RETURN(Pipe report, Pipe::Make());
  MESH_ASSIGN_OR_RETURN(Pipe out, Pipe::Make());
  MESH_ASSIGN_OR_RETURN(Pipe err, Pipe::Make());
  UniqueFd socket_shim, socket_child;
  if (spec.process.terminal || plan.user_namespace) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
      return mesh::ErrnoToStatus(errno, "setup socket");
    }
    socket_shim = UniqueFd(pair[0]);
    socket_child = UniqueFd(pair[1]);
  }
  UniqueFd null(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null.valid()) return mesh::ErrnoToStatus(errno, "open /dev/null");

  // The cgroup, with its limits, before the process exists; it is put in before it does
  // anything (the child waits for 'c').
  MESH_RETURN_IF_ERROR(ValidateResources(spec.resources));
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<CgroupDriver> driver,
                        HostCgroupDriver(config_.cgroup_parent));
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = driver->Create(spec.id);
  if (absl::IsAlreadyExists(cgroup.status())) {
    // The runtime found no container of this id, so this is an orphan (a crash between
    // creating the cgroup and recording the container): collect it and start clean.
    MESH_LOG(Warning) << "container " << spec.id << ": removing a leftover cgroup";
    MESH_ASSIGN_OR_RETURN(std::unique_ptr<Cgroup> leftover, driver->Attach(spec.id));
    MESH_RETURN_IF_ERROR(leftover->Destroy());
    cgroup = driver->Create(spec.id);
  }
  MESH_RETURN_IF_ERROR(cgroup.status());
  cgroup_ = *std::move(cgroup);
  cgroup_guard_ = true;
  MESH_RETURN_IF_ERROR(cgroup_->Apply(spec.resources));
  if (absl::StatusOr<uint64_t> oom = cgroup_->OomKillCount(); oom.ok()) oom_kills_before_ = *oom;
  // The container sees its own cgroup, read-only, at /sys/fs/cgroup.
  for (const CgroupHierarchyDir& h : cgroup_->HierarchyDirs()) {
    plan.cgroups.push_back({h.hierarchy, h.dir});
  }

  uint64_t flags = 0;
  for (const NamespaceSpec& ns : spec.namespaces) {
    // The cgroup namespace is made by the child once it is in its cgroup; joined ones are
    // entered by the child. With CLONE_NEWUSER the kernel makes the user namespace first, and
    // the other new namespaces belong to it.
    if (ns.path.empty() && ns.type != NamespaceType::kCgroup) flags |= NamespaceFlag(ns.type);
  }
  // With a user namespace, namespaces joined by path belong to the initial user namespace,
  // where the child will hold no capability to setns: the shim enters them around the clone
  // (the child inherits them), and returns to its own at once.
  struct Joined {
    UniqueFd own;
    int flag;
    std::string name;
  };
  std::vector<Joined> joined;
  auto leave_joined = [&]() -> absl::Status {
    absl::Status status;
    for (Joined& j : joined) {
      if (setns(j.own.get(), j.flag) != 0) {
        status.Update(mesh::ErrnoToStatus(
            errno, absl::StrCat("return the shim to its own ", j.name, " namespace")));
      }
    }
    joined.clear();
    return status;
  };
  if (plan.user_namespace) {
    for (const NamespaceSpec& ns : spec.namespaces) {
      if (ns.path.empty()) continue;
      const char* name = NamespaceProcName(ns.type);
      if (name == nullptr) continue;
      UniqueFd target(open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
      UniqueFd own(open(absl::StrCat("/proc/self/ns/", name).c_str(), O_RDONLY | O_CLOEXEC));
      if (!target.valid() || !own.valid() || setns(target.get(), NamespaceFlag(ns.type)) != 0) {
        absl::Status s =
            mesh::ErrnoToStatus(errno, absl::StrCat("join namespace \"", ns.path, "\""));
        s.Update(leave_joined());
        return s;
      }
      joined.push_back({std::move(own), NamespaceFlag(ns.type), name});
    }
  }
  int pidfd = -1;
  const pid_t pid = CloneWithPidfd(flags, &pidfd);
  if (pid == 0) {
    ContainerChild(config_, plan, prepared,
                   ChildFds{sync.read.get(), report.write.get(), null.get(), out.write.get(),
                            err.write.get(), socket_child.get()},
                   ready_slots, ready);
  }
  const int clone_errno = errno;
  if (pid > 0) init_pidfd_ = UniqueFd(pidfd);
  if (absl::Status s = leave_joined(); !s.ok()) {
    if (pid > 0) {
      syscall(SYS_pidfd_send_signal, init_pidfd_.get(), SIGKILL, nullptr, 0);
      waitpid(static_cast<pid_t>(pid), nullptr, 0);
    }
    return s;
  }
  if (pid < 0) return mesh::ErrnoToStatus(clone_errno, "clone the container's process");
  // From here on a failure must take the child with it: closing the sync pipe ends it (it
  // waits on it), and the pidfd kill makes sure.
  auto kill_child = [&] {
    syscall(SYS_pidfd_send_signal, init_pidfd_.get(), SIGKILL, nullptr, 0);
    waitpid(static_cast<pid_t>(pid), nullptr, 0);
  };
  sync.read.Reset();
  report.write.Reset();
  out.write.Reset();
  err.write.Reset();
  socket_child.Reset();
  if (absl::Status s = cgroup_->AddProcess(static_cast<pid_t>(pid)); !s.ok()) {
    kill_child();
    return s;
  }
  rootfs::IdmappedMounts idmapped;
  if (plan.user_namespace) {
    absl::StatusOr<rootfs::IdmappedMounts> made = SetUpUserNamespace(static_cast<pid_t>(pid), plan);
    if (!made.ok()) {
      kill_child();
      return made.status();  // Create names the container
    }
    idmapped = *std::move(made);
  }
  WriteAllBestEffort(sync.write.get(), "c");
  if (plan.user_namespace) {
    // In ReadySlots order. A child that died meanwhile makes a send fail: its report says why.
    std::vector<int> fds = {idmapped.mountpoint.get(), idmapped.rootfs.get(), idmapped.etc[0].get(),
                            idmapped.etc[1].get(), idmapped.etc[2].get()};
    for (const UniqueFd& b : idmapped.binds) fds.push_back(b.get());
    for (int fd : fds) {
      if (!SendFd(socket_shim.get(), fd)) break;
    }
    idmapped = rootfs::IdmappedMounts();  // the child holds them now
  }
  char first = 0;
  ssize_t n = read(report.read.get(), &first, 1);
  if (n != 1 || first != 'r') {
    std::string message = n == 1 ? ReadToEnd(report.read.get()) : "";
    kill_child();
    // Create names the container.
    return absl::FailedPreconditionError(message.empty() ? "its process died while being set up"
                                                         : message);
  }
  absl::StatusOr<ProcessIdentity> init = ProcessIdentity::Of(static_cast<pid_t>(pid));
  if (!init.ok()) {
    kill_child();
    return init.status();
  }
  state_.init = *init;
  state_.status = Status::kCreated;
  if (absl::Status s = WriteStateFile(); !s.ok()) {
    kill_child();
    return s;
  }
  sync_write_ = std::move(sync.write);
  report_read_ = std::move(report.read);
  stdout_read_ = std::move(out.read);
  stderr_read_ = std::move(err.read);
  if (spec.process.terminal) {
    // The console's output is the container's stdout; the pipes stay unused.
    console_ = ReceiveFd(socket_shim.get());
    if (!console_.valid()) {
      kill_child();
      return absl::InternalError("no console from the container's process");
    }
    stdout_read_ = UniqueFd(dup(console_.get()));
    stderr_read_.Reset();
  }

  // The control socket: a path in the container's run dir (never an abstract socket,
  // containerd CVE-2020-15257), 0600.
  control_ = UniqueFd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = config_.paths.control();
  if (path.size() >= sizeof(addr.sun_path)) {
    kill_child();
    return absl::InvalidArgumentError(absl::StrCat("control socket path too long: ", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  unlink(path.c_str());
  const mode_t old = umask(0177);
  int bound = bind(control_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old);
  if (!control_.valid() || bound != 0 || listen(control_.get(), 16) != 0) {
    absl::Status s = mesh::ErrnoToStatus(errno, absl::StrCat("control socket ", path));
    kill_child();
    return s;
  }
  return absl::OkStatus();
}

// `path` (O_PATH) as the mount namespace of `pid` holds it. The mapped root cannot open the
// rootfs mount point itself (its parent directories are 0700, host root's), and an fd opened
// in the shim's namespace names a mount of that namespace, which move_mount refuses as a
// target in another (EINVAL): the shim steps into the container's namespace for the open.
absl::StatusOr<UniqueFd> OpenInMountNamespaceOf(pid_t pid, const std::string& path) {
  const std::string what = absl::StrCat("open \"", path, "\" in the container's mount namespace");
  UniqueFd own(open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
  UniqueFd cwd(open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  UniqueFd theirs(open(absl::StrCat("/proc/", pid, "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC));
  if (!own.valid() || !cwd.valid() || !theirs.valid()) return mesh::ErrnoToStatus(errno, what);
  if (setns(theirs.get(), CLONE_NEWNS) != 0) return mesh::ErrnoToStatus(errno, what);
  UniqueFd fd(open(path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  const int open_errno = errno;
  // setns resets the root and the cwd to the namespace's: both back as they were.
  if (setns(own.get(), CLONE_NEWNS) != 0 || fchdir(cwd.get()) != 0) {
    return absl::InternalError(absl::StrCat(what, ": could not return to the shim's own mount ",
                                            "namespace: ", strerror(errno)));
  }
  if (!fd.valid()) return mesh::ErrnoToStatus(open_errno, what);
  return fd;
}

absl::StatusOr<rootfs::IdmappedMounts> Shim::SetUpUserNamespace(pid_t pid,
                                                                const rootfs::RootfsPlan& plan) {
  const ContainerSpec& spec = config_.spec;
  MESH_RETURN_IF_ERROR(WriteIdMap(pid, "uid_map", spec.uid_mappings));
  MESH_RETURN_IF_ERROR(WriteIdMap(pid, "gid_map", spec.gid_mappings));
  const std::string path = absl::StrCat("/proc/", pid, "/ns/user");
  UniqueFd userns(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!userns.valid()) return mesh::ErrnoToStatus(errno, absl::StrCat("open ", path));
  // Validated at Create: container uid 0 and gid 0 are mapped.
  const std::optional<uint32_t> root_uid = HostIdOf(spec.uid_mappings, 0);
  const std::optional<uint32_t> root_gid = HostIdOf(spec.gid_mappings, 0);
  if (!root_uid || !root_gid) {
    return absl::InvalidArgumentError("the user namespace does not map uid 0 and gid 0");
  }
  MESH_ASSIGN_OR_RETURN(rootfs::IdmappedMounts mounts,
                        rootfs::MakeIdmappedMounts(plan, userns.get(), *root_uid, *root_gid));
  MESH_ASSIGN_OR_RETURN(mounts.mountpoint, OpenInMountNamespaceOf(pid, plan.rootfs));
  return mounts;
}

absl::Status Shim::StartContainer() {
  if (state_.status != Status::kCreated) {
    return absl::FailedPreconditionError(
        absl::StrCat("container \"", state_.id, "\" is ", StatusName(state_.status)));
  }
  WriteAllBestEffort(sync_write_.get(), "s");
  sync_write_.Reset();
  // EOF: the exec happened (the pipe is close-on-exec); anything else is the child's error.
  std::string message = ReadToEnd(report_read_.get());
  report_read_.Reset();
  state_.started = absl::Now();
  if (!message.empty()) {
    state_.error = message.substr(1);
    MESH_LOG(Warning) << "container " << state_.id << ": " << state_.error;
    return absl::FailedPreconditionError(
        absl::StrCat("start container \"", state_.id, "\": ", state_.error));
  }
  state_.status = Status::kRunning;
  return WriteStateFile();
}

std::string Shim::Handle(const std::string& command) {
  std::vector<std::string> words = absl::StrSplit(command, ' ', absl::SkipEmpty());
  if (words.empty()) return "error empty command";
  if (words[0] == "start") {
    absl::Status s = StartContainer();
    return s.ok() ? "ok" : absl::StrCat("error ", s.message());
  }
  if (words[0] == "kill" && words.size() == 2) {
    int sig = 0;
    if (!absl::SimpleAtoi(words[1], &sig) || sig <= 0 || sig >= 65) return "error bad signal";
    if (syscall(SYS_pidfd_send_signal, init_pidfd_.get(), sig, nullptr, 0) != 0 && errno != ESRCH) {
      return absl::StrCat("error kill: ", strerror(errno));
    }
    return "ok";
  }
  if (words[0] == "state") return StateToJson(state_).dump();
  if (words[0] == "resize" && words.size() == 3) {
    if (!console_.valid()) return "error the container has no terminal";
    uint32_t rows = 0, cols = 0;
    if (!absl::SimpleAtoi(words[1], &rows) || !absl::SimpleAtoi(words[2], &cols) || rows > 0xffff ||
        cols > 0xffff) {
      return "error bad size";
    }
    winsize ws{};
    ws.ws_row = static_cast<uint16_t>(rows);
    ws.ws_col = static_cast<uint16_t>(cols);
    if (ioctl(console_.get(), TIOCSWINSZ, &ws) != 0) {
      return absl::StrCat("error resize: ", strerror(errno));
    }
    return "ok";
  }
  return absl::StrCat("error unknown command \"", words[0], "\"");
}

void Shim::Pump(int fd, LogStream stream) {
  char buf[65536];
  ssize_t n = read(fd, buf, sizeof(buf));
  if (n > 0) {
    if (absl::Status s =
            log_->Write(stream, absl::string_view(buf, static_cast<size_t>(n)), absl::Now());
        !s.ok()) {
      MESH_LOG(Warning) << s;
    }
    return;
  }
  if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
    (stream == LogStream::kStdout ? stdout_read_ : stderr_read_).Reset();
  }
}

void Shim::Reap() {
  siginfo_t info{};
  if (waitid(P_PIDFD, static_cast<id_t>(init_pidfd_.get()), &info, WEXITED) != 0) return;
  state_.finished = absl::Now();
  state_.status = Status::kStopped;
  if (info.si_code == CLD_EXITED) {
    state_.exit_code = info.si_status;
  } else {
    state_.signal = info.si_status;
    state_.exit_code = 128 + info.si_status;
  }
  if (cgroup_) {
    absl::StatusOr<uint64_t> oom = cgroup_->OomKillCount();
    state_.oom_killed = oom.ok() && WasOomKilled(state_.signal, oom_kills_before_, *oom);
  }
  // What the container wrote last: the writers are gone (PID 1's death ends the namespace),
  // so the pipes drain to EOF quickly; bounded anyway.
  const absl::Time deadline = absl::Now() + absl::Seconds(1);
  while ((stdout_read_.valid() || stderr_read_.valid()) && absl::Now() < deadline) {
    pollfd fds[2] = {{stdout_read_.get(), POLLIN, 0}, {stderr_read_.get(), POLLIN, 0}};
    if (poll(fds, 2, 100) <= 0) break;
    if (fds[0].revents) Pump(stdout_read_.get(), LogStream::kStdout);
    if (fds[1].revents) Pump(stderr_read_.get(), LogStream::kStderr);
  }
  log_->Flush(absl::Now()).IgnoreError();
  if (absl::Status s = WriteStateFile(); !s.ok()) {
    MESH_LOG(Error) << s;
  }
  done_ = true;
}

void Shim::Serve() {
  std::vector<UniqueFd> clients;
  while (!done_) {
    std::vector<pollfd> fds;
    fds.push_back({init_pidfd_.get(), POLLIN, 0});
    fds.push_back({control_.get(), POLLIN, 0});
    fds.push_back({stdout_read_.get(), POLLIN, 0});  // -1 is skipped by poll
    fds.push_back({stderr_read_.get(), POLLIN, 0});
    for (const UniqueFd& c : clients) fds.push_back({c.get(), POLLIN, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      MESH_LOG(Error) << mesh::ErrnoToStatus(errno, "poll");
      return;
    }
    if (fds[2].revents) Pump(stdout_read_.get(), LogStream::kStdout);
    if (fds[3].revents) Pump(stderr_read_.get(), LogStream::kStderr);
    for (size_t i = 4; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      UniqueFd& client = clients[i - 4];
      char buf[512];
      ssize_t n = recv(client.get(), buf, sizeof(buf), 0);
      if (n <= 0) {
        client.Reset();
        continue;
      }
      std::string reply = Handle(std::string(buf, static_cast<size_t>(n)));
      send(client.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
    }
    std::erase_if(clients, [](const UniqueFd& c) { return !c.valid(); });
    if (fds[1].revents) {
      int c = accept4(control_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) clients.emplace_back(c);
    }
    if (fds[0].revents) Reap();
  }
  unlink(config_.paths.control().c_str());
}

}  // namespace

int Main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: mesh-shim <run_dir>  (started by the mesh runtime)\n");
    return 2;
  }
  const std::string run_dir = argv[1];
  UniqueFd report(3);  // from the runtime
  auto fail = [&](const absl::Status& status) {
    WriteAllBestEffort(report.get(), absl::StrCat("error ", status.message(), "\n"));
    return 1;
  };
  signal(SIGPIPE, SIG_IGN);
  // Our own diagnostics go to shim.log; stdin/stdout are /dev/null.
  {
    UniqueFd log(
        open((run_dir + "/shim.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (log.valid()) dup2(log.get(), 2);
  }
  absl::StatusOr<std::string> text = ReadFile(run_dir + "/config.json");
  if (!text.ok()) return fail(text.status());
  nlohmann::json json = nlohmann::json::parse(*text, nullptr, false);
  if (json.is_discarded()) return fail(absl::InvalidArgumentError("config.json is not JSON"));
  absl::StatusOr<ShimConfig> config = ShimConfigFromJson(json);
  if (!config.ok()) return fail(config.status());
  Shim shim(*std::move(config));
  if (absl::Status s = shim.Create(); !s.ok()) return fail(s);
  shim.KeepCgroup();  // from here on, Delete removes it
  WriteAllBestEffort(report.get(), absl::StrCat("ok\n"));
  report.Reset();
  shim.Serve();
  return 0;
}

}  // namespace mesh::runtime::shim
