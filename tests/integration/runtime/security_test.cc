// The process side of mesh's hardened defaults, against the real kernel (TESTING.md catalogue
// #1, #2, #3, #7): a forked child applies PreparedSecurity and execs a program that reports
// what it got. Root, in the sandbox.
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/child_process.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/security/process_security.h"
#include "runtime/security/syscalls.h"
#include "runtime/spec/defaults.h"
#include "tests/integration/runtime/syscall_walk_check.h"
#include "tests/support/sandbox.h"
#include "tests/unit/runtime/security/seccomp_bpf_eval.h"

namespace mesh::runtime::security {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kBusybox[] = "/bin/busybox";

// ---- Running a child under PreparedSecurity ----

enum class FdCleanup { kClose, kCloseOnExec, kLeave };

struct ChildSetup {
  // Runs in the child first (before fd cleanup and ApplyInChild).
  std::function<absl::Status()> before_apply;
  FdCleanup fds = FdCleanup::kClose;
};

struct ChildResult {
  std::string setup_error;  // what the child reported before exec; empty if it exec'd
  ExitStatus status;
  std::string out;
  std::string err;
};

// Kills and reaps a forked child on scope exit.
struct Reaper {
  pid_t pid = -1;
  ~Reaper() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

ExitStatus FromWait(int wstatus) {
  ExitStatus s;
  if (WIFEXITED(wstatus)) s.code = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) s.signal = WTERMSIG(wstatus);
  return s;
}

absl::StatusOr<ChildResult> RunUnder(const PreparedSecurity& sec, std::vector<std::string> argv,
                                     const ChildSetup& setup = {}) {
  int out[2], err[2], report[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 || pipe2(report, O_CLOEXEC) != 0) {
    return mesh::ErrnoToStatus(errno, "pipe2");
  }
  UniqueFd out_r(out[0]), out_w(out[1]), err_r(err[0]), err_w(err[1]), rep_r(report[0]),
      rep_w(report[1]);
  UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  std::vector<char*> cargv;
  cargv.reserve(argv.size() + 1);
  for (std::string& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  const pid_t parent = getpid();

  Reaper child{fork()};
  if (child.pid < 0) return mesh::ErrnoToStatus(errno, "fork");
  if (child.pid == 0) {
    auto fail = [&](const absl::Status& s) {
      std::string m(s.ToString());
      (void)!write(rep_w.get(), m.data(), m.size());
      _exit(122);
    };
    // Dies with the test.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(121);
    if (dup2(devnull.get(), 0) < 0 || dup2(out_w.get(), 1) < 0 || dup2(err_w.get(), 2) < 0) {
      fail(mesh::ErrnoToStatus(errno, "dup2"));
    }
    if (setup.before_apply) {
      if (absl::Status s = setup.before_apply(); !s.ok()) fail(s);
    }
    int keep[] = {rep_w.get()};
    absl::Status s = absl::OkStatus();
    if (setup.fds == FdCleanup::kClose) s = CloseFdsExcept0to2(keep);
    if (setup.fds == FdCleanup::kCloseOnExec) s = SetCloseOnExecFrom3();
    if (!s.ok()) fail(s);
    if (absl::Status a = sec.ApplyInChild(); !a.ok()) fail(a);
    execv(cargv[0], cargv.data());
    fail(mesh::ErrnoToStatus(errno, absl::StrCat("execv ", argv[0])));
  }
  out_w.Reset();
  err_w.Reset();
  rep_w.Reset();

  ChildResult result;
  pollfd pfds[3] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}, {rep_r.get(), POLLIN, 0}};
  std::string* sinks[3] = {&result.out, &result.err, &result.setup_error};
  int open_fds = 3;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (open_fds > 0) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) return absl::DeadlineExceededError(absl::StrCat(argv[0], " still runs"));
    int r = poll(pfds, 3, static_cast<int>(left));
    if (r < 0 && errno != EINTR) return mesh::ErrnoToStatus(errno, "poll");
    for (int i = 0; i < 3 && r > 0; ++i) {
      if (pfds[i].fd < 0 || pfds[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = read(pfds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        pfds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int wstatus = 0;
  if (waitpid(child.pid, &wstatus, 0) != child.pid) return mesh::ErrnoToStatus(errno, "waitpid");
  child.pid = -1;
  result.status = FromWait(wstatus);
  return result;
}

// Runs and expects the program to have been exec'd and to exit 0; returns stdout.
std::string RunOk(const PreparedSecurity& sec, const std::vector<std::string>& argv,
                  const ChildSetup& setup = {}) {
  absl::StatusOr<ChildResult> r = RunUnder(sec, argv, setup);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  EXPECT_EQ(r->setup_error, "");
  EXPECT_TRUE(r->status.ok()) << r->status.ToString() << "\nstderr: " << r->err;
  return r->out;
}

// "Key:\tvalue" lines of /proc/PID/status.
std::map<std::string, std::string> StatusFields(const std::string& status) {
  std::map<std::string, std::string> fields;
  for (absl::string_view line : absl::StrSplit(status, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits(':', 1));
    if (kv.size() == 2) fields[std::string(kv[0])] = std::string(absl::StripAsciiWhitespace(kv[1]));
  }
  return fields;
}

std::map<std::string, std::string> StatusUnder(const PreparedSecurity& sec) {
  return StatusFields(RunOk(sec, {kBusybox, "cat", "/proc/self/status"}));
}

Process DefaultProcess() {
  Process p;
  p.capabilities = CapabilitiesFrom(DefaultCapabilities());
  return p;
}

PreparedSecurity MustPrepare(const Process& p, SeccompProfile profile = SeccompProfile::kDefault,
                             bool privileged = false) {
  absl::StatusOr<PreparedSecurity> sec = Prepare(p, profile, privileged);
  EXPECT_TRUE(sec.ok()) << sec.status();
  if (!sec.ok()) std::abort();
  return *std::move(sec);
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override { MESH_REQUIRE_ROOT(); }
};

// ---- #1, #2: capabilities, no_new_privs, seccomp mode ----

TEST_F(SecurityTest, DefaultsReadBackExactly) {
  std::map<std::string, std::string> s = StatusUnder(MustPrepare(DefaultProcess()));
  EXPECT_EQ(s["CapInh"], "0000000000000000");
  EXPECT_EQ(s["CapPrm"], "00000000a80425fb");
  EXPECT_EQ(s["CapEff"], "00000000a80425fb");
  EXPECT_EQ(s["CapBnd"], "00000000a80425fb");
  EXPECT_EQ(s["CapAmb"], "0000000000000000");
  EXPECT_EQ(s["NoNewPrivs"], "1");
  EXPECT_EQ(s["Seccomp"], "2");
  EXPECT_EQ(s["Seccomp_filters"], "1");
  EXPECT_EQ(s["Uid"], "0\t0\t0\t0");
  EXPECT_EQ(s["Groups"], "");
}

TEST_F(SecurityTest, StrictProfileReadsBackExactly) {
  Process p;
  p.capabilities = CapabilitiesFrom(StrictCapabilities());
  std::map<std::string, std::string> s = StatusUnder(MustPrepare(p));
  EXPECT_EQ(s["CapPrm"], "00000000800405fb");
  EXPECT_EQ(s["CapEff"], "00000000800405fb");
  EXPECT_EQ(s["CapBnd"], "00000000800405fb");
  EXPECT_EQ(s["CapInh"], "0000000000000000");
  EXPECT_EQ(s["CapAmb"], "0000000000000000");
}

// OCI sets that ask for a capability across execve (ambient, with permitted and inheritable):
// a non-root user holds it after exec.
TEST_F(SecurityTest, NonRootUserGetsWhatItAskedForThroughAmbient) {
  Process p;
  p.user = {1000, 1000, {1001, 1002}};
  const std::vector<std::string> nbs = {"CAP_NET_BIND_SERVICE"};
  p.capabilities = CapabilitySets{.bounding = DefaultCapabilities(),
                                  .effective = nbs,
                                  .inheritable = nbs,
                                  .permitted = nbs,
                                  .ambient = nbs};
  PreparedSecurity sec = MustPrepare(p);
  std::map<std::string, std::string> s = StatusUnder(sec);
  EXPECT_EQ(s["Uid"], "1000\t1000\t1000\t1000");
  EXPECT_EQ(s["Gid"], "1000\t1000\t1000\t1000");
  EXPECT_EQ(s["Groups"], "1001 1002");
  EXPECT_EQ(s["CapInh"], "0000000000000400");
  EXPECT_EQ(s["CapPrm"], "0000000000000400");
  EXPECT_EQ(s["CapEff"], "0000000000000400");
  EXPECT_EQ(s["CapAmb"], "0000000000000400");
  EXPECT_EQ(s["CapBnd"], "00000000a80425fb");
  EXPECT_EQ(s["NoNewPrivs"], "1");
  EXPECT_EQ(s["Seccomp"], "2");

  // And it works: uid 1000 binds port 80 (killed by timeout after 1 s: still listening).
  absl::StatusOr<ChildResult> r =
      RunUnder(sec, {kBusybox, "timeout", "1", kBusybox, "nc", "-l", "-p", "80"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status.signal, SIGTERM) << r->status.ToString() << " " << r->err;
  EXPECT_THAT(r->err, Not(HasSubstr("Permission denied")));
}

TEST_F(SecurityTest, NonRootUserWithDockersShapeKeepsNothingAfterExec) {
  Process p = DefaultProcess();
  p.user = {1000, 1000, {}};
  PreparedSecurity sec = MustPrepare(p);
  std::map<std::string, std::string> s = StatusUnder(sec);
  EXPECT_EQ(s["CapPrm"], "0000000000000000");
  EXPECT_EQ(s["CapEff"], "0000000000000000");
  EXPECT_EQ(s["CapAmb"], "0000000000000000");
  EXPECT_EQ(s["CapBnd"], "00000000a80425fb");
  // So port 80 is refused: the control for the test above.
  absl::StatusOr<ChildResult> r =
      RunUnder(sec, {kBusybox, "timeout", "1", kBusybox, "nc", "-l", "-p", "80"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status.code, 1);
  EXPECT_THAT(r->err, HasSubstr("Permission denied"));
}

TEST_F(SecurityTest, PrivilegedGetsTheRuntimesCapabilitiesAndNoSeccomp) {
  absl::StatusOr<RuntimeCapabilities> runtime = ReadRuntimeCapabilities();
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  std::map<std::string, std::string> s =
      StatusUnder(MustPrepare(DefaultProcess(), SeccompProfile::kDefault, /*privileged=*/true));
  const std::string all = FormatCapMask(runtime->bounding & runtime->permitted);
  EXPECT_EQ(s["CapBnd"], all);
  EXPECT_EQ(s["CapPrm"], all);
  EXPECT_EQ(s["CapEff"], all);
  EXPECT_EQ(s["Seccomp"], "0");
  EXPECT_EQ(s["NoNewPrivs"], "1");
}

TEST_F(SecurityTest, WithoutNoNewPrivsSeccompIsStillLoaded) {
  Process p = DefaultProcess();
  p.user = {1000, 1000, {}};
  p.no_new_privileges = false;
  std::map<std::string, std::string> s = StatusUnder(MustPrepare(p));
  EXPECT_EQ(s["NoNewPrivs"], "0");
  EXPECT_EQ(s["Seccomp"], "2");  // loaded before the capabilities went
  EXPECT_EQ(s["Uid"], "1000\t1000\t1000\t1000");
}

// A tmpfs without nosuid on a fresh directory, unmounted and removed on scope exit.
class SuidDir {
 public:
  SuidDir() {
    std::string templ = std::string(testing::Sandbox::kScratchDir) + "/suid.XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) return;
    path_ = templ;
    if (mount("tmpfs", path_.c_str(), "tmpfs", MS_NODEV, "mode=0755") == 0) mounted_ = true;
  }
  ~SuidDir() {
    if (mounted_) umount2(path_.c_str(), MNT_DETACH);
    if (!path_.empty()) rmdir(path_.c_str());
  }
  bool ok() const { return mounted_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

TEST_F(SecurityTest, SetuidRootBinaryCannotRaiseTheUidUnderNoNewPrivs) {
  SuidDir dir;
  ASSERT_TRUE(dir.ok()) << "mount tmpfs on " << dir.path() << ": " << strerror(errno);
  const std::string whoami = dir.path() + "/whoami";
  ASSERT_TRUE(std::filesystem::copy_file(MESH_SECURITY_WHOAMI_PATH, whoami));
  ASSERT_EQ(chown(whoami.c_str(), 0, 0), 0);
  ASSERT_EQ(chmod(whoami.c_str(), 04755), 0);

  Process p = DefaultProcess();
  p.user = {1000, 1000, {}};
  // Control: without no_new_privs the setuid bit works here (no nosuid, a real root owner).
  p.no_new_privileges = false;
  EXPECT_EQ(RunOk(MustPrepare(p), {whoami}), "ruid=1000 euid=0\n");
  // With it, the kernel ignores the bit.
  p.no_new_privileges = true;
  EXPECT_EQ(RunOk(MustPrepare(p), {whoami}), "ruid=1000 euid=1000\n");
}

// Why Docker's shape keeps permitted and effective for a non-root user (moby#45491): a
// program with file capabilities gets those within the sets even under no_new_privs, since
// the kernel limits a no_new_privs execve to the permitted set held before it. With bounding
// alone (Docker before 24.0.6) the same program gets nothing.
TEST_F(SecurityTest, NonRootFileCapabilitiesWorkUnderNoNewPrivsWithDockersShape) {
  SuidDir dir;  // a tmpfs without nosuid, which would disable file capabilities
  ASSERT_TRUE(dir.ok()) << "mount tmpfs on " << dir.path() << ": " << strerror(errno);
  const std::string fcap = dir.path() + "/busybox";
  ASSERT_TRUE(std::filesystem::copy_file(kBusybox, fcap));
  ASSERT_EQ(chmod(fcap.c_str(), 0755), 0);
  vfs_cap_data xattr{};
  xattr.magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE;  // cap_net_bind_service+ep
  xattr.data[0].permitted = 1u << CAP_NET_BIND_SERVICE;
  ASSERT_EQ(setxattr(fcap.c_str(), "security.capability", &xattr, XATTR_CAPS_SZ_2, 0), 0)
      << strerror(errno);

  Process p;
  p.user = {1000, 1000, {}};
  absl::StatusOr<CapabilitySets> docker = ContainerCapabilities(DefaultCapabilities(), {}, {});
  ASSERT_TRUE(docker.ok()) << docker.status();
  p.capabilities = *docker;
  PreparedSecurity sec = MustPrepare(p);
  ASSERT_TRUE(sec.no_new_privileges());
  std::map<std::string, std::string> s =
      StatusFields(RunOk(sec, {fcap, "cat", "/proc/self/status"}));
  EXPECT_EQ(s["CapPrm"], "0000000000000400");
  EXPECT_EQ(s["CapEff"], "0000000000000400");
  EXPECT_EQ(s["CapBnd"], "00000000a80425fb");
  // The same user's plain programs hold nothing.
  s = StatusUnder(sec);
  EXPECT_EQ(s["CapPrm"], "0000000000000000");
  EXPECT_EQ(s["CapEff"], "0000000000000000");

  // Control: bounding alone, so no_new_privs clamps the file's capabilities to nothing.
  p.capabilities = CapabilitySets{.bounding = DefaultCapabilities()};
  s = StatusFields(RunOk(MustPrepare(p), {fcap, "cat", "/proc/self/status"}));
  EXPECT_EQ(s["CapPrm"], "0000000000000000");
  EXPECT_EQ(s["CapEff"], "0000000000000000");
}

// ---- #3: the syscall table walk ----

TEST_F(SecurityTest, SyscallWalkBlockedSetEqualsTheProfile) {
  PreparedSecurity sec = MustPrepare(DefaultProcess());
  ASSERT_NE(sec.seccomp(), nullptr);
  std::string out = RunOk(sec, {MESH_SECURITY_SYSCALL_WALK_PATH});
  ASSERT_THAT(out, HasSubstr("summary")) << out;

  // What the kernel said, checked line by line against the userspace evaluation of the very
  // program ApplyInChild loaded (which the unit tests rely on).
  const WalkResult walk = CheckWalk(out, sec.seccomp()->instructions());
  const std::set<std::string>& blocked = walk.blocked;
  std::map<std::string, std::string> probes = walk.probes;
  const int syscalls = walk.syscalls;
  EXPECT_EQ(syscalls, static_cast<int>(KnownSyscalls().size()));
  std::cout << blocked.size() << " of " << syscalls << " x86_64 syscalls blocked\n";
  RecordProperty("syscalls_blocked", static_cast<int>(blocked.size()));
  EXPECT_GE(blocked.size(), 67u);
  EXPECT_EQ(blocked.size(), 67u) << absl::StrJoin(blocked, " ");
  for (const char* name : {"mount",
                           "umount2",
                           "pivot_root",
                           "unshare",
                           "setns",
                           "bpf",
                           "perf_event_open",
                           "keyctl",
                           "add_key",
                           "request_key",
                           "fsopen",
                           "fsconfig",
                           "fsmount",
                           "fspick",
                           "move_mount",
                           "open_tree",
                           "mount_setattr",
                           "io_uring_setup",
                           "io_uring_enter",
                           "io_uring_register",
                           "userfaultfd",
                           "kexec_load",
                           "kexec_file_load",
                           "init_module",
                           "finit_module",
                           "delete_module",
                           "reboot",
                           "clock_settime",
                           "open_by_handle_at",
                           "clone3"}) {
    EXPECT_THAT(blocked, Contains(name));
  }
  for (const char* name : {"read", "write", "openat", "execve", "execveat", "exit_group"}) {
    EXPECT_THAT(blocked, Not(Contains(name)));
  }
  EXPECT_THAT(out, HasSubstr(absl::StrCat("syscall ", SYS_mount, " mount eperm\n")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("syscall ", SYS_clone3, " clone3 enosys\n")));
  EXPECT_EQ(probes["clone_plain"], "allow");
  EXPECT_EQ(probes["clone_newuser"], "eperm");
  EXPECT_EQ(probes["clone_newns"], "eperm");
  EXPECT_EQ(probes["clone_newnet"], "eperm");
  EXPECT_EQ(probes["socket_inet"], "allow");
  EXPECT_EQ(probes["socket_unix"], "allow");
  EXPECT_EQ(probes["socket_vsock"], "eperm");
  EXPECT_EQ(probes["socket_vsock_high_bits"], "eperm");
  EXPECT_EQ(probes["personality_linux"], "allow");
  EXPECT_EQ(probes["personality_query"], "allow");
  EXPECT_EQ(probes["personality_read_implies_exec"], "eperm");
  for (const char* unknown :
       {"unknown_380", "unknown_400", "unknown_451", "unknown_1000", "unknown_3fffffff"}) {
    EXPECT_EQ(probes[unknown], "enosys") << unknown;
  }
}

TEST_F(SecurityTest, SeccompRefusesUnshareThatTheKernelWouldAllow) {
  // Creating a user namespace needs no capability, so only the filter stands in the way.
  const std::vector<std::string> argv = {kBusybox, "unshare", "-r", "-m", kBusybox, "true"};
  absl::StatusOr<ChildResult> r = RunUnder(MustPrepare(DefaultProcess()), argv);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->status.ok());
  EXPECT_THAT(r->err, HasSubstr("Operation not permitted"));
  // Control: the same capabilities without seccomp.
  r = RunUnder(MustPrepare(DefaultProcess(), SeccompProfile::kUnconfined), argv);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->status.ok()) << r->status.ToString() << " " << r->err;
}

// ---- #7: fd audit ----

// Leaves three fds without O_CLOEXEC open, far from 0-2.
absl::Status OpenStrayFds() {
  for (int target : {100, 200, 300}) {
    int fd = open("/", O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fcntl(fd, F_DUPFD, target) != target) {
      return mesh::ErrnoToStatus(errno, "open a stray fd");
    }
  }
  return absl::OkStatus();
}

// The fds `busybox ls -l /proc/self/fd` shows, without the one ls reads the directory with.
std::set<int> FdsSeen(const std::string& ls_output) {
  std::set<int> fds;
  for (absl::string_view line : absl::StrSplit(ls_output, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    // "lr-x------ 1 0 0 64 Nov 29 10:00 3 -> /proc/7/fd"
    auto arrow = std::find(f.begin(), f.end(), "->");
    if (arrow == f.begin() || arrow == f.end() || arrow + 1 == f.end()) continue;
    int fd = 0;
    if (!absl::SimpleAtoi(*(arrow - 1), &fd)) continue;
    if (absl::StartsWith(*(arrow + 1), "/proc/") && absl::EndsWith(*(arrow + 1), "/fd")) continue;
    fds.insert(fd);
  }
  return fds;
}

TEST_F(SecurityTest, FdAuditOnlyStdioReachesTheProgram) {
  PreparedSecurity sec = MustPrepare(DefaultProcess());
  const std::vector<std::string> ls = {kBusybox, "ls", "-l", "/proc/self/fd"};
  ChildSetup setup;
  setup.before_apply = OpenStrayFds;

  setup.fds = FdCleanup::kLeave;  // control: the stray fds are there without the cleanup
  std::set<int> leaked = FdsSeen(RunOk(sec, ls, setup));
  for (int fd : {0, 1, 2, 100, 200, 300}) EXPECT_THAT(leaked, Contains(fd));

  setup.fds = FdCleanup::kClose;
  EXPECT_EQ(FdsSeen(RunOk(sec, ls, setup)), (std::set<int>{0, 1, 2}));
  setup.fds = FdCleanup::kCloseOnExec;
  EXPECT_EQ(FdsSeen(RunOk(sec, ls, setup)), (std::set<int>{0, 1, 2}));

  // And in what the program starts in turn (a shell running ls).
  setup.fds = FdCleanup::kClose;
  EXPECT_EQ(FdsSeen(RunOk(sec, {kBusybox, "sh", "-c", "busybox ls -l /proc/self/fd"}, setup)),
            (std::set<int>{0, 1, 2}));
}

// ---- rlimits ----

TEST_F(SecurityTest, RlimitNofileIsApplied) {
  Process p = DefaultProcess();
  p.rlimits = {{"RLIMIT_NOFILE", 256, 512}, {"RLIMIT_CORE", 0, 0}};
  std::string limits = RunOk(MustPrepare(p), {kBusybox, "cat", "/proc/self/limits"});
  std::map<std::string, std::pair<std::string, std::string>> rows;
  for (absl::string_view line : absl::StrSplit(limits, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, "  ", absl::SkipWhitespace());
    if (f.size() >= 3) {
      rows[std::string(absl::StripAsciiWhitespace(f[0]))] = {
          std::string(absl::StripAsciiWhitespace(f[1])),
          std::string(absl::StripAsciiWhitespace(f[2]))};
    }
  }
  EXPECT_EQ(rows["Max open files"], (std::pair<std::string, std::string>{"256", "512"})) << limits;
  EXPECT_EQ(rows["Max core file size"], (std::pair<std::string, std::string>{"0", "0"}));
}

TEST_F(SecurityTest, RaisingAHardRlimitIsRefusedClearly) {
  absl::StatusOr<RuntimeCapabilities> runtime = ReadRuntimeCapabilities();
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  const bool can_raise = (runtime->effective & (CapMask{1} << CAP_SYS_RESOURCE)) != 0;
  rlimit current{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &current), 0);
  Process p = DefaultProcess();
  p.rlimits = {{"RLIMIT_NOFILE", 64, current.rlim_max + 1}};

  absl::StatusOr<PreparedSecurity> sec = Prepare(p, SeccompProfile::kDefault, false);
  if (can_raise) {
    ASSERT_TRUE(sec.ok()) << sec.status();
    EXPECT_THAT(RunOk(*sec, {kBusybox, "cat", "/proc/self/limits"}),
                HasSubstr(absl::StrCat(current.rlim_max + 1)));
    return;
  }
  // These machines: refused before any fork...
  ASSERT_FALSE(sec.ok());
  EXPECT_EQ(sec.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(sec.status().message(), HasSubstr("CAP_SYS_RESOURCE"));
  // ...and, should a caller get past Prepare, reported by the child with the limit's name.
  RuntimeCapabilities pretend = *runtime;
  pretend.effective |= CapMask{1} << CAP_SYS_RESOURCE;
  absl::StatusOr<PreparedSecurity> forced = Prepare(p, SeccompProfile::kDefault, false, pretend);
  ASSERT_TRUE(forced.ok()) << forced.status();
  absl::StatusOr<ChildResult> r = RunUnder(*forced, {kBusybox, "true"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status.code, 122);
  EXPECT_THAT(r->setup_error, HasSubstr("RLIMIT_NOFILE"));
  EXPECT_THAT(r->setup_error, HasSubstr("EPERM"));
  EXPECT_THAT(r->setup_error, HasSubstr("CAP_SYS_RESOURCE"));
}

// ---- dumpable (CVE-2019-5736) ----

// A process of uid 1000 that waits; `dumpable` picks PR_SET_DUMPABLE 1 or MakeNonDumpable().
absl::StatusOr<pid_t> StartIdleUser1000(bool dumpable, Reaper& reaper) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return mesh::ErrnoToStatus(errno, "pipe2");
  UniqueFd ready_r(ready[0]), ready_w(ready[1]);
  const pid_t parent = getpid();
  reaper.pid = fork();
  if (reaper.pid < 0) return mesh::ErrnoToStatus(errno, "fork");
  if (reaper.pid == 0) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(1);
    if (syscall(SYS_setgroups, 0, nullptr) != 0 || syscall(SYS_setresgid, 1000, 1000, 1000) != 0 ||
        syscall(SYS_setresuid, 1000, 1000, 1000) != 0) {
      _exit(2);
    }
    // A uid change already made the process non-dumpable; set the state under test explicitly.
    if (dumpable ? prctl(PR_SET_DUMPABLE, 1) != 0 : !MakeNonDumpable().ok()) _exit(3);
    (void)!write(ready_w.get(), "x", 1);
    for (;;) pause();
  }
  ready_w.Reset();
  char c;
  if (read(ready_r.get(), &c, 1) != 1) return absl::InternalError("idle child did not start");
  return reaper.pid;
}

TEST_F(SecurityTest, NonDumpableHidesExeFromTheSameUid) {
  Process p;
  p.user = {1000, 1000, {}};
  p.capabilities = CapabilitySets{.bounding = DefaultCapabilities()};
  PreparedSecurity sec = MustPrepare(p);

  for (bool dumpable : {true, false}) {
    Reaper reaper;
    absl::StatusOr<pid_t> pid = StartIdleUser1000(dumpable, reaper);
    ASSERT_TRUE(pid.ok()) << pid.status();
    absl::StatusOr<ChildResult> r =
        RunUnder(sec, {kBusybox, "readlink", absl::StrCat("/proc/", *pid, "/exe")});
    ASSERT_TRUE(r.ok()) << r.status();
    if (dumpable) {  // control: the same uid reads the link
      EXPECT_TRUE(r->status.ok()) << r->err;
      EXPECT_EQ(r->out, std::filesystem::read_symlink("/proc/self/exe").string() + "\n");
    } else {
      EXPECT_FALSE(r->status.ok());
      EXPECT_EQ(r->out, "");
    }
  }
}

}  // namespace
}  // namespace mesh::runtime::security
