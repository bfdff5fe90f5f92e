// The container lifecycle through the runtime and its shim, as root in the sandbox: isolation,
// writes landing in the upper dir, exit codes, logs, stop with a grace period, a shim that
// outlives its creator, re-attaching from the state dir, and nothing left after delete.
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/atomic_file.h"
#include "base/child_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/container/cgroup_access.h"
#include "runtime/container/runtime.h"
#include "runtime/image/image_store.h"
#include "runtime/security/capabilities.h"
#include "runtime/spec/defaults.h"
#include "tests/support/busybox_layer.h"
#include "tests/support/container_fixture.h"
#include "tests/support/sandbox.h"

namespace mesh::runtime {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ContainerTest : public ::mesh::testing::ContainerFixture {
 protected:
  ContainerTest() : ContainerFixture("mesh-test-containers") {}
};

TEST_F(ContainerTest, OwnHostnamePidsMountsAndFiles) {
  ASSERT_TRUE(WriteFileAtomically("/var/lib/mesh/host-canary", "host\n", 0644).ok());
  ContainerState s = Run(Spec(
      "iso", {"sh", "-c",
              "hostname; echo pid=$$; ls /proc | grep -c '^[0-9]' ; cat /etc/image-file; "
              "test -e /var/lib/mesh/host-canary && echo LEAK; grep -c overlay /proc/mounts"}));
  EXPECT_EQ(s.status, Status::kStopped);
  EXPECT_EQ(s.exit_code, 0);
  std::string out = Output("iso");
  EXPECT_THAT(out, HasSubstr("iso\n"));
  EXPECT_THAT(out, HasSubstr("pid=1\n"));
  EXPECT_THAT(out, HasSubstr("\n1\n"));  // one process visible in /proc (grep runs as a child... )
  EXPECT_THAT(out, HasSubstr("from the image\n"));
  EXPECT_THAT(out, Not(HasSubstr("LEAK")));
  ASSERT_TRUE(runtime_->Delete("iso").ok());
}

TEST_F(ContainerTest, WritesLandInTheUpperDirAndNeverInTheImage) {
  ContainerState s =
      Run(Spec("writer", {"sh", "-c", "echo new > /made-here && echo changed > /etc/image-file"}));
  EXPECT_EQ(s.exit_code, 0);
  const ContainerPaths paths = runtime_->PathsOf("writer");
  EXPECT_EQ(*ReadFile(paths.upper() + "/made-here"), "new\n");
  EXPECT_EQ(*ReadFile(paths.upper() + "/etc/image-file"), "changed\n");
  EXPECT_EQ(*ReadFile(layer_ + "/etc/image-file"), "from the image\n");
  EXPECT_FALSE(std::filesystem::exists(layer_ + "/made-here"));
  ASSERT_TRUE(runtime_->Delete("writer").ok());
}

TEST_F(ContainerTest, RecreateKeepsTheWritableLayerAndTheLog) {
  // As `docker start` of an exited container: each run sees the files of the runs before it,
  // and its output follows theirs in the same log.
  const std::vector<std::string> count = {"sh", "-c", "echo run >> /runs; wc -l < /runs"};
  ContainerState first = Run(Spec("again", count));
  ASSERT_EQ(first.exit_code, 0);
  auto second = runtime_->Recreate(Spec("again", count));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->status, Status::kCreated);
  EXPECT_NE(second->init.pid, first.init.pid);
  ASSERT_TRUE(runtime_->Start("again").ok());
  ASSERT_TRUE(runtime_->Wait("again", absl::Seconds(30)).ok());
  EXPECT_EQ(Output("again"), "1\n2\n");

  // Refused while it runs (and Create refuses a taken id, data or not).
  ASSERT_TRUE(runtime_->Recreate(Spec("again", {"sleep", "100"})).ok());
  ASSERT_TRUE(runtime_->Start("again").ok());
  auto running = runtime_->Recreate(Spec("again", count));
  EXPECT_TRUE(absl::IsFailedPrecondition(running.status())) << running.status();
  EXPECT_THAT(std::string(running.status().message()), HasSubstr("running"));
  EXPECT_TRUE(absl::IsAlreadyExists(runtime_->Create(Spec("again", count)).status()));
  ASSERT_TRUE(runtime_->Stop("again", absl::Seconds(1)).ok());

  // After a reboot only the data is left (the run directory is on a tmpfs): listed, made
  // again from it, and a Delete of data alone removes it.
  const ContainerPaths paths = runtime_->PathsOf("again");
  std::filesystem::remove_all(paths.run_dir);
  EXPECT_THAT(runtime_->List(), ::testing::Contains("again"));
  EXPECT_TRUE(absl::IsNotFound(runtime_->State("again").status()));
  EXPECT_TRUE(absl::IsAlreadyExists(runtime_->Create(Spec("again", count)).status()));
  ASSERT_TRUE(runtime_->Recreate(Spec("again", count)).ok());
  ASSERT_TRUE(runtime_->Start("again").ok());
  ASSERT_TRUE(runtime_->Wait("again", absl::Seconds(30)).ok());
  EXPECT_EQ(Output("again"), "1\n2\n3\n");
  ASSERT_TRUE(runtime_->Stop("again", absl::Seconds(1)).ok());
  std::filesystem::remove_all(paths.run_dir);
  ASSERT_TRUE(runtime_->Delete("again").ok());
  EXPECT_FALSE(std::filesystem::exists(paths.data_dir));
  EXPECT_TRUE(runtime_->List().empty());
  EXPECT_TRUE(absl::IsNotFound(runtime_->Delete("again")));
}

// A container's process starts with every signal at its default and none blocked, also when
// whoever made the container ignored some (a shell's background job ignores SIGINT; execve
// keeps what is ignored), so `kill -INT` reaches it.
TEST_F(ContainerTest, SignalsStartAtTheirDefaults) {
  struct sigaction ignore {
  }, old_int{}, old_quit{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGQUIT, &ignore, &old_quit);
  ContainerState s = Run(Spec("signals", {"grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"}));
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_EQ(Output("signals"), "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
  ASSERT_TRUE(runtime_->Delete("signals").ok());
}

// Sysctls of the container's own namespaces are set in them and nowhere else; others are
// refused before anything is made.
TEST_F(ContainerTest, SysctlsOfItsOwnNamespacesOnly) {
  const std::string host_forward = ReadFile("/proc/sys/net/ipv4/ip_forward").value_or("?");
  const std::string host_shmmax = ReadFile("/proc/sys/kernel/shmmax").value_or("?");
  ContainerSpec spec =
      Spec("tuned", {"sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax"});
  spec.sysctls = {{"net.ipv4.ip_forward", "1"}, {"kernel.shmmax", "123456789"}};
  ContainerState s = Run(spec);
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_EQ(Output("tuned"), "1\n123456789\n");
  EXPECT_EQ(ReadFile("/proc/sys/net/ipv4/ip_forward").value_or("?"), host_forward);
  EXPECT_EQ(ReadFile("/proc/sys/kernel/shmmax").value_or("?"), host_shmmax);
  ASSERT_TRUE(runtime_->Delete("tuned").ok());

  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"vm.swappiness", "10"},
                                                        {"kernel.hostname", "x"},
                                                        {"net/ipv4/ip_forward", "1"},
                                                        {"net..x", "1"},
                                                        {"net.ipv4.ip_forward", ""},
                                                        {"net.ipv4.ip_forward", "1\nkernel.x=2"}}) {
    ContainerSpec bad = Spec("untuned", {"true"});
    bad.sysctls = {{name, value}};
    auto created = runtime_->Create(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(created.status())) << name << ": " << created.status();
    EXPECT_THAT(std::string(created.status().message()), HasSubstr("sysctl")) << name;
  }
  EXPECT_TRUE(runtime_->List().empty());
}

TEST_F(ContainerTest, ExitCodeAndStderrComeBack) {
  ContainerState s = Run(Spec("exit3", {"sh", "-c", "echo oops >&2; exit 3"}));
  EXPECT_EQ(s.exit_code, 3);
  EXPECT_EQ(s.signal, 0);
  auto log = ReadFile(runtime_->PathsOf("exit3").log());
  ASSERT_TRUE(log.ok());
  EXPECT_THAT(*log, HasSubstr(" stderr F oops\n"));
  ASSERT_TRUE(runtime_->Delete("exit3").ok());
}

TEST_F(ContainerTest, AFailedExecIsAClearErrorAtStart) {
  ASSERT_TRUE(runtime_->Create(Spec("noexec", {"/no/such/program"})).ok());
  absl::Status started = runtime_->Start("noexec");
  EXPECT_TRUE(absl::IsFailedPrecondition(started)) << started;
  EXPECT_THAT(std::string(started.message()), HasSubstr("/no/such/program"));
  ASSERT_TRUE(runtime_->Wait("noexec", absl::Seconds(30)).ok());
  ASSERT_TRUE(runtime_->Delete("noexec").ok());
}

TEST_F(ContainerTest, BadSpecChangesNothing) {
  auto created = runtime_->Create(Spec("bad", {}));
  EXPECT_TRUE(absl::IsInvalidArgument(created.status())) << created.status();
  created = runtime_->Create(Spec("../bad", {"true"}));
  EXPECT_TRUE(absl::IsInvalidArgument(created.status())) << created.status();
  EXPECT_TRUE(runtime_->List().empty());
  EXPECT_FALSE(std::filesystem::exists(runtime_->PathsOf("bad").data_dir));
}

TEST_F(ContainerTest, StopEscalatesToSigkillAfterTheGracePeriod) {
  ASSERT_TRUE(
      runtime_->Create(Spec("stubborn", {"sh", "-c", "trap '' TERM; while :; do sleep 1; done"}))
          .ok());
  ASSERT_TRUE(runtime_->Start("stubborn").ok());
  const absl::Time begin = absl::Now();
  auto stopped = runtime_->Stop("stubborn", absl::Milliseconds(500));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_GE(absl::Now() - begin, absl::Milliseconds(500));
  EXPECT_EQ(stopped->signal, SIGKILL);
  ASSERT_TRUE(runtime_->Delete("stubborn").ok());
}

TEST_F(ContainerTest, ShimOutlivesItsCreatorAndANewProcessReattaches) {
  // A child process creates and starts the container, then dies by SIGKILL.
  pid_t creator = fork();
  ASSERT_GE(creator, 0);
  if (creator == 0) {
    if (!runtime_->Create(Spec("survivor", {"sleep", "1000"})).ok()) _exit(1);
    if (!runtime_->Start("survivor").ok()) _exit(2);
    raise(SIGKILL);
    _exit(3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(creator, &status, 0), creator);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

  // Anyone can pick it up from the state dir alone.
  Runtime fresh(RuntimeOptions{
      .run_root = "/run/mesh", .data_root = "/var/lib/mesh", .shim_path = MESH_SHIM_PATH});
  auto state = fresh.State("survivor");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->status, Status::kRunning);
  EXPECT_EQ(kill(state->init.pid, 0), 0);
  auto stopped = fresh.Stop("survivor", absl::Seconds(1));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->status, Status::kStopped);
  const pid_t shim = state->shim.pid;
  ASSERT_TRUE(fresh.Delete("survivor").ok());
  // Nothing left: no state, no shim.
  EXPECT_FALSE(std::filesystem::exists(fresh.PathsOf("survivor").run_dir));
  EXPECT_FALSE(std::filesystem::exists(fresh.PathsOf("survivor").data_dir));
  // Gone, or at most a zombie the sandbox's reaper has not collected yet.
  if (absl::StatusOr<UniqueFd> pidfd = state->shim.Open(); pidfd.ok()) {
    pollfd p{pidfd->get(), POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 0), 1) << "shim " << shim << " still runs";
  }
}

// Exec joins the container: its pid namespace (PID 1 is the container's command), its
// filesystem, its hostname; stdout and the exit code come back; a TTY exec gets a terminal of
// the size asked for.
TEST_F(ContainerTest, ExecSeesTheContainerAndReturnsItsExitCode) {
  ASSERT_TRUE(runtime_->Create(Spec("target", {"sleep", "1000"})).ok());
  ASSERT_TRUE(runtime_->Start("target").ok());
  char out_path[] = "/run/exec-out-XXXXXX";
  UniqueFd out(mkstemp(out_path));
  ASSERT_TRUE(out.valid());
  auto status = runtime_->Exec(
      "target",
      {.args = {"sh", "-c",
                "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; echo made > /tmp/x; exit 7"},
       .env = {"PATH=/bin"}},
      {.stdout_fd = out.get()});
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->code, 7);
  auto text = ReadFile(out_path);
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(*text, HasSubstr("sleep 1000"));
  EXPECT_THAT(*text, HasSubstr("target\n"));
  EXPECT_EQ(*ReadFile(runtime_->PathsOf("target").upper() + "/tmp/x"), "made\n");

  // With a terminal.
  char tty_path[] = "/run/exec-tty-XXXXXX";
  UniqueFd tty_out(mkstemp(tty_path));
  auto tty = runtime_->Exec("target",
                            {.args = {"sh", "-c", "tty; stty size"},
                             .env = {"PATH=/bin"},
                             .terminal = true,
                             .rows = 33,
                             .cols = 101},
                            {.stdout_fd = tty_out.get()});
  ASSERT_TRUE(tty.ok()) << tty.status();
  EXPECT_EQ(tty->code, 0);
  auto tty_text = ReadFile(tty_path);
  EXPECT_THAT(*tty_text, HasSubstr("/dev/pts/"));
  EXPECT_THAT(*tty_text, HasSubstr("33 101"));

  // A command that does not exist: 127 and a reason.
  auto missing = runtime_->Exec("target", {.args = {"/no/such"}}, {.stderr_fd = out.get()});
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(missing->code, 127);
  ASSERT_TRUE(runtime_->Delete("target", /*force=*/true).ok());
}

// init: true puts a tiny init at PID 1: the command is PID 2, orphans are reaped, signals
// are forwarded (so SIGTERM stops a command that has no handler, which PID 1 would ignore),
// and the command's exit code is the container's.
TEST_F(ContainerTest, InitReapsForwardsSignalsAndKeepsTheExitCode) {
  ContainerSpec spec =
      Spec("with-init", {"sh", "-c", "echo pid=$$; (sleep 0.1 &); sleep 0.3; exit 4"});
  spec.init = true;
  ContainerState s = Run(spec);
  EXPECT_EQ(s.exit_code, 4);
  EXPECT_THAT(Output("with-init"), HasSubstr("pid=2\n"));
  ASSERT_TRUE(runtime_->Delete("with-init").ok());

  spec = Spec("sleeper", {"sleep", "1000"});
  spec.init = true;
  ASSERT_TRUE(runtime_->Create(spec).ok());
  ASSERT_TRUE(runtime_->Start("sleeper").ok());
  const absl::Time begin = absl::Now();
  auto stopped = runtime_->Stop("sleeper", absl::Seconds(20));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_LT(absl::Now() - begin, absl::Seconds(10));  // SIGTERM did it, not the SIGKILL
  EXPECT_EQ(stopped->exit_code, 128 + SIGTERM);
  ASSERT_TRUE(runtime_->Delete("sleeper").ok());
}

// TESTING.md runtime hardening 1, 2, 4, 5 (devices), 6 (mount flags, no way out): read from
// inside a default container.
TEST_F(ContainerTest, HardenedDefaultsAsSeenFromInside) {
  ContainerState s = Run(
      Spec("hardened",
           {"sh", "-c",
            "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/1/status; "
            "echo kcore=$(cat /proc/kcore | wc -c) keys=$(cat /proc/keys | wc -c); "
            "ls /sys/firmware | wc -l | sed 's/^/firmware=/'; "
            "(echo 1 > /proc/sys/kernel/panic) 2>/dev/null && echo sys-writable || echo sys-ro; "
            "test -r /proc/sys/net/ipv4/ip_forward && echo net-readable; "
            "(echo x > /proc/sysrq-trigger) 2>/dev/null && echo sysrq-writable || echo sysrq-ro; "
            "echo dev=$(ls /dev | tr '\\n' ' '); "
            "grep -E ' /(proc|dev|sys|dev/pts|dev/shm|dev/mqueue) ' /proc/mounts; "
            "ls /proc/1/root/ | wc -l | sed 's/^/rootentries=/'; cd / && cd .. && pwd"}));
  EXPECT_EQ(s.exit_code, 0);
  const std::string out = Output("hardened");
  // 1. Docker's 14 capabilities: bounding = permitted = effective, nothing inheritable/ambient.
  EXPECT_THAT(out, HasSubstr("CapInh:\t0000000000000000"));
  EXPECT_THAT(out, HasSubstr("CapPrm:\t00000000a80425fb"));
  EXPECT_THAT(out, HasSubstr("CapEff:\t00000000a80425fb"));
  EXPECT_THAT(out, HasSubstr("CapBnd:\t00000000a80425fb"));
  EXPECT_THAT(out, HasSubstr("CapAmb:\t0000000000000000"));
  // 2.
  EXPECT_THAT(out, HasSubstr("NoNewPrivs:\t1"));
  EXPECT_THAT(out, HasSubstr("Seccomp:\t2"));
  // 4. Masked paths read empty; read-only ones refuse writes; the container's net sysctls
  // stay readable.
  EXPECT_THAT(out, HasSubstr("kcore=0 keys=0"));
  EXPECT_THAT(out, HasSubstr("firmware=0"));
  EXPECT_THAT(out, HasSubstr("sys-ro"));
  EXPECT_THAT(out, HasSubstr("sysrq-ro"));
  EXPECT_THAT(out, HasSubstr("net-readable"));
  // 5. Exactly the default devices (plus the standard links and mount points).
  EXPECT_THAT(out, HasSubstr("dev=fd full mqueue null ptmx pts random shm stderr stdin stdout "
                             "tty urandom zero\n"));
  // 6. Mount flags.
  EXPECT_THAT(out, HasSubstr("proc /proc proc rw,nosuid,nodev,noexec"));
  EXPECT_THAT(out, HasSubstr("tmpfs /dev tmpfs rw,nosuid,noexec,relatime,size=64k,mode=755"));
  EXPECT_THAT(
      out,
      HasSubstr("devpts /dev/pts devpts rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=666"));
  EXPECT_THAT(out, HasSubstr("/dev/shm tmpfs rw,nosuid,nodev,noexec"));
  EXPECT_THAT(out, HasSubstr("mqueue /dev/mqueue mqueue rw,nosuid,nodev,noexec"));
  EXPECT_THAT(out, HasSubstr("sysfs /sys sysfs ro,nosuid,nodev,noexec"));
  // "..", and /proc/1/root, lead to the container's own root.
  EXPECT_THAT(out, HasSubstr("\n/\n"));
  ASSERT_TRUE(runtime_->Delete("hardened").ok());
}

// An explicitly empty capability set is no capability at all, not "the defaults": every set
// reads 0 from inside and root cannot chown a file to another owner.
TEST_F(ContainerTest, ExplicitlyEmptyCapabilitiesAreNone) {
  ContainerSpec spec =
      Spec("nocaps", {"sh", "-c",
                      "grep -E '^Cap' /proc/1/status; mkdir -p /tmp; echo x > /tmp/f; "
                      "chown 1:1 /tmp/f 2>/dev/null && echo chowned || echo chown-refused"});
  spec.process.capabilities.emplace();
  ContainerState s = Run(spec);
  EXPECT_EQ(s.exit_code, 0);
  const std::string out = Output("nocaps");
  EXPECT_THAT(out, HasSubstr("CapInh:\t0000000000000000"));
  EXPECT_THAT(out, HasSubstr("CapPrm:\t0000000000000000"));
  EXPECT_THAT(out, HasSubstr("CapEff:\t0000000000000000"));
  EXPECT_THAT(out, HasSubstr("CapBnd:\t0000000000000000"));
  EXPECT_THAT(out, HasSubstr("CapAmb:\t0000000000000000"));
  EXPECT_THAT(out, HasSubstr("chown-refused"));
  ASSERT_TRUE(runtime_->Delete("nocaps").ok());
}

// cap_drop ALL + cap_add NET_RAW (ContainerCapabilities, Docker's shape for every user): root
// holds NET_RAW after execve; uid 1000 keeps it in bounding only, since execve empties a
// non-root process's permitted and effective sets and ambient is empty, as in Docker.
TEST_F(ContainerTest, CapAddForANonRootUserStaysInBoundingOnly) {
  absl::StatusOr<CapabilitySets> net_raw =
      security::ContainerCapabilities(DefaultCapabilities(), {"NET_RAW"}, {"ALL"});
  ASSERT_TRUE(net_raw.ok()) << net_raw.status();
  for (uint32_t uid : {0u, 1000u}) {
    const std::string id = absl::StrCat("netraw-", uid);
    ContainerSpec spec = Spec(id, {"sh", "-c", "grep -E '^(Cap|Uid)' /proc/1/status"});
    spec.process.user = {uid, uid, {}};
    spec.process.capabilities = *net_raw;
    ContainerState s = Run(spec);
    EXPECT_EQ(s.exit_code, 0) << uid;
    const std::string out = Output(id);
    const std::string held = uid == 0 ? "0000000000002000" : "0000000000000000";
    EXPECT_THAT(out, HasSubstr(absl::StrCat("Uid:\t", uid, "\t", uid))) << out;
    EXPECT_THAT(out, HasSubstr("CapBnd:\t0000000000002000")) << uid;
    EXPECT_THAT(out, HasSubstr(absl::StrCat("CapPrm:\t", held))) << uid;
    EXPECT_THAT(out, HasSubstr(absl::StrCat("CapEff:\t", held))) << uid;
    EXPECT_THAT(out, HasSubstr("CapInh:\t0000000000000000")) << uid;
    EXPECT_THAT(out, HasSubstr("CapAmb:\t0000000000000000")) << uid;
    ASSERT_TRUE(runtime_->Delete(id).ok());
  }
}

// TESTING.md 5 and "Mounts": the device cgroup refuses a disk's node and allows the default
// devices' (CAP_MKNOD alone would allow any); /sys/fs/cgroup shows the container's own cgroup,
// read-only, and nothing else of the host's. A privileged container may make any node and
// sees the same read-only /sys/fs/cgroup.
TEST_F(ContainerTest, DeviceCgroupAndOwnReadOnlyCgroupfs) {
  auto driver = HostCgroupDriver("mesh-test-containers");
  ASSERT_TRUE(driver.ok()) << driver.status();
  const bool v1 = (*driver)->version() == CgroupVersion::kV1;
  // Where the limits are inside: one directory per hierarchy on v1, one cgroup2 on v2.
  const std::string mem = v1 ? "memory/memory.limit_in_bytes" : "memory.max";
  const std::string pids = v1 ? "pids/pids.max" : "pids.max";
  const std::string sub = v1 ? "memory/sub" : "sub";
  const std::string probe = absl::StrCat(
      "C=/sys/fs/cgroup; mkdir -p /tmp; mknod /tmp/sda b 8 0 2>&1 && echo sda-made; "
      "mknod /tmp/null c 1 3 2>&1 && echo null-made; "
      "echo dev=$(ls /dev | tr '\\n' ' '); "
      "echo cgroups=$(ls $C | tr '\\n' ' '); "
      "echo memlimit=$(cat $C/",
      mem, "); echo pidsmax=$(cat $C/", pids,
      "); "
      "echo devlist=$(cat $C/devices/devices.list 2>/dev/null | tr '\\n' ','); "
      "(echo 5 > $C/",
      pids, ") 2>&1 | sed 's/^/pidswrite=/'; (mkdir $C/", sub,
      ") 2>&1 | sed 's/^/mkdir=/'; "
      "(touch $C/new) 2>&1 | sed 's/^/touch=/'; "
      "echo subdirs=$(find $C/ -mindepth 2 -type d | wc -l); "
      "echo notroot=$(grep -vc ':/$' /proc/self/cgroup); "
      "grep -E ' /sys/fs/cgroup(/[a-z,]+)? ' /proc/self/mountinfo | cut -d' ' -f4-6 | "
      "sed 's/^/mnt=/'");
  ContainerSpec spec = Spec("devcg", {"sh", "-c", probe});
  spec.resources.memory_limit = 32 << 20;
  spec.resources.pids_limit = 20;
  ContainerState s = Run(spec);
  EXPECT_EQ(s.exit_code, 0);
  std::string out = Output("devcg");
  EXPECT_THAT(out, HasSubstr("mknod: /tmp/sda: Operation not permitted"));
  EXPECT_THAT(out, Not(HasSubstr("sda-made")));
  EXPECT_THAT(out, HasSubstr("null-made"));
  EXPECT_THAT(out, HasSubstr("dev=fd full mqueue null ptmx pts random shm stderr stdin stdout "
                             "tty urandom zero\n"));
  EXPECT_THAT(out, HasSubstr("memlimit=33554432\n"));
  EXPECT_THAT(out, HasSubstr("pidsmax=20\n"));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("pidswrite=sh: can't create /sys/fs/cgroup/", pids,
                                          ": Read-only file system")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("mkdir=mkdir: can't create directory '/sys/fs/cgroup/",
                                          sub, "': Read-only file system")));
  EXPECT_THAT(out, HasSubstr("touch=touch: /sys/fs/cgroup/new: Read-only file system"));
  EXPECT_THAT(out, HasSubstr("subdirs=0\n"));  // no child cgroup, no other cgroup
  EXPECT_THAT(out, HasSubstr("notroot=0\n"));  // /proc/self/cgroup: "/" in every hierarchy
  // Mount root (the cgroup namespace shows the container's cgroup as "/"), point, options.
  EXPECT_THAT(out, HasSubstr("mnt=/ /sys/fs/cgroup ro,nosuid,nodev,noexec"));
  if (v1) {
    // Each hierarchy mesh uses, named as on the host; none of the others (cpuset, blkio,
    // name=systemd, the cgroup2 mount).
    EXPECT_THAT(out, HasSubstr("cgroups=cpu cpuacct devices freezer memory pids\n"));
    EXPECT_THAT(out, HasSubstr("mnt=/ /sys/fs/cgroup/memory ro,nosuid,nodev,noexec"));
    EXPECT_THAT(out, HasSubstr("mnt=/ /sys/fs/cgroup/devices ro,nosuid,nodev,noexec"));
    EXPECT_THAT(out, HasSubstr("devlist=c 1:3 rwm,c 1:5 rwm,c 1:7 rwm,c 1:8 rwm,c 1:9 rwm,c 5:0 "
                               "rwm,c 5:2 rwm,c 136:* rwm,\n"));
  }
  ASSERT_TRUE(runtime_->Delete("devcg").ok());

  ContainerSpec privileged = Spec("devcg-priv", {"sh", "-c", probe});
  privileged.privileged = true;
  privileged.resources.pids_limit = 30;
  s = Run(privileged);
  EXPECT_EQ(s.exit_code, 0);
  out = Output("devcg-priv");
  EXPECT_THAT(out, HasSubstr("sda-made"));
  EXPECT_THAT(out, HasSubstr("null-made"));
  EXPECT_THAT(out, HasSubstr("pidsmax=30\n"));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("pidswrite=sh: can't create /sys/fs/cgroup/", pids,
                                          ": Read-only file system")));
  EXPECT_THAT(out, HasSubstr("subdirs=0\n"));
  EXPECT_THAT(out, HasSubstr("notroot=0\n"));
  if (v1) {
    EXPECT_THAT(out, HasSubstr("cgroups=cpu cpuacct devices freezer memory pids\n"));
    EXPECT_THAT(out, HasSubstr("devlist=a *:* rwm,\n"));
  }
  ASSERT_TRUE(runtime_->Delete("devcg-priv").ok());

  // With a user namespace: the same view, from bind mounts (a cgroup v1 filesystem could not be
  // mounted there). The files belong to host root, which the namespace does not map.
  ContainerSpec userns = Spec("devcg-userns", {"sh", "-c", probe});
  userns.namespaces.push_back({NamespaceType::kUser, ""});
  userns.uid_mappings = {{0, 100000, 65536}};
  userns.gid_mappings = {{0, 100000, 65536}};
  userns.resources.memory_limit = 48 << 20;
  s = Run(userns);
  EXPECT_EQ(s.exit_code, 0);
  out = Output("devcg-userns");
  EXPECT_THAT(out, Not(HasSubstr("sda-made")));
  EXPECT_THAT(out, HasSubstr("memlimit=50331648\n"));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("pidswrite=sh: can't create /sys/fs/cgroup/", pids,
                                          ": Read-only file system")));
  EXPECT_THAT(out, HasSubstr("subdirs=0\n"));
  EXPECT_THAT(out, HasSubstr("notroot=0\n"));
  if (v1) {
    EXPECT_THAT(out, HasSubstr("cgroups=cpu cpuacct devices freezer memory pids\n"));
  }
  ASSERT_TRUE(runtime_->Delete("devcg-userns").ok());
}

// TESTING.md 10, hostile images: a standard mount point or /etc that is a symlink out is a
// clean error; a user mount destination that is a symlink lands inside the rootfs. A host
// canary directory is unchanged either way.
TEST_F(ContainerTest, HostileImageSymlinksNeverLeadOutOfTheRootfs) {
  const std::string canary = "/var/lib/mesh/canary";
  std::filesystem::create_directories(canary);
  ASSERT_TRUE(WriteFileAtomically(canary + "/file", "host\n", 0644).ok());
  auto canary_listing = [&] {
    std::string out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(canary)) {
      absl::StrAppend(&out, e.path().string(), "\n");
    }
    return out;
  };
  const std::string before = canary_listing();

  // /proc -> "/" and /dev -> "../../..": refused, nothing created on the host.
  for (const auto& [path, target] : std::vector<std::pair<std::string, std::string>>{
           {"/proc", "/"}, {"/dev", "../../../../var/lib/mesh/canary"}, {"/etc", canary}}) {
    std::filesystem::remove_all(layer_ + path);
    std::filesystem::create_symlink(target, layer_ + path);
    auto created = runtime_->Create(Spec("hostile", {"true"}));
    EXPECT_FALSE(created.ok()) << path;
    EXPECT_THAT(std::string(created.status().message()), HasSubstr("symlink")) << path;
    EXPECT_FALSE(std::filesystem::exists(runtime_->PathsOf("hostile").run_dir)) << path;
    std::filesystem::remove(layer_ + path);
    std::filesystem::create_directories(layer_ + path);
  }

  // A user mount whose destination is a symlink out of the image: it stays inside.
  std::filesystem::create_symlink("../../../../../var/lib/mesh/canary", layer_ + "/data");
  ContainerSpec spec = Spec("inside", {"sh", "-c", "echo in > /data/written && ls /data"});
  spec.mounts.push_back({.destination = "/data", .type = "tmpfs", .options = {"size=1m"}});
  ContainerState s = Run(spec);
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_EQ(canary_listing(), before);
  EXPECT_EQ(*ReadFile(canary + "/file"), "host\n");
  ASSERT_TRUE(runtime_->Delete("inside").ok());
}

// Resource limits: a memory hog is OOM-killed and reported so; a fork bomb stays within the
// pids limit; the CPU quota is what the cgroup holds; the cgroup goes with the container.
TEST_F(ContainerTest, LimitsOomAndForkBombAndCpuQuota) {
  ContainerSpec hog = Spec("hog", {"sh", "-c", "x=a; while :; do x=$x$x; done"});
  hog.resources.memory_limit = 32 << 20;
  ContainerState s = Run(hog);
  EXPECT_EQ(s.signal, SIGKILL);
  EXPECT_TRUE(s.oom_killed);
  ASSERT_TRUE(runtime_->Delete("hog").ok());

  // The shell dies at its first refused fork, taking its namespace with it; the cgroup's
  // counters tell what happened.
  ContainerSpec bomb = Spec("bomb", {"sh", "-c", "while :; do sleep 30 & done"});
  bomb.resources.pids_limit = 16;
  s = Run(bomb);
  EXPECT_EQ(s.status, Status::kStopped);
  auto bomb_driver = HostCgroupDriver("mesh-test-containers");
  ASSERT_TRUE(bomb_driver.ok()) << bomb_driver.status();
  auto bomb_cgroup = (*bomb_driver)->Open("bomb");
  ASSERT_TRUE(bomb_cgroup.ok()) << bomb_cgroup.status();
  auto stats = (*bomb_cgroup)->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GE(stats->pids_rejected, 1u);
  EXPECT_EQ((*bomb_cgroup)->Limits()->pids_limit, 16);
  ASSERT_TRUE(runtime_->Delete("bomb").ok());

  ContainerSpec cpu = Spec("cpu", {"sleep", "1000"});
  cpu.resources.cpu_quota = 50000;
  cpu.resources.cpu_period = 100000;
  ASSERT_TRUE(runtime_->Create(cpu).ok());
  auto driver = HostCgroupDriver("mesh-test-containers");
  ASSERT_TRUE(driver.ok()) << driver.status();
  auto cgroup = (*driver)->Open("cpu");
  ASSERT_TRUE(cgroup.ok()) << cgroup.status();
  auto limits = (*cgroup)->Limits();
  ASSERT_TRUE(limits.ok()) << limits.status();
  EXPECT_EQ(limits->cpu_quota, 50000);
  EXPECT_EQ(limits->cpu_period, 100000u);
  ASSERT_TRUE(runtime_->Delete("cpu", /*force=*/true).ok());
  EXPECT_TRUE(absl::IsNotFound((*driver)->Open("cpu").status()));
}

// The built-in busybox image through the image store: its config gives the environment and
// resolves a user name from the image's own /etc/passwd; the image cannot be removed while a
// container uses it.
TEST_F(ContainerTest, BuiltInBusyboxImageFromTheStore) {
  auto store = image::ImageStore::Open("/var/lib/mesh/images");
  ASSERT_TRUE(store.ok()) << store.status();
  auto busybox = (*store)->EnsureBusybox();
  ASSERT_TRUE(busybox.ok()) << busybox.status();
  RuntimeOptions options;
  options.shim_path = MESH_SHIM_PATH;
  options.cgroup_parent = "mesh-test-containers";
  options.images = store->get();
  Runtime runtime(options);

  ContainerSpec spec;
  spec.id = "from-image";
  spec.image = "busybox";
  spec.user = "nobody";
  spec.process.args = {"sh", "-c", "id -u; echo $PATH; sleep 1000"};
  ASSERT_TRUE(runtime.Create(spec).ok());
  ASSERT_TRUE(runtime.Start("from-image").ok());
  EXPECT_TRUE(absl::IsFailedPrecondition((*store)->Remove("busybox")));
  auto stopped = runtime.Stop("from-image", absl::Milliseconds(200));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  auto log = ReadFile(runtime.PathsOf("from-image").log());
  ASSERT_TRUE(log.ok());
  EXPECT_THAT(*log, HasSubstr("stdout F 65534\n"));
  EXPECT_THAT(*log, HasSubstr("stdout F /usr/local/sbin:"));
  ASSERT_TRUE(runtime.Delete("from-image").ok());

  // Made again, a container keeps the image it was made from, though its reference is gone.
  ASSERT_TRUE((*store)->Tag("busybox", "mybusy:1").ok());
  spec.id = "pinned";
  spec.image = "mybusy:1";
  spec.process.args = {"true"};
  ASSERT_TRUE(runtime.Create(spec).ok());
  ASSERT_TRUE(runtime.Start("pinned").ok());
  ASSERT_TRUE(runtime.Wait("pinned", absl::Seconds(30)).ok());
  EXPECT_TRUE((*store)->Untag("mybusy:1").value_or(false));
  auto again = runtime.Recreate(spec);
  EXPECT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(runtime.Delete("pinned", /*force=*/true).ok());
  EXPECT_TRUE((*store)->Remove("busybox").ok());
}

// TESTING.md 7 and 8: only fds 0-2 reach the container's process and an exec'd one; a cwd
// naming a leaked fd fails cleanly, and a symlinked cwd stays inside the rootfs.
TEST_F(ContainerTest, OnlyStdioReachesTheContainerAndCwdCannotEscape) {
  ASSERT_TRUE(runtime_->Create(Spec("fds", {"sleep", "1000"})).ok());
  ASSERT_TRUE(runtime_->Start("fds").ok());
  char out_path[] = "/run/fds-out-XXXXXX";
  UniqueFd out(mkstemp(out_path));
  auto status = runtime_->Exec(
      "fds",
      {.args = {"sh", "-c", "ls /proc/1/fd | tr '\\n' ' '; echo; ls /proc/$$/fd | tr '\\n' ' '"},
       .env = {"PATH=/bin"}},
      {.stdout_fd = out.get()});
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*ReadFile(out_path), "0 1 2 \n0 1 2 ");
  ASSERT_TRUE(runtime_->Delete("fds", /*force=*/true).ok());

  ContainerSpec leak = Spec("cwd-fd", {"pwd"});
  leak.process.cwd = "/proc/self/fd/3";
  ASSERT_TRUE(runtime_->Create(leak).ok());
  absl::Status started = runtime_->Start("cwd-fd");
  EXPECT_TRUE(absl::IsFailedPrecondition(started)) << started;
  EXPECT_THAT(std::string(started.message()), HasSubstr("working directory"));
  ASSERT_TRUE(runtime_->Delete("cwd-fd", /*force=*/true).ok());

  std::filesystem::create_symlink("../../../../../..", layer_ + "/escape");
  ContainerSpec link = Spec("cwd-link", {"sh", "-c", "pwd -P; ls | wc -l"});
  link.process.cwd = "/escape";
  ContainerState s = Run(link);
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_THAT(Output("cwd-link"), HasSubstr("/\n"));
  ASSERT_TRUE(runtime_->Delete("cwd-link").ok());
}

// A terminal for the container's own process: a pty of its devpts is its controlling terminal
// and /dev/console, its output lands in the log, and its size can be changed.
TEST_F(ContainerTest, TerminalForTheContainersOwnProcess) {
  ContainerSpec spec = Spec("tty", {"sh", "-c",
                                    "tty; test -c /dev/console && echo console; "
                                    "sleep 0.5; stty size"});
  spec.process.terminal = true;
  ASSERT_TRUE(runtime_->Create(spec).ok());
  ASSERT_TRUE(runtime_->Resize("tty", 40, 120).ok());
  ASSERT_TRUE(runtime_->Start("tty").ok());
  auto done = runtime_->Wait("tty", absl::Seconds(30));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->exit_code, 0);
  const std::string out = Output("tty");
  EXPECT_THAT(out, HasSubstr("/dev/pts/0"));
  EXPECT_THAT(out, HasSubstr("console"));
  EXPECT_THAT(out, HasSubstr("40 120"));
  ASSERT_TRUE(runtime_->Delete("tty").ok());
}

// TESTING.md 9 (CVE-2019-5736): while exec runs 100 times, the container tries to write
// through /proc/PID/exe of every process it can see (the exec helper among them while it is
// there); the runtime's binary stays byte-identical.
TEST_F(ContainerTest, RuntimeBinaryNotWritableFromInsideWhileExecRuns) {
  const std::string shim_before = *ReadFile(MESH_SHIM_PATH);
  ASSERT_TRUE(runtime_
                  ->Create(Spec("attacker", {"sh", "-c",
                                             "while :; do for p in /proc/[0-9]*; do "
                                             "(echo x >> $p/exe) 2>/dev/null && echo WROTE $p; "
                                             "done; done"}))
                  .ok());
  ASSERT_TRUE(runtime_->Start("attacker").ok());
  for (int i = 0; i < 100; ++i) {
    auto status = runtime_->Exec("attacker", {.args = {"true"}, .env = {"PATH=/bin"}}, {});
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_EQ(status->code, 0) << "round " << i;
  }
  ASSERT_TRUE(runtime_->Stop("attacker", absl::Milliseconds(100)).ok());
  EXPECT_TRUE(*ReadFile(MESH_SHIM_PATH) == shim_before) << "mesh-shim changed";
  EXPECT_THAT(Output("attacker"), Not(HasSubstr("WROTE")));
  ASSERT_TRUE(runtime_->Delete("attacker").ok());
}

}  // namespace
}  // namespace mesh::runtime
