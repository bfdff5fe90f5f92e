// The test sandbox itself: the host and wan reach each other, servers start and stop, and
// nothing a test does (or leaves behind by crashing) reaches the real host.
#include "tests/support/sandbox.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/host_snapshot.h"

namespace mesh::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<std::string> ReadMounts() { return ReadFile("/proc/self/mountinfo"); }

std::vector<int> ProcessesInOurPidNamespace() {
  std::vector<int> pids;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    int pid = 0;
    if (absl::SimpleAtoi(e.path().filename().string(), &pid)) pids.push_back(pid);
  }
  std::sort(pids.begin(), pids.end());
  return pids;
}

std::string WriteSite(const std::string& body) {
  std::string dir = absl::StrCat(Sandbox::kScratchDir, "/site");
  mkdir(dir.c_str(), 0755);
  std::ofstream(dir + "/index.html") << body;
  return dir;
}

TEST_F(SandboxTest, HostAndWanReachEachOther) {
  // ICMP both ways.
  ASSERT_TRUE(sandbox()
                  .Check(Sandbox::Ns::kHost,
                         {"busybox", "ping", "-c", "1", "-W", "2", Sandbox::kWanAddress})
                  .ok());
  ASSERT_TRUE(sandbox()
                  .Check(Sandbox::Ns::kWan,
                         {"busybox", "ping", "-c", "1", "-W", "2", Sandbox::kHostAddress})
                  .ok());

  // HTTP from the host to a server in wan ("the internet").
  absl::StatusOr<ChildProcess> httpd = sandbox().StartHttpServer(
      Sandbox::Ns::kWan, Sandbox::kWanAddress, 8080, WriteSite("hello from wan\n"));
  ASSERT_TRUE(httpd.ok()) << httpd.status();
  absl::StatusOr<std::string> body =
      sandbox().HttpGet(Sandbox::Ns::kHost, Sandbox::kWanAddress, 8080, "/index.html");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "hello from wan\n");

  // TCP and UDP echo the other way, from wan to a server on the host.
  absl::StatusOr<ChildProcess> tcp =
      sandbox().StartEchoServer(Sandbox::Ns::kHost, "tcp", Sandbox::kHostAddress, 7000);
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  absl::StatusOr<ChildProcess> udp =
      sandbox().StartEchoServer(Sandbox::Ns::kHost, "udp", Sandbox::kHostAddress, 7001);
  ASSERT_TRUE(udp.ok()) << udp.status();
  absl::StatusOr<std::string> echoed = sandbox().Check(
      Sandbox::Ns::kWan,
      {"sh", "-c",
       absl::StrCat("echo ping-tcp | socat -t 2 - TCP:", Sandbox::kHostAddress, ":7000")});
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(*echoed, "ping-tcp\n");
  echoed = sandbox().Check(
      Sandbox::Ns::kWan,
      {"sh", "-c",
       absl::StrCat("echo ping-udp | socat -t 2 - UDP:", Sandbox::kHostAddress, ":7001")});
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(*echoed, "ping-udp\n");
}

TEST_F(SandboxTest, DefaultRouteGoesToWanAndNamespacesArePrivate) {
  // `ip route get` only asks the kernel; no packet leaves.
  absl::StatusOr<std::string> route =
      sandbox().Check(Sandbox::Ns::kHost, {"ip", "route", "get", "198.51.100.7"});
  ASSERT_TRUE(route.ok()) << route.status();
  EXPECT_THAT(*route,
              HasSubstr(absl::StrCat("via ", Sandbox::kWanAddress, " dev ", Sandbox::kHostLink)));

  // The sandbox host's links are ours alone: lo and wan0, not the machine's eth0.
  absl::StatusOr<std::string> links =
      sandbox().Check(Sandbox::Ns::kHost, {"ip", "-o", "link", "show"});
  ASSERT_TRUE(links.ok());
  EXPECT_THAT(*links, HasSubstr("wan0@"));
  EXPECT_THAT(*links, Not(HasSubstr(" eth0")));
  // /sys belongs to the sandbox's network namespace, and the cgroup hierarchies are still there.
  EXPECT_EQ(access("/sys/class/net/wan0", F_OK), 0);
  EXPECT_EQ(access("/sys/fs/cgroup", F_OK), 0);
  // Private runtime dirs and state dir, and our own pid namespace (whose init is our parent).
  EXPECT_EQ(access(Sandbox::kRunDir, W_OK), 0);
  EXPECT_EQ(access(Sandbox::kStateDir, W_OK), 0);
  EXPECT_EQ(access("/run/netns/wan", F_OK), 0);
  EXPECT_EQ(getppid(), 1);
}

TEST_F(SandboxTest, ServersStopWithTheirHandle) {
  absl::StatusOr<ChildProcess> httpd =
      sandbox().StartHttpServer(Sandbox::Ns::kWan, Sandbox::kWanAddress, 8081, WriteSite("x"));
  ASSERT_TRUE(httpd.ok()) << httpd.status();
  pid_t pid = httpd->pid();
  *httpd = ChildProcess();  // killed and reaped
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_FALSE(
      sandbox()
          .WaitForPort(Sandbox::Ns::kWan, Sandbox::kWanAddress, 8081, absl::Milliseconds(300))
          .ok());
}

TEST_F(SandboxTest, TeardownRemovesWanAndTheLink) {
  sandbox_.reset();
  SpawnOptions o;
  o.argv = {"ip", "-o", "link", "show"};
  absl::StatusOr<CommandResult> links = RunCommand(o);
  ASSERT_TRUE(links.ok());
  EXPECT_THAT(links->out, Not(HasSubstr("wan0")));
  EXPECT_NE(access("/run/netns/wan", F_OK), 0);
  // A new sandbox can be built in the same process.
  absl::StatusOr<std::unique_ptr<Sandbox>> again = Sandbox::Create();
  ASSERT_TRUE(again.ok()) << again.status();
}

// What a test does in its sandbox host is visible there, and none of it on the real host.
TEST_F(SandboxTest, RealHostIsByteForByteUnchanged) {
  absl::StatusOr<std::string> real_before = TakeRealHostSnapshot();
  ASSERT_TRUE(real_before.ok()) << real_before.status();
  absl::StatusOr<std::string> ours_before = TakeHostSnapshot();
  ASSERT_TRUE(ours_before.ok()) << ours_before.status();

  for (std::vector<std::string> argv : {
           std::vector<std::string>{"ip", "link", "add", "mesh-dummy0", "type", "bridge"},
           std::vector<std::string>{"ip", "addr", "add", "192.0.2.99/32", "dev", "mesh-dummy0"},
           std::vector<std::string>{"ip", "route", "add", "198.51.100.0/24", "via",
                                    Sandbox::kWanAddress},
           std::vector<std::string>{"nft", "add table inet mesh_sandbox_test"},
           std::vector<std::string>{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
           std::vector<std::string>{"ip", "netns", "add", "extra"},
       }) {
    absl::StatusOr<std::string> r = sandbox().Check(Sandbox::Ns::kHost, argv);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  absl::StatusOr<CommandResult> ping = sandbox().Run(
      Sandbox::Ns::kHost, {"busybox", "ping", "-c", "1", "-W", "2", Sandbox::kWanAddress});
  ASSERT_TRUE(ping.ok());

  // The snapshot sees every one of those changes where they happened...
  absl::StatusOr<std::string> ours_after = TakeHostSnapshot();
  ASSERT_TRUE(ours_after.ok());
  std::string diff = DiffLines(*ours_before, *ours_after);
  for (const char* seen :
       {"mesh-dummy0", "192.0.2.99", "198.51.100.0/24", "mesh_sandbox_test", "extra"}) {
    EXPECT_THAT(diff, HasSubstr(seen));
  }
  // ...and the real host shows none of them.
  absl::StatusOr<std::string> real_after = TakeRealHostSnapshot();
  ASSERT_TRUE(real_after.ok());
  EXPECT_EQ(*real_before, *real_after) << DiffLines(*real_before, *real_after);
  EXPECT_THAT(*real_after, Not(HasSubstr("wan0")));
  EXPECT_THAT(*real_after, HasSubstr("### ip -d link show\n1: lo:"));
  ASSERT_TRUE(sandbox().Check(Sandbox::Ns::kHost, {"ip", "netns", "delete", "extra"}).ok());
}

// A test that crashes mid-way leaves nothing behind: run sandbox_crash_helper (which builds
// links, an nft table, a netns, a mount and a server, then aborts) in a nested sandbox, with
// this sandbox playing its real host, and compare before and after.
TEST(SandboxCrashTest, CrashedTestLeavesNothing) {
  MESH_REQUIRE_ROOT();
  absl::StatusOr<std::string> before = TakeHostSnapshot();
  ASSERT_TRUE(before.ok()) << before.status();
  absl::StatusOr<std::string> mounts_before = ReadMounts();
  ASSERT_TRUE(mounts_before.ok());

  // A stale test cgroup, as a crashed run would leave: the nested launcher sweeps it at start.
  std::string stale_cgroup = std::filesystem::exists("/sys/fs/cgroup/pids/tasks")
                                 ? "/sys/fs/cgroup/pids/mesh-test-stale"
                                 : "/sys/fs/cgroup/mesh-test-stale";
  ASSERT_EQ(mkdir(stale_cgroup.c_str(), 0755), 0) << stale_cgroup << ": " << strerror(errno);
  ASSERT_EQ(mkdir((stale_cgroup + "/child").c_str(), 0755), 0);
  // Made two minutes ago, as far as the sweep can tell (it leaves trees younger than a minute
  // alone: they belong to tests running in parallel).
  const timespec old_times[2] = {{time(nullptr) - 120, 0}, {time(nullptr) - 120, 0}};
  for (const std::string& dir : {stale_cgroup + "/child", stale_cgroup}) {
    ASSERT_EQ(utimensat(AT_FDCWD, dir.c_str(), old_times, 0), 0) << dir << ": " << strerror(errno);
  }

  SpawnOptions o;
  o.argv = {MESH_CRASH_HELPER_PATH};
  o.env = std::vector<std::string>{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};  // no MESH_SANDBOX
  absl::StatusOr<CommandResult> r = RunCommand(o, absl::Seconds(60));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->out, HasSubstr("crash-helper: built everything"));
  EXPECT_THAT(r->err, HasSubstr("removing stale test cgroup " + stale_cgroup));
  EXPECT_FALSE(std::filesystem::exists(stale_cgroup));
  EXPECT_EQ(r->status.code, 128 + SIGABRT) << r->out << r->err;

  absl::StatusOr<std::string> after = TakeHostSnapshot();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*before, *after) << DiffLines(*before, *after);
  EXPECT_EQ(*mounts_before, *ReadMounts());
  // Its server died with its pid namespace: left in ours are the sandbox's init and this test.
  EXPECT_EQ(ProcessesInOurPidNamespace(), (std::vector<int>{1, getpid()}));
}

}  // namespace
}  // namespace mesh::testing
