// The default seccomp profile: its syscall table, its rules, and what the compiled BPF program
// (exactly what ApplyInChild loads) returns for every syscall, evaluated in userspace.
#include "runtime/security/seccomp.h"

#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/security/syscalls.h"
#include "runtime/spec/defaults.h"
#include "tests/unit/runtime/security/seccomp_bpf_eval.h"

namespace mesh::runtime::security {
namespace {

using seccomp_testing::Classify;
using seccomp_testing::EvaluateSeccompBpf;
using seccomp_testing::SyscallData;
using seccomp_testing::Verdict;
using seccomp_testing::VerdictName;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr CapMask Bit(int cap) { return CapMask{1} << cap; }

CapMask DockerCaps() { return *CapabilityMask(DefaultCapabilities()); }

// The TESTING.md list of what Docker's profile with Docker's capabilities blocks.
const std::vector<std::string>& MustBeBlocked() {
  static const auto* names = new std::vector<std::string>{"mount",
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
                                                          "clone3"};
  return *names;
}

Verdict Eval(const SeccompProgram& p, int nr, std::array<uint64_t, 6> args = {},
             uint32_t arch = AUDIT_ARCH_X86_64) {
  absl::StatusOr<uint32_t> action =
      EvaluateSeccompBpf(p.instructions(), SyscallData(nr, args, arch));
  EXPECT_TRUE(action.ok()) << action.status();
  return action.ok() ? Classify(*action) : Verdict::kOther;
}

SeccompProgram Compile(CapMask caps) {
  absl::StatusOr<SeccompProgram> p = CompileSeccompPolicy(DefaultSeccompPolicy(caps));
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : SeccompProgram();
}

// Known syscalls the program refuses (EPERM or ENOSYS) with all arguments zero.
std::set<std::string> Blocked(const SeccompProgram& p) {
  std::set<std::string> out;
  for (const SyscallInfo& s : KnownSyscalls()) {
    Verdict v = Eval(p, s.number);
    EXPECT_TRUE(v == Verdict::kAllow || v == Verdict::kEperm || v == Verdict::kEnosys)
        << s.name << ": " << VerdictName(v);
    if (v != Verdict::kAllow) out.insert(s.name);
  }
  return out;
}

int Nr(const char* name) {
  int nr = SyscallNumber(name);
  EXPECT_GE(nr, 0) << name;
  return nr;
}

TEST(SyscallTable, MatchesLibseccompAndTheHeaders) {
  absl::Span<const SyscallInfo> table = KnownSyscalls();
  EXPECT_EQ(table.size(), 362u);
  EXPECT_EQ(table.back().number, kHighestKnownSyscall);
  std::set<std::string> names;
  for (size_t i = 0; i < table.size(); ++i) {
    if (i > 0) {
      EXPECT_LT(table[i - 1].number, table[i].number);
    }
    EXPECT_TRUE(names.insert(table[i].name).second) << table[i].name;
    EXPECT_EQ(seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, table[i].name), table[i].number)
        << table[i].name;
    EXPECT_STREQ(SyscallName(table[i].number), table[i].name);
    EXPECT_EQ(SyscallNumber(table[i].name), table[i].number);
  }
  EXPECT_EQ(SyscallNumber("read"), __NR_read);
  EXPECT_EQ(SyscallNumber("clone3"), __NR_clone3);
  EXPECT_EQ(SyscallNumber("set_mempolicy_home_node"), 450);
  EXPECT_EQ(SyscallName(335), nullptr);
  EXPECT_EQ(SyscallName(451), nullptr);
  EXPECT_EQ(SyscallNumber("no_such_call"), -1);
}

TEST(DefaultPolicy, AllowListContainsTheCommonCallsAndOmitsTheDangerousOnes) {
  SeccompPolicy policy = DefaultSeccompPolicy(DockerCaps());
  std::vector<int> allowed = UnconditionallyAllowed(policy);
  for (const char* name :
       {"read",    "write",  "openat", "close",      "execve",    "execveat", "exit_group",
        "mmap",    "futex",  "wait4",  "kill",       "setresuid", "capset",   "prctl",
        "seccomp", "chroot", "ptrace", "arch_prctl", "io_setup",  "mknodat"}) {
    EXPECT_THAT(allowed, Contains(Nr(name))) << name;
  }
  for (const std::string& name : MustBeBlocked()) {
    EXPECT_THAT(allowed, Not(Contains(Nr(name.c_str())))) << name;
  }
  // Allowed only with filtered arguments.
  for (const char* name : {"clone", "socket", "personality"}) {
    EXPECT_THAT(allowed, Not(Contains(Nr(name)))) << name;
    EXPECT_TRUE(std::any_of(policy.rules.begin(), policy.rules.end(), [&](const SeccompRule& r) {
      return r.syscall == Nr(name) && !r.all_of.empty();
    })) << name;
  }
  EXPECT_TRUE(std::any_of(policy.rules.begin(), policy.rules.end(), [](const SeccompRule& r) {
    return r.syscall == Nr("clone3") && r.action == SeccompAction::kErrnoNosys;
  }));
}

TEST(DefaultPolicy, CapabilitiesUnlockDockersExtras) {
  const std::vector<int> base = UnconditionallyAllowed(DefaultSeccompPolicy(DockerCaps()));
  struct Case {
    int cap;
    std::vector<const char*> syscalls;
  };
  for (const Case& c :
       std::vector<Case>{{CAP_SYS_ADMIN,
                          {"mount", "umount2", "unshare", "setns", "clone", "clone3", "bpf",
                           "fsopen", "sethostname", "syslog", "perf_event_open"}},
                         {CAP_SYS_PTRACE, {"kcmp", "pidfd_getfd", "process_madvise"}},
                         {CAP_SYS_MODULE, {"init_module", "finit_module", "delete_module"}},
                         {CAP_SYS_TIME, {"settimeofday", "clock_settime"}},
                         {CAP_SYS_BOOT, {"reboot"}},
                         {CAP_SYS_RAWIO, {"iopl", "ioperm"}},
                         {CAP_SYS_NICE, {"mbind", "set_mempolicy", "get_mempolicy"}},
                         {CAP_DAC_READ_SEARCH, {"open_by_handle_at"}},
                         {CAP_SYS_PACCT, {"acct"}},
                         {CAP_SYS_TTY_CONFIG, {"vhangup"}},
                         {CAP_SYSLOG, {"syslog"}},
                         {CAP_BPF, {"bpf"}},
                         {CAP_PERFMON, {"perf_event_open"}}}) {
    std::vector<int> with = UnconditionallyAllowed(DefaultSeccompPolicy(DockerCaps() | Bit(c.cap)));
    for (const char* name : c.syscalls) {
      EXPECT_THAT(base, Not(Contains(Nr(name)))) << name;
      EXPECT_THAT(with, Contains(Nr(name))) << name << " with " << CapabilityName(c.cap);
    }
  }
  // Never, whatever the capabilities (as in Docker's profile).
  std::vector<int> all = UnconditionallyAllowed(DefaultSeccompPolicy(AllCapabilities()));
  for (const char* name : {"pivot_root", "keyctl", "add_key", "request_key", "kexec_load",
                           "userfaultfd", "io_uring_setup", "swapon", "uselib"}) {
    EXPECT_THAT(all, Not(Contains(Nr(name)))) << name;
  }
  // Dropping SYS_CHROOT takes chroot away.
  std::vector<int> no_chroot =
      UnconditionallyAllowed(DefaultSeccompPolicy(DockerCaps() & ~Bit(CAP_SYS_CHROOT)));
  EXPECT_THAT(no_chroot, Not(Contains(Nr("chroot"))));
}

TEST(CompiledProgram, DockerCapsBlock67Of362) {
  SeccompProgram p = Compile(DockerCaps());
  ASSERT_FALSE(p.instructions().empty());
  EXPECT_LE(p.instructions().size(), static_cast<size_t>(BPF_MAXINSNS));
  std::set<std::string> blocked = Blocked(p);
  std::cout << blocked.size() << " of " << KnownSyscalls().size()
            << " x86_64 syscalls blocked: " << absl::StrJoin(blocked, " ") << "\n";
  EXPECT_EQ(blocked.size(), 67u);
  for (const std::string& name : MustBeBlocked()) EXPECT_THAT(blocked, Contains(name));

  // The blocked set is exactly the profile's: whatever no rule allows with zero arguments.
  SeccompPolicy policy = DefaultSeccompPolicy(DockerCaps());
  std::set<std::string> expected;
  for (const SyscallInfo& s : KnownSyscalls()) {
    bool allowed = std::any_of(policy.rules.begin(), policy.rules.end(), [&](const SeccompRule& r) {
      return r.syscall == s.number && r.action == SeccompAction::kAllow &&
             std::all_of(r.all_of.begin(), r.all_of.end(),
                         [](const SeccompArgMatch& m) { return m.value == 0; });
    });
    if (!allowed) expected.insert(s.name);
  }
  EXPECT_EQ(blocked, expected);

  // The strict profile's capabilities gate no syscall, so it blocks the same set.
  EXPECT_EQ(Blocked(Compile(*CapabilityMask(StrictCapabilities()))), blocked);
}

TEST(CompiledProgram, ActionsForTheInterestingCalls) {
  SeccompProgram p = Compile(DockerCaps());
  EXPECT_EQ(Eval(p, Nr("mount")), Verdict::kEperm);
  EXPECT_EQ(Eval(p, Nr("unshare"), {CLONE_NEWUSER}), Verdict::kEperm);
  EXPECT_EQ(Eval(p, Nr("clone3")), Verdict::kEnosys);
  EXPECT_EQ(Eval(p, Nr("read")), Verdict::kAllow);
  EXPECT_EQ(Eval(p, Nr("execve")), Verdict::kAllow);
  EXPECT_EQ(Eval(p, Nr("openat")), Verdict::kAllow);

  const int clone = Nr("clone");
  EXPECT_EQ(Eval(p, clone, {SIGCHLD}), Verdict::kAllow);
  EXPECT_EQ(Eval(p, clone,
                 {CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                  CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID}),
            Verdict::kAllow);
  for (uint64_t flag : {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
                        CLONE_NEWNET, CLONE_NEWCGROUP}) {
    EXPECT_EQ(Eval(p, clone, {flag | SIGCHLD}), Verdict::kEperm) << std::hex << flag;
  }

  const int socket = Nr("socket");
  EXPECT_EQ(Eval(p, socket, {AF_INET, SOCK_STREAM}), Verdict::kAllow);
  EXPECT_EQ(Eval(p, socket, {AF_INET6, SOCK_DGRAM}), Verdict::kAllow);
  EXPECT_EQ(Eval(p, socket, {AF_UNIX, SOCK_STREAM}), Verdict::kAllow);
  EXPECT_EQ(Eval(p, socket, {AF_NETLINK, SOCK_RAW}), Verdict::kAllow);
  EXPECT_EQ(Eval(p, socket, {AF_VSOCK, SOCK_STREAM}), Verdict::kEperm);
  // The kernel reads the family as an int: junk in the high half must not get VSOCK past.
  EXPECT_EQ(Eval(p, socket, {(uint64_t{1} << 32) | AF_VSOCK}), Verdict::kEperm);
  EXPECT_EQ(Eval(p, socket, {(uint64_t{1} << 32) | AF_INET}), Verdict::kAllow);

  const int personality = Nr("personality");
  for (uint64_t ok : {0x0ull, 0x8ull, 0x20000ull, 0x20008ull, 0xffffffffull}) {
    EXPECT_EQ(Eval(p, personality, {ok}), Verdict::kAllow) << std::hex << ok;
  }
  EXPECT_EQ(Eval(p, personality, {0x0400000 /* READ_IMPLIES_EXEC */}), Verdict::kEperm);
  EXPECT_EQ(Eval(p, personality, {0x0040000 /* ADDR_NO_RANDOMIZE */}), Verdict::kEperm);
}

TEST(CompiledProgram, UnknownNumbersGetEnosysAndOtherArchitecturesAreKilled) {
  SeccompProgram p = Compile(DockerCaps());
  // A hole in the table (uretprobe is 335 since Linux 6.11), and numbers above the last known.
  for (int nr : {335, 336, 400, 423, 451, 452, 462, 500, 1000, 0x3fffffff}) {
    EXPECT_EQ(Eval(p, nr), Verdict::kEnosys) << nr;
  }
  EXPECT_EQ(Eval(p, 334 /* rseq */), Verdict::kAllow);
  EXPECT_EQ(Eval(p, 424 /* pidfd_send_signal */), Verdict::kAllow);
  EXPECT_EQ(Eval(p, 450 /* set_mempolicy_home_node */), Verdict::kEperm);
  // x32 numbers and i386 calls: killed.
  EXPECT_EQ(Eval(p, 0x40000000 | 0), Verdict::kKillProcess);
  EXPECT_EQ(Eval(p, 0x40000000 | 165 /* mount */), Verdict::kKillProcess);
  EXPECT_EQ(Eval(p, 3, {}, AUDIT_ARCH_I386), Verdict::kKillProcess);
  EXPECT_EQ(Eval(p, 500, {}, AUDIT_ARCH_I386), Verdict::kKillProcess);
}

TEST(CompiledProgram, SysAdminLiftsTheCloneFilter) {
  SeccompProgram p = Compile(DockerCaps() | Bit(CAP_SYS_ADMIN));
  EXPECT_EQ(Eval(p, Nr("clone"), {CLONE_NEWUSER | CLONE_NEWNET}), Verdict::kAllow);
  EXPECT_EQ(Eval(p, Nr("clone3")), Verdict::kAllow);
  EXPECT_EQ(Eval(p, Nr("mount")), Verdict::kAllow);
  EXPECT_EQ(Eval(p, Nr("pivot_root")), Verdict::kEperm);
  EXPECT_LT(Blocked(p).size(), 67u);
}

TEST(CompilePolicy, RefusesBadRules) {
  SeccompPolicy bad;
  bad.rules.push_back({400, SeccompAction::kAllow, {}});
  absl::StatusOr<SeccompProgram> p = CompileSeccompPolicy(bad);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("400"));

  bad.rules = {{Nr("socket"), SeccompAction::kAllow, {{6, 1, 1}}}};
  p = CompileSeccompPolicy(bad);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("\"socket\""));

  // An empty policy is valid: everything known is EPERM, everything else ENOSYS.
  p = CompileSeccompPolicy(SeccompPolicy{});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(Eval(*p, Nr("read")), Verdict::kEperm);
  EXPECT_EQ(Eval(*p, 999), Verdict::kEnosys);
}

}  // namespace
}  // namespace mesh::runtime::security
