// Prepare's validation (no fork, no kernel change) and the fd / dumpable helpers, which only
// touch the process they run in (a forked child here).
#include "runtime/security/process_security.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/spec/defaults.h"

namespace mesh::runtime::security {
namespace {

using ::testing::HasSubstr;

constexpr CapMask Bit(int cap) { return CapMask{1} << cap; }

// A runtime like the one on these machines: root with every capability but CAP_SYS_RESOURCE.
RuntimeCapabilities FakeRuntime(bool sys_resource = false) {
  RuntimeCapabilities rc;
  rc.last_cap = CAP_LAST_CAP;
  rc.bounding = AllCapabilities() & ~(sys_resource ? 0 : Bit(CAP_SYS_RESOURCE));
  rc.permitted = rc.bounding;
  rc.effective = rc.bounding;
  return rc;
}

Process DefaultProcess() {
  Process p;
  p.args = {"/bin/true"};
  p.capabilities = CapabilitiesFrom(DefaultCapabilities());
  return p;
}

absl::Status PrepareStatus(const Process& p, bool privileged = false,
                           const RuntimeCapabilities& rc = FakeRuntime()) {
  return Prepare(p, SeccompProfile::kDefault, privileged, rc).status();
}

TEST(Prepare, DefaultsGiveDockersShape) {
  absl::StatusOr<PreparedSecurity> sec =
      Prepare(DefaultProcess(), SeccompProfile::kDefault, false, FakeRuntime());
  ASSERT_TRUE(sec.ok()) << sec.status();
  EXPECT_EQ(sec->capabilities().bounding, 0xa80425fbu);
  EXPECT_EQ(sec->capabilities().permitted, 0xa80425fbu);
  EXPECT_EQ(sec->capabilities().effective, 0xa80425fbu);
  EXPECT_EQ(sec->capabilities().inheritable, 0u);
  EXPECT_EQ(sec->capabilities().ambient, 0u);
  EXPECT_TRUE(sec->no_new_privileges());
  ASSERT_NE(sec->seccomp(), nullptr);
  EXPECT_GT(sec->seccomp()->instructions().size(), 300u);
  EXPECT_EQ(sec->uid(), 0u);
  EXPECT_TRUE(sec->rlimits().empty());

  // Move-only, and the program moves with it.
  PreparedSecurity moved = *std::move(sec);
  ASSERT_NE(moved.seccomp(), nullptr);
  EXPECT_EQ(moved.seccomp()->fprog().len, moved.seccomp()->instructions().size());
  EXPECT_EQ(moved.seccomp()->fprog().filter, moved.seccomp()->instructions().data());
}

TEST(Prepare, UnconfinedAndNoNewPrivsOff) {
  Process p = DefaultProcess();
  p.no_new_privileges = false;
  absl::StatusOr<PreparedSecurity> sec =
      Prepare(p, SeccompProfile::kUnconfined, false, FakeRuntime());
  ASSERT_TRUE(sec.ok()) << sec.status();
  EXPECT_EQ(sec->seccomp(), nullptr);
  EXPECT_FALSE(sec->no_new_privileges());
}

TEST(Prepare, PrivilegedGetsEverythingTheRuntimeHoldsAndNoSeccomp) {
  Process p = DefaultProcess();
  p.capabilities->effective = {"CAP_NOT_A_THING"};  // ignored when privileged
  absl::StatusOr<PreparedSecurity> sec = Prepare(p, SeccompProfile::kDefault, true, FakeRuntime());
  ASSERT_TRUE(sec.ok()) << sec.status();
  const CapMask all = AllCapabilities() & ~Bit(CAP_SYS_RESOURCE);
  EXPECT_EQ(sec->capabilities().bounding, all);
  EXPECT_EQ(sec->capabilities().permitted, all);
  EXPECT_EQ(sec->capabilities().effective, all);
  EXPECT_EQ(sec->capabilities().ambient, 0u);
  EXPECT_EQ(sec->seccomp(), nullptr);
  EXPECT_TRUE(sec->no_new_privileges());

  // A kernel older than the headers: only what it knows.
  RuntimeCapabilities old = FakeRuntime();
  old.last_cap = CAP_AUDIT_READ;
  sec = Prepare(p, SeccompProfile::kDefault, true, old);
  ASSERT_TRUE(sec.ok());
  EXPECT_EQ(sec->capabilities().bounding, (Bit(CAP_AUDIT_READ + 1) - 1) & ~Bit(CAP_SYS_RESOURCE));
}

TEST(Prepare, UnknownCapabilityNamesTheSet) {
  Process p = DefaultProcess();
  p.capabilities->inheritable = {"CAP_FLY"};
  absl::Status s = PrepareStatus(p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("\"inheritable\""));
  EXPECT_THAT(s.message(), HasSubstr("\"CAP_FLY\""));
}

TEST(Prepare, RefusesSetsTheKernelCannotHold) {
  struct Case {
    const char* what;
    std::function<void(CapabilitySets&)> change;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"effective outside permitted", [](CapabilitySets& c) { c.permitted.pop_back(); },
       "effective holds CAP_"},
      {"permitted outside bounding",
       [](CapabilitySets& c) {
         c.permitted.push_back("CAP_NET_ADMIN");
         c.effective.push_back("CAP_NET_ADMIN");
       },
       "permitted holds CAP_NET_ADMIN outside bounding"},
      {"inheritable outside bounding", [](CapabilitySets& c) { c.inheritable = {"CAP_SYS_ADMIN"}; },
       "inheritable holds CAP_SYS_ADMIN outside bounding"},
      {"ambient not inheritable", [](CapabilitySets& c) { c.ambient = {"CAP_KILL"}; },
       "ambient holds CAP_KILL that is not both permitted and inheritable"},
      {"root with bounding wider than permitted",
       [](CapabilitySets& c) { c.bounding.push_back("CAP_NET_ADMIN"); },
       "would gain CAP_NET_ADMIN"},
      {"root with effective narrower than permitted",
       [](CapabilitySets& c) { c.effective = {"CAP_CHOWN"}; }, "uid 0"},
  };
  for (const Case& c : cases) {
    Process p = DefaultProcess();
    c.change(*p.capabilities);
    absl::Status s = PrepareStatus(p);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.what << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.what;
  }
}

TEST(Prepare, NonRootSets) {
  // Docker's shape for a non-root user is accepted (after execve a program without file
  // capabilities keeps only its ambient set, i.e. nothing).
  Process p = DefaultProcess();
  p.user = {1000, 1000, {1001, 1002}};
  absl::StatusOr<PreparedSecurity> sec = Prepare(p, SeccompProfile::kDefault, false, FakeRuntime());
  ASSERT_TRUE(sec.ok()) << sec.status();
  EXPECT_EQ(sec->uid(), 1000u);
  EXPECT_EQ(sec->gid(), 1000u);
  EXPECT_EQ(sec->additional_gids(), (std::vector<gid_t>{1001, 1002}));

  // Sets that keep a capability across execve, as a spec may give them: raised through
  // ambient (which needs it in permitted and inheritable too).
  p.capabilities = CapabilitySets{.bounding = DefaultCapabilities(),
                                  .effective = {"CAP_NET_BIND_SERVICE"},
                                  .inheritable = {"CAP_NET_BIND_SERVICE"},
                                  .permitted = {"CAP_NET_BIND_SERVICE"},
                                  .ambient = {"CAP_NET_BIND_SERVICE"}};
  sec = Prepare(p, SeccompProfile::kDefault, false, FakeRuntime());
  ASSERT_TRUE(sec.ok()) << sec.status();
  EXPECT_EQ(sec->capabilities().ambient, Bit(CAP_NET_BIND_SERVICE));
  EXPECT_EQ(sec->capabilities().bounding, 0xa80425fbu);
}

TEST(Prepare, EmptySetsMeanNoCapabilityAndUnsetIsRefused) {
  Process p = DefaultProcess();
  p.capabilities.emplace();
  for (uint32_t uid : {0u, 1000u}) {
    p.user.uid = uid;
    absl::StatusOr<PreparedSecurity> sec =
        Prepare(p, SeccompProfile::kDefault, false, FakeRuntime());
    ASSERT_TRUE(sec.ok()) << uid << ": " << sec.status();
    EXPECT_EQ(sec->capabilities(), CapabilityMasks{}) << uid;
    ASSERT_NE(sec->seccomp(), nullptr);
  }

  // Unset: the defaults are WithDefaults' to fill in, never guessed here.
  p.capabilities.reset();
  absl::Status s = PrepareStatus(p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr("WithDefaults"));
  // Privileged ignores the sets, so it needs none.
  EXPECT_TRUE(PrepareStatus(p, /*privileged=*/true).ok());
}

TEST(Prepare, CapabilitiesTheRuntimeLacksAreAFailedPrecondition) {
  Process p = DefaultProcess();
  p.capabilities = CapabilitiesFrom({"CAP_CHOWN", "CAP_SYS_RESOURCE"});
  absl::Status s = PrepareStatus(p);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("CAP_SYS_RESOURCE"));
  EXPECT_THAT(s.message(), Not(HasSubstr("CAP_CHOWN")));
  EXPECT_TRUE(PrepareStatus(p, false, FakeRuntime(/*sys_resource=*/true)).ok());

  // Unknown to the running kernel.
  RuntimeCapabilities old = FakeRuntime(true);
  old.last_cap = CAP_AUDIT_READ;
  p.capabilities = CapabilitiesFrom({"CAP_BPF"});
  s = PrepareStatus(p, false, old);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("CAP_BPF"));
}

TEST(Prepare, UserValidation) {
  Process p = DefaultProcess();
  p.user.uid = 4294967295u;
  EXPECT_EQ(PrepareStatus(p).code(), absl::StatusCode::kInvalidArgument);
  p = DefaultProcess();
  p.user.gid = 4294967295u;
  EXPECT_EQ(PrepareStatus(p).code(), absl::StatusCode::kInvalidArgument);
  p = DefaultProcess();
  p.user.additional_gids = {5, 4294967295u};
  EXPECT_EQ(PrepareStatus(p).code(), absl::StatusCode::kInvalidArgument);
  p = DefaultProcess();
  p.user.additional_gids.assign(65537, 100);
  absl::Status s = PrepareStatus(p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("65537"));
}

TEST(Prepare, RlimitValidation) {
  Process p = DefaultProcess();
  p.rlimits = {{"RLIMIT_NOFILE", 256, 512}, {"nproc", 100, 100}};
  absl::StatusOr<PreparedSecurity> sec = Prepare(p, SeccompProfile::kDefault, false, FakeRuntime());
  ASSERT_TRUE(sec.ok()) << sec.status();
  ASSERT_EQ(sec->rlimits().size(), 2u);
  EXPECT_EQ(sec->rlimits()[0].resource, RLIMIT_NOFILE);

  p.rlimits = {{"RLIMIT_NOFILES", 1, 1}};
  EXPECT_EQ(PrepareStatus(p).code(), absl::StatusCode::kInvalidArgument);
  p.rlimits = {{"RLIMIT_NOFILE", 2, 1}};
  EXPECT_EQ(PrepareStatus(p).code(), absl::StatusCode::kInvalidArgument);

  rlimit current{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &current), 0);
  p.rlimits = {{"RLIMIT_NOFILE", 64, current.rlim_max + 1}};
  absl::Status s = PrepareStatus(p);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_THAT(s.message(), HasSubstr("CAP_SYS_RESOURCE"));
  EXPECT_TRUE(PrepareStatus(p, false, FakeRuntime(/*sys_resource=*/true)).ok());
}

// Runs `body` in a forked child and returns its exit code (the body's return value).
int InChild(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) >= 0; }
bool IsCloexec(int fd) { return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

TEST(FdHygiene, CloseFdsExcept0to2KeepsOnlyTheListed) {
  EXPECT_EQ(InChild([] {
              // Make sure there are fds to close, some of them far up.
              int a = open("/dev/null", O_RDONLY);
              int b = open("/dev/null", O_RDONLY);
              int keep = open("/dev/null", O_RDONLY);  // not CLOEXEC
              int far = fcntl(a, F_DUPFD, 200);
              int keep_far = fcntl(a, F_DUPFD, 300);
              if (a < 3 || b < 3 || keep < 3 || far != 200 || keep_far != 300) return 10;
              int keep_list[] = {keep_far, 1, keep};
              if (!CloseFdsExcept0to2(keep_list).ok()) return 11;
              if (!IsOpen(0) || !IsOpen(1) || !IsOpen(2)) return 12;
              if (IsOpen(a) || IsOpen(b) || IsOpen(far)) return 13;
              if (!IsOpen(keep) || !IsOpen(keep_far)) return 14;
              if (!IsCloexec(keep) || !IsCloexec(keep_far)) return 15;
              if (IsCloexec(1)) return 16;  // 0-2 are left alone
              for (int fd = 3; fd < 400; ++fd) {
                if (fd != keep && fd != keep_far && IsOpen(fd)) return 17;
              }
              if (!CloseFdsExcept0to2().ok()) return 18;
              if (IsOpen(keep) || IsOpen(keep_far) || !IsOpen(2)) return 19;
              return 0;
            }),
            0);
}

TEST(FdHygiene, SetCloseOnExecFrom3) {
  EXPECT_EQ(InChild([] {
              int a = open("/dev/null", O_RDONLY);
              int far = fcntl(a, F_DUPFD, 250);
              if (a < 3 || IsCloexec(a) || far != 250) return 10;
              if (!SetCloseOnExecFrom3().ok()) return 11;
              if (!IsOpen(a) || !IsCloexec(a) || !IsCloexec(far)) return 12;
              if (IsCloexec(0) || IsCloexec(1) || IsCloexec(2)) return 13;
              return 0;
            }),
            0);
}

TEST(Dumpable, MakeNonDumpable) {
  EXPECT_EQ(InChild([] {
              if (prctl(PR_GET_DUMPABLE) != 1) return 10;
              if (!MakeNonDumpable().ok()) return 11;
              return prctl(PR_GET_DUMPABLE) == 0 ? 0 : 12;
            }),
            0);
}

}  // namespace
}  // namespace mesh::runtime::security
