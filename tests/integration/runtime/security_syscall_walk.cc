// Test-only helper of security_test.cc (SyscallWalk, TESTING.md #3). Run as a container's
// program, after PreparedSecurity::ApplyInChild, it asks the kernel what the seccomp filter it
// runs under does with every known x86_64 syscall, and with a few argument-filtered calls and
// unknown numbers, without running any of them.
//
// How, and why it is safe: a second filter is stacked on top that returns SECCOMP_RET_USER_NOTIF
// for calls whose 6th argument is a magic value, and ALLOW for everything else. The kernel
// runs every filter and takes the strongest action, and ERRNO outranks USER_NOTIF: a call the
// container's filter refuses fails with its errno (EPERM or ENOSYS), and a call it allows
// reaches the notification, which a supervisor thread (started before the second filter, so
// not under it) answers with a marker errno. No probed call ever executes. The syscalls are
// probed with arguments 0 (and argument 0 as listed for the probes) and the magic 6th one,
// which no rule of the profile looks at.
//
// Output, one line each:
//   syscall <nr> <name> <allow|eperm|enosys|unexpected:RET/ERRNO>
//   probe <label> <nr> <arg0 hex> <verdict>
//   summary <blocked> of <known> blocked
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "runtime/security/syscalls.h"

namespace {

constexpr uint64_t kMagic = 0x6d6573682d77616bULL;  // "mesh-wak"
// What the supervisor answers for a call the container's filter let through. Neither EPERM
// nor ENOSYS, and nothing a zero-argument call would return anyway (it never runs).
constexpr int kAllowedMarker = EHWPOISON;

int InstallNotifyFilter() {
  const uint32_t lo = static_cast<uint32_t>(kMagic);
  const uint32_t hi = static_cast<uint32_t>(kMagic >> 32);
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[5])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, lo, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[5]) + 4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, hi, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
  return static_cast<int>(
      syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog));
}

void Supervise(int ready_fd) {
  int listener = -1;
  if (read(ready_fd, &listener, sizeof(listener)) != sizeof(listener)) return;
  for (;;) {
    seccomp_notif request;
    std::memset(&request, 0, sizeof(request));
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &request) != 0) {
      if (errno == EINTR) continue;
      return;
    }
    seccomp_notif_resp response;
    std::memset(&response, 0, sizeof(response));
    response.id = request.id;
    response.error = -kAllowedMarker;
    // ENOENT if the caller went away; nothing to do then.
    (void)ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &response);
  }
}

std::string Probe(long nr, uint64_t arg0) {
  errno = 0;
  long r = syscall(nr, static_cast<long>(arg0), 0L, 0L, 0L, 0L, static_cast<long>(kMagic));
  int err = errno;
  if (r == -1 && err == kAllowedMarker) return "allow";
  if (r == -1 && err == EPERM) return "eperm";
  if (r == -1 && err == ENOSYS) return "enosys";
  return "unexpected:" + std::to_string(r) + "/" + std::to_string(err);
}

struct ExtraProbe {
  const char* label;
  long nr;
  uint64_t arg0;
};

constexpr ExtraProbe kProbes[] = {
    {"clone_plain", SYS_clone, SIGCHLD},
    {"clone_newuser", SYS_clone, CLONE_NEWUSER | SIGCHLD},
    {"clone_newns", SYS_clone, CLONE_NEWNS | SIGCHLD},
    {"clone_newnet", SYS_clone, CLONE_NEWNET | SIGCHLD},
    {"socket_inet", SYS_socket, AF_INET},
    {"socket_unix", SYS_socket, AF_UNIX},
    {"socket_vsock", SYS_socket, AF_VSOCK},
    {"socket_vsock_high_bits", SYS_socket, (uint64_t{1} << 32) | AF_VSOCK},
    {"personality_linux", SYS_personality, 0},
    {"personality_query", SYS_personality, 0xffffffff},
    {"personality_read_implies_exec", SYS_personality, 0x0400000},
    // Not 335 or 336: on recent kernels uretprobe and uprobe bypass seccomp entirely, and
    // called from anywhere but the kernel's trampoline uretprobe raises SIGILL.
    {"unknown_380", 380, 0},
    {"unknown_400", 400, 0},
    {"unknown_451", 451, 0},
    {"unknown_1000", 1000, 0},
    {"unknown_3fffffff", 0x3fffffff, 0},
};

}  // namespace

int main() {
  // Line by line: if the walk dies, the last line shows where.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int ready[2];
  if (pipe(ready) != 0) {
    std::perror("pipe");
    return 2;
  }
  // Started under the container's filter only: threads inherit the filters of their creator
  // at creation, and the notify filter comes later. (glibc starts threads with clone3, which
  // the profile answers with ENOSYS, and falls back to clone.)
  std::thread supervisor(Supervise, ready[0]);
  supervisor.detach();

  int listener = InstallNotifyFilter();
  if (listener < 0) {
    std::printf("error: install the notify filter: %s\n", std::strerror(errno));
    return 2;
  }
  if (write(ready[1], &listener, sizeof(listener)) != sizeof(listener)) return 2;
  // From here on a magic call never runs; check that before probing anything dangerous.
  if (std::string v = Probe(SYS_getpid, 0); v != "allow") {
    std::printf("error: the notify filter does not answer (getpid: %s)\n", v.c_str());
    std::fflush(stdout);
    _exit(2);
  }

  int blocked = 0;
  for (const auto& s : mesh::runtime::security::KnownSyscalls()) {
    std::string v = Probe(s.number, 0);
    if (v == "eperm" || v == "enosys") ++blocked;
    std::printf("syscall %d %s %s\n", s.number, s.name, v.c_str());
  }
  for (const ExtraProbe& p : kProbes) {
    std::printf("probe %s %ld %llx %s\n", p.label, p.nr, static_cast<unsigned long long>(p.arg0),
                Probe(p.nr, p.arg0).c_str());
  }
  std::printf("summary %d of %zu blocked\n", blocked,
              mesh::runtime::security::KnownSyscalls().size());
  std::fflush(stdout);
  // exit_group: the supervisor thread is still waiting for notifications.
  _exit(0);
}
