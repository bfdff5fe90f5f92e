#include "runtime/security/seccomp.h"

#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "runtime/security/syscalls.h"

namespace mesh::runtime::security {
namespace {

// Allowed whatever the capabilities: Docker's unconditional allow-list, reduced to the names
// x86_64 has, without io_uring_* (Docker 25 dropped them: a large attack surface that
// seccomp cannot filter, since the submissions never pass through a syscall).
constexpr const char* kAlwaysAllowed[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir",
    "chmod", "chown", "clock_adjtime", "clock_getres", "clock_gettime", "clock_nanosleep", "close",
    "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create",
    "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
    "faccessat", "faccessat2", "fadvise64", "fallocate", "fanotify_mark", "fchdir", "fchmod",
    "fchmodat", "fchown", "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr", "flock",
    "fork", "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync", "ftruncate", "futex",
    "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "geteuid",
    "getgid", "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
    "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday",
    "getuid", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
    "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "ioprio_get", "ioprio_set",
    "io_setup", "io_submit", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lgetxattr", "link", "linkat", "listen", "listxattr",
    "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv",
    "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep",
    "newfstatat", "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe",
    "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "prctl", "pread64",
    "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pwrite64", "pwritev",
    "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg",
    "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat", "renameat2",
    "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
    "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo",
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
    "semctl", "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto",
    "setfsgid", "setfsuid", "setgid", "setgroups", "setitimer", "setpgid", "setpriority",
    "setregid", "setresgid", "setresuid", "setreuid", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setxattr", "shmat", "shmctl",
    "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "socketpair", "splice",
    "stat", "statfs", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
    "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime",
    "times", "tkill", "truncate", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
    "utimes", "vfork", "vmsplice", "wait4", "waitid", "write", "writev",
    // Docker allows these from kernel 4.8 on (before, ptrace could bypass seccomp); the
    // kernel still checks CAP_SYS_PTRACE or the ptrace access mode for another process.
    "process_vm_readv", "process_vm_writev", "ptrace",
    // x86 only.
    "arch_prctl", "modify_ldt"};

// Allowed when the container's bounding set holds the capability (Docker's "includes caps").
struct CapRule {
  int cap;
  const char* syscall;
};
constexpr CapRule kCapRules[] = {
    {CAP_DAC_READ_SEARCH, "open_by_handle_at"},
    // CAP_SYS_ADMIN also lifts the clone filter and lets clone3 through (below).
    {CAP_SYS_ADMIN, "bpf"},
    {CAP_SYS_ADMIN, "clone"},
    {CAP_SYS_ADMIN, "clone3"},
    {CAP_SYS_ADMIN, "fanotify_init"},
    {CAP_SYS_ADMIN, "fsconfig"},
    {CAP_SYS_ADMIN, "fsmount"},
    {CAP_SYS_ADMIN, "fsopen"},
    {CAP_SYS_ADMIN, "fspick"},
    {CAP_SYS_ADMIN, "lookup_dcookie"},
    {CAP_SYS_ADMIN, "mount"},
    {CAP_SYS_ADMIN, "mount_setattr"},
    {CAP_SYS_ADMIN, "move_mount"},
    {CAP_SYS_ADMIN, "open_tree"},
    {CAP_SYS_ADMIN, "perf_event_open"},
    {CAP_SYS_ADMIN, "quotactl"},
    {CAP_SYS_ADMIN, "quotactl_fd"},
    {CAP_SYS_ADMIN, "setdomainname"},
    {CAP_SYS_ADMIN, "sethostname"},
    {CAP_SYS_ADMIN, "setns"},
    {CAP_SYS_ADMIN, "syslog"},
    {CAP_SYS_ADMIN, "umount2"},
    {CAP_SYS_ADMIN, "unshare"},
    {CAP_SYS_BOOT, "reboot"},
    {CAP_SYS_CHROOT, "chroot"},
    {CAP_SYS_MODULE, "delete_module"},
    {CAP_SYS_MODULE, "init_module"},
    {CAP_SYS_MODULE, "finit_module"},
    {CAP_SYS_PACCT, "acct"},
    {CAP_SYS_PTRACE, "kcmp"},
    {CAP_SYS_PTRACE, "pidfd_getfd"},
    {CAP_SYS_PTRACE, "process_madvise"},
    {CAP_SYS_RAWIO, "iopl"},
    {CAP_SYS_RAWIO, "ioperm"},
    {CAP_SYS_TIME, "settimeofday"},
    {CAP_SYS_TIME, "clock_settime"},
    {CAP_SYS_TTY_CONFIG, "vhangup"},
    {CAP_SYS_NICE, "get_mempolicy"},
    {CAP_SYS_NICE, "mbind"},
    {CAP_SYS_NICE, "set_mempolicy"},
    {CAP_SYS_NICE, "set_mempolicy_home_node"},
    {CAP_SYSLOG, "syslog"},
    {CAP_BPF, "bpf"},
    {CAP_PERFMON, "perf_event_open"},
};

// The namespace flags clone may not carry without CAP_SYS_ADMIN (Docker's mask, 0x7e020000).
constexpr uint64_t kCloneNamespaceFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                                          CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
                                          CLONE_NEWCGROUP;

// personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32,
// and 0xffffffff (query the current persona).
constexpr uint64_t kPersonalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

int MustNumber(const char* name) {
  int nr = SyscallNumber(name);
  // The tables above are checked by the unit test; a typo must not silently allow nothing.
  if (nr < 0) ::abort();
  return nr;
}

using ScmpCtx = std::unique_ptr<void, void (*)(scmp_filter_ctx)>;

uint32_t LibseccompAction(SeccompAction action) {
  switch (action) {
    case SeccompAction::kAllow:
      return SCMP_ACT_ALLOW;
    case SeccompAction::kErrnoNosys:
      return SCMP_ACT_ERRNO(ENOSYS);
  }
  return SCMP_ACT_ERRNO(EPERM);
}

constexpr sock_filter Stmt(uint16_t code, uint32_t k) { return sock_filter{code, 0, 0, k}; }
constexpr sock_filter Jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
  return sock_filter{code, jt, jf, k};
}

// The instructions mesh puts before libseccomp's program: every x86_64 number above the
// highest known one, or in a hole of the known table, returns ENOSYS. libseccomp 2.5 has no
// action for "a syscall I do not know" (runc patches its BPF the same way). Anything else
// (another architecture, an x32 number) falls through to libseccomp's program, which knows
// what to do with it.
absl::StatusOr<std::vector<sock_filter>> UnknownSyscallPrefix() {
  std::vector<std::pair<uint32_t, uint32_t>> holes;  // [first, last]
  int previous = -1;
  for (const SyscallInfo& s : KnownSyscalls()) {
    if (s.number > previous + 1) holes.emplace_back(previous + 1, s.number - 1);
    previous = s.number;
  }
  // Layout: 5 head instructions, 2 per hole, a jump over the return, the return, then lib.
  const size_t lib = 5 + 2 * holes.size() + 2;
  const size_t nosys = lib - 1;
  auto offset = [](size_t from, size_t to) -> uint8_t {
    return static_cast<uint8_t>(to - from - 1);
  };
  if (lib > 255) return absl::InternalError("seccomp: too many holes in the syscall table");

  std::vector<sock_filter> p;
  p.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, offset(1, lib)));
  p.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  p.push_back(
      Jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000 /* __X32_SYSCALL_BIT */, offset(3, lib), 0));
  p.push_back(Jump(BPF_JMP | BPF_JGT | BPF_K, static_cast<uint32_t>(kHighestKnownSyscall),
                   offset(4, nosys), 0));
  for (const auto& hole : holes) {
    size_t at = p.size();
    // nr < first: skip the next check. first <= nr <= last: ENOSYS.
    p.push_back(Jump(BPF_JMP | BPF_JGE | BPF_K, hole.first, 0, 1));
    p.push_back(Jump(BPF_JMP | BPF_JGT | BPF_K, hole.second, 0, offset(at + 1, nosys)));
  }
  p.push_back(Stmt(BPF_JMP | BPF_JA, 1));
  p.push_back(Stmt(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)));
  return p;
}

}  // namespace

SeccompPolicy DefaultSeccompPolicy(CapMask bounding) {
  auto has = [bounding](int cap) { return (bounding & (CapMask{1} << cap)) != 0; };
  std::set<int> allowed;
  for (const char* name : kAlwaysAllowed) allowed.insert(MustNumber(name));
  for (const CapRule& r : kCapRules) {
    if (has(r.cap)) allowed.insert(MustNumber(r.syscall));
  }

  SeccompPolicy policy;
  for (int nr : allowed) policy.rules.push_back({nr, SeccompAction::kAllow, {}});

  // socket: anything but AF_VSOCK (host-guest sockets). The kernel reads the family as an int,
  // so only the low 32 bits count; "low 32 bits != AF_VSOCK" is written as one rule per bit
  // ("bit i differs from bit i of AF_VSOCK"), since libseccomp's != compares all 64 bits (a
  // family with junk in the high half would pass it) and an EPERM rule cannot be added when
  // EPERM is the default action.
  const int socket_nr = MustNumber("socket");
  for (unsigned bit = 0; bit < 32; ++bit) {
    const uint64_t mask = uint64_t{1} << bit;
    policy.rules.push_back(
        {socket_nr, SeccompAction::kAllow, {{0, mask, ~uint64_t{AF_VSOCK} & mask}}});
  }

  const int personality_nr = MustNumber("personality");
  for (uint64_t persona : kPersonalities) {
    policy.rules.push_back({personality_nr, SeccompAction::kAllow, {{0, ~uint64_t{0}, persona}}});
  }

  if (!has(CAP_SYS_ADMIN)) {
    // clone without any namespace flag; clone3 passes its flags in memory seccomp cannot read,
    // so it fails with ENOSYS and glibc falls back to clone.
    policy.rules.push_back(
        {MustNumber("clone"), SeccompAction::kAllow, {{0, kCloneNamespaceFlags, 0}}});
    policy.rules.push_back({MustNumber("clone3"), SeccompAction::kErrnoNosys, {}});
  }
  return policy;
}

std::vector<int> UnconditionallyAllowed(const SeccompPolicy& policy) {
  std::set<int> out;
  for (const SeccompRule& r : policy.rules) {
    if (r.action == SeccompAction::kAllow && r.all_of.empty()) out.insert(r.syscall);
  }
  return {out.begin(), out.end()};
}

sock_fprog SeccompProgram::fprog() const {
  return sock_fprog{static_cast<unsigned short>(instructions_.size()),
                    const_cast<sock_filter*>(instructions_.data())};
}

absl::StatusOr<SeccompProgram> CompileSeccompPolicy(const SeccompPolicy& policy) {
  if (seccomp_arch_native() != SCMP_ARCH_X86_64) {
    return absl::FailedPreconditionError(absl::StrCat(
        "seccomp: mesh's profile covers x86_64 only, and this host's architecture (libseccomp "
        "token ",
        seccomp_arch_native(),
        ") is another; run the container with seccomp unconfined or add the architecture"));
  }
  ScmpCtx ctx(seccomp_init(SCMP_ACT_ERRNO(EPERM)), seccomp_release);
  if (ctx == nullptr) return absl::InternalError("seccomp: seccomp_init failed");
  // i386 (int 0x80) and x32 calls kill the process: the profile is written for x86_64
  // numbers only, and the compat entry points have been a steady source of kernel bugs.
  if (int r = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); r != 0) {
    return mesh::ErrnoToStatus(-r, "seccomp: set the bad-architecture action");
  }
  for (const SeccompRule& rule : policy.rules) {
    const char* name = SyscallName(rule.syscall);
    if (name == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("seccomp: rule for syscall number ", rule.syscall,
                       ", which the profile's x86_64 table does not know"));
    }
    std::vector<scmp_arg_cmp> cmps;
    for (const SeccompArgMatch& m : rule.all_of) {
      if (m.index > 5) {
        return absl::InvalidArgumentError(absl::StrCat("seccomp: rule for \"", name,
                                                       "\" tests argument ", m.index,
                                                       "; syscalls have arguments 0 to 5"));
      }
      cmps.push_back(scmp_arg_cmp{m.index, SCMP_CMP_MASKED_EQ, m.mask, m.value});
    }
    int r = seccomp_rule_add_exact_array(ctx.get(), LibseccompAction(rule.action), rule.syscall,
                                         static_cast<unsigned>(cmps.size()), cmps.data());
    if (r != 0)
      return mesh::ErrnoToStatus(-r, absl::StrCat("seccomp: add rule for \"", name, "\""));
  }

  UniqueFd memfd(::memfd_create("mesh-seccomp-bpf", MFD_CLOEXEC));
  if (!memfd) return mesh::ErrnoToStatus(errno, "seccomp: memfd_create for the exported filter");
  if (int r = seccomp_export_bpf(ctx.get(), memfd.get()); r != 0) {
    return mesh::ErrnoToStatus(-r, "seccomp: export the BPF program");
  }
  off_t size = ::lseek(memfd.get(), 0, SEEK_END);
  if (size < 0 || size % sizeof(sock_filter) != 0) {
    return absl::InternalError(absl::StrCat("seccomp: exported program has ", size, " bytes"));
  }
  MESH_ASSIGN_OR_RETURN(std::vector<sock_filter> program, UnknownSyscallPrefix());
  const size_t prefix = program.size();
  program.resize(prefix + static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(memfd.get(), program.data() + prefix, static_cast<size_t>(size), 0) != size) {
    return mesh::ErrnoToStatus(errno, "seccomp: read back the BPF program");
  }
  if (program.size() > BPF_MAXINSNS) {
    return absl::InternalError(absl::StrCat("seccomp: program has ", program.size(),
                                            " instructions, the kernel takes ", BPF_MAXINSNS));
  }
  SeccompProgram out;
  out.instructions_ = std::move(program);
  return out;
}

}  // namespace mesh::runtime::security
