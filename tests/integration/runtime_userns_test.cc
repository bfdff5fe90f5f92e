// Containers with their own user namespace, as root in the sandbox: the container's root is
// uid 0 inside and host uid 100000 outside; the image, owned by host root on disk, shows as
// the container root's through idmapped mounts, and what that root writes lands in the upper
// dir as uid 0 on disk; the container's root cannot do what host root can; exec joins the
// user namespace; a bad mapping changes nothing; delete leaves nothing.
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/atomic_file.h"
#include "base/wait.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/container/cgroup_access.h"
#include "runtime/container/runtime.h"
#include "tests/support/busybox_layer.h"
#include "tests/support/container_fixture.h"
#include "tests/support/sandbox.h"

namespace mesh::runtime {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kCgroupParent[] = "mesh-test-userns";

class UsernsTest : public ::mesh::testing::ContainerFixture {
 protected:
  UsernsTest() : ContainerFixture(kCgroupParent) {}

  // A container with a user namespace mapping container 0-65535 to host 100000-165535.
  ContainerSpec Spec(const std::string& id, std::vector<std::string> args) {
    ContainerSpec spec = ContainerFixture::Spec(id, std::move(args));
    spec.namespaces.push_back({NamespaceType::kUser, ""});
    spec.uid_mappings = {{0, 100000, 65536}};
    spec.gid_mappings = {{0, 100000, 65536}};
    return spec;
  }

  // Runs `script` with exec in the running container `id`; its stdout and exit code.
  std::pair<int, std::string> ExecIn(const std::string& id, const std::string& script) {
    char path[] = "/run/scratch/exec-out-XXXXXX";
    UniqueFd out(mkstemp(path));
    EXPECT_TRUE(out.valid());
    auto status = runtime_->Exec(id, {.args = {"sh", "-c", script}, .env = {"PATH=/bin"}},
                                 {.stdout_fd = out.get(), .stderr_fd = out.get()});
    EXPECT_TRUE(status.ok()) << status.status();
    std::string text = ReadFile(path).value_or("");
    unlink(path);
    return {status.ok() ? status->code : -1, text};
  }

  // The owner "uid:gid" of a host path, as stored on disk.
  static std::string OwnerOnDisk(const std::string& path) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return "missing";
    return absl::StrCat(st.st_uid, ":", st.st_gid);
  }

  // Mount points in this (the host's) mount namespace under `prefix`.
  static std::vector<std::string> HostMountsUnder(const std::string& prefix) {
    std::vector<std::string> out;
    for (absl::string_view line :
         absl::StrSplit(ReadFile("/proc/self/mountinfo").value_or(""), '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
      if (fields.size() > 4 && absl::StartsWith(fields[4], prefix)) out.emplace_back(fields[4]);
    }
    return out;
  }
};

// The container's root is 0 inside and 100000 on the host; the image is root's inside; its
// writes land in the upper dir as uid 0 on disk (idmapped); exec joins the user namespace;
// delete leaves no mount, cgroup, process or state.
TEST_F(UsernsTest, RootInsideIsHostUid100000AndFilesKeepTheirOwnersOnDisk) {
  ContainerSpec spec =
      Spec("mapped", {"sh", "-c",
                      "echo uid=$(id -u) gid=$(id -g); cat /proc/self/uid_map /proc/self/gid_map; "
                      "stat -c 'busybox=%u:%g' /bin/busybox; stat -c 'image-file=%u:%g' "
                      "/etc/image-file; echo new > /made-by-root; echo changed >> /etc/image-file; "
                      "mkdir /dir-by-root; stat -c 'made=%u:%g' /made-by-root; echo ready; "
                      "exec sleep 1000"});
  auto created = runtime_->Create(spec);
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_TRUE(runtime_->Start("mapped").ok());
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(Output("mapped"), "ready\n"); },
                      absl::Seconds(10), "the container's output")
                  .ok())
      << Output("mapped");
  const std::string out = Output("mapped");
  EXPECT_THAT(out, HasSubstr("uid=0 gid=0\n"));
  EXPECT_THAT(out, HasSubstr("         0     100000      65536\n"));  // uid_map and gid_map
  EXPECT_THAT(out, HasSubstr("busybox=0:0\n"));
  EXPECT_THAT(out, HasSubstr("image-file=0:0\n"));
  EXPECT_THAT(out, HasSubstr("made=0:0\n"));

  // From the host: the process runs as host uid/gid 100000.
  auto state = runtime_->State("mapped");
  ASSERT_TRUE(state.ok()) << state.status();
  const pid_t pid = state->init.pid;
  const std::string status = ReadFile(absl::StrCat("/proc/", pid, "/status")).value_or("");
  EXPECT_THAT(status, HasSubstr("Uid:\t100000\t100000\t100000\t100000\n"));
  EXPECT_THAT(status, HasSubstr("Gid:\t100000\t100000\t100000\t100000\n"));
  EXPECT_EQ(ReadFile(absl::StrCat("/proc/", pid, "/uid_map")).value_or(""),
            "         0     100000      65536\n");

  // On disk, through no chown: the image stays host root's, untouched; the container root's
  // writes are uid 0 in the upper dir.
  const ContainerPaths paths = runtime_->PathsOf("mapped");
  EXPECT_EQ(OwnerOnDisk(layer_ + "/bin/busybox"), "0:0");
  EXPECT_EQ(*ReadFile(layer_ + "/etc/image-file"), "from the image\n");
  EXPECT_EQ(OwnerOnDisk(paths.upper() + "/made-by-root"), "0:0");
  EXPECT_EQ(OwnerOnDisk(paths.upper() + "/dir-by-root"), "0:0");
  EXPECT_EQ(OwnerOnDisk(paths.upper() + "/etc/image-file"), "0:0");  // copied up
  EXPECT_EQ(*ReadFile(paths.upper() + "/etc/image-file"), "from the image\nchanged\n");

  // exec joins the user namespace too.
  auto [code, text] = ExecIn("mapped",
                             "echo uid=$(id -u) gid=$(id -g); cat /proc/self/uid_map; "
                             "echo pid1=$(cat /proc/1/cmdline | tr '\\0' ' '); "
                             "echo from-exec > /by-exec; stat -c 'exec-file=%u' /by-exec");
  EXPECT_EQ(code, 0) << text;
  EXPECT_THAT(text, HasSubstr("uid=0 gid=0\n"));
  EXPECT_THAT(text, HasSubstr("         0     100000      65536\n"));
  EXPECT_THAT(text, HasSubstr("pid1=sleep 1000"));
  EXPECT_THAT(text, HasSubstr("exec-file=0\n"));
  EXPECT_EQ(OwnerOnDisk(paths.upper() + "/by-exec"), "0:0");

  // Delete: nothing left.
  const ProcessIdentity shim = state->shim;
  ASSERT_TRUE(runtime_->Delete("mapped", /*force=*/true).ok());
  EXPECT_FALSE(std::filesystem::exists(paths.run_dir));
  EXPECT_FALSE(std::filesystem::exists(paths.data_dir));
  EXPECT_THAT(HostMountsUnder(paths.data_dir), ::testing::IsEmpty());
  EXPECT_THAT(HostMountsUnder(layer_), ::testing::IsEmpty());
  auto driver = HostCgroupDriver(kCgroupParent);
  ASSERT_TRUE(driver.ok()) << driver.status();
  EXPECT_TRUE(absl::IsNotFound((*driver)->Open("mapped").status()));
  for (const ProcessIdentity& p : {state->init, shim}) {
    // Gone, or at most a zombie the sandbox's reaper has not collected yet.
    if (absl::StatusOr<UniqueFd> pidfd = p.Open(); pidfd.ok()) {
      pollfd poll_fd{pidfd->get(), POLLIN, 0};
      EXPECT_EQ(poll(&poll_fd, 1, 0), 1) << "pid " << p.pid << " still runs";
    }
  }
  EXPECT_TRUE(runtime_->List().empty());
}

// The mapped root holds Docker's capabilities inside its namespace only: no device nodes, no
// changing host-owned files, no writing a read-only bind. A host directory owned by host root
// is readable (idmapped: root's inside); what the container's root writes into a writable
// bind lands as host uid 0, as a root without a user namespace would write it. The hardened
// defaults still hold.
TEST_F(UsernsTest, MappedRootCannotDoHostRootThingsAndDefaultsHold) {
  const std::string shared = "/var/lib/mesh/host-shared";
  const std::string readonly = "/var/lib/mesh/host-readonly";
  std::filesystem::create_directories(shared);
  std::filesystem::create_directories(readonly);
  ASSERT_EQ(chmod(readonly.c_str(), 0700), 0);
  ASSERT_TRUE(WriteFileAtomically(readonly + "/secret", "host root's\n", 0600).ok());
  ContainerSpec spec =
      Spec("confined",
           {"sh", "-c",
            "echo dev=$(ls /dev | tr '\\n' ' '); "
            "stat -c 'null=%u:%g %a' /dev/null; head -c 4 /dev/zero | wc -c | sed 's/^/zero=/'; "
            "mknod /dev/evil c 1 3 2>/dev/null && echo mknod-ok || echo mknod-refused; "
            "mknod /tmp/evil c 1 3 2>/dev/null && echo mknod2-ok || echo mknod2-refused; "
            "chmod 600 /dev/null 2>/dev/null && echo chmod-ok || echo chmod-refused; "
            "cat /ro/secret; stat -c 'secret=%u:%g' /ro/secret; "
            "(echo x > /ro/new) 2>/dev/null && echo ro-written || echo ro-refused; "
            "echo from-container > /rw/file && echo rw-written; "
            "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/1/status; "
            "(echo 1 > /proc/sys/kernel/panic) 2>/dev/null && echo sys-writable || echo sys-ro; "
            "echo kcore=$(cat /proc/kcore | wc -c); "
            "grep -E ' /(proc|dev|sys|dev/pts|dev/shm|dev/mqueue) ' /proc/mounts; "
            "cd / && cd .. && pwd"});
  spec.mounts.push_back({"/ro", "bind", readonly, {"ro"}});
  spec.mounts.push_back({"/rw", "bind", shared, {"rw"}});
  ContainerState s = Run(spec);
  EXPECT_EQ(s.exit_code, 0);
  const std::string out = Output("confined");
  EXPECT_THAT(out, HasSubstr("dev=fd full mqueue null ptmx pts random shm stderr stdin stdout "
                             "tty urandom zero\n"));
  // The host's /dev/null, bound in: owned by host root, which the namespace does not map.
  EXPECT_THAT(out, HasSubstr("null=65534:65534 666\n"));
  EXPECT_THAT(out, HasSubstr("zero=4\n"));
  EXPECT_THAT(out, HasSubstr("mknod-refused\n"));
  EXPECT_THAT(out, HasSubstr("mknod2-refused\n"));
  EXPECT_THAT(out, HasSubstr("chmod-refused\n"));
  EXPECT_THAT(out, HasSubstr("host root's\nsecret=0:0\n"));
  EXPECT_THAT(out, HasSubstr("ro-refused\n"));
  EXPECT_THAT(out, HasSubstr("rw-written\n"));
  EXPECT_THAT(out, HasSubstr("CapEff:\t00000000a80425fb"));
  EXPECT_THAT(out, HasSubstr("CapBnd:\t00000000a80425fb"));
  EXPECT_THAT(out, HasSubstr("NoNewPrivs:\t1"));
  EXPECT_THAT(out, HasSubstr("Seccomp:\t2"));
  EXPECT_THAT(out, HasSubstr("sys-ro\n"));
  EXPECT_THAT(out, HasSubstr("kcore=0\n"));
  EXPECT_THAT(out, HasSubstr("proc /proc proc rw,nosuid,nodev,noexec"));
  EXPECT_THAT(out, HasSubstr("tmpfs /dev tmpfs rw,nosuid,noexec"));
  EXPECT_THAT(out, HasSubstr("devpts /dev/pts devpts rw,nosuid,noexec"));
  // /proc/mounts shows ids as the initial namespace sees them: devpts's gid=5 is host 100005.
  EXPECT_THAT(out, HasSubstr("gid=100005,mode=620,ptmxmode=666"));
  EXPECT_THAT(out, HasSubstr("/dev/shm tmpfs rw,nosuid,nodev,noexec"));
  EXPECT_THAT(out, HasSubstr("mqueue /dev/mqueue mqueue rw,nosuid,nodev,noexec"));
  EXPECT_THAT(out, HasSubstr("sysfs /sys sysfs ro,nosuid,nodev,noexec"));
  EXPECT_THAT(out, HasSubstr("\n/\n"));
  EXPECT_FALSE(std::filesystem::exists(readonly + "/new"));
  EXPECT_EQ(OwnerOnDisk(readonly + "/secret"), "0:0");
  EXPECT_EQ(*ReadFile(shared + "/file"), "from-container\n");
  EXPECT_EQ(OwnerOnDisk(shared + "/file"), "0:0");
  ASSERT_TRUE(runtime_->Delete("confined").ok());
}

// A bad mapping is InvalidArgument naming the container and the fix; nothing is created.
TEST_F(UsernsTest, BadMappingIsAClearErrorThatChangesNothing) {
  struct Case {
    std::string name;
    std::function<void(ContainerSpec&)> change;
    std::string message;
  };
  std::vector<IdMapping> too_many;
  for (uint32_t i = 0; i < 341; ++i) too_many.push_back({i, 100000 + i, 1});
  const std::vector<Case> cases = {
      {"overlap inside",
       [](ContainerSpec& s) {
         s.uid_mappings = {{0, 100000, 1000}, {500, 300000, 10}};
       },
       "overlaps uid_mappings[0]"},
      {"overlap outside",
       [](ContainerSpec& s) {
         s.gid_mappings = {{0, 100000, 1000}, {5000, 100500, 10}};
       },
       "on the host side"},
      {"size 0",
       [](ContainerSpec& s) {
         s.uid_mappings = {{0, 100000, 0}};
       },
       "has size 0"},
      {"overflow",
       [](ContainerSpec& s) {
         s.uid_mappings = {{0, 4294967000u, 65536}};
       },
       "runs past id 4294967294"},
      {"341 lines", [&](ContainerSpec& s) { s.uid_mappings = too_many; }, "at most 340"},
      {"no mappings", [](ContainerSpec& s) { s.gid_mappings.clear(); }, "needs both"},
      {"mappings without a user namespace", [](ContainerSpec& s) { s.namespaces.clear(); },
       "has no user namespace"},
      {"joined by path",
       [](ContainerSpec& s) {
         s.namespaces = {{NamespaceType::kUser, "/proc/1/ns/user"}};
       },
       "joining an existing user namespace"},
      {"root unmapped",
       [](ContainerSpec& s) {
         s.uid_mappings = {{1, 100000, 65535}};
       },
       "must map container uid 0"},
      {"user unmapped",
       [](ContainerSpec& s) {
         s.process.user.uid = 70000;
         s.process.user.gid = 70000;
       },
       "uid 70000 is not in uid_mappings"},
  };
  for (const Case& c : cases) {
    ContainerSpec spec = Spec("bad-map", {"true"});
    c.change(spec);
    auto created = runtime_->Create(spec);
    EXPECT_TRUE(absl::IsInvalidArgument(created.status())) << c.name << ": " << created.status();
    EXPECT_THAT(std::string(created.status().message()), HasSubstr("container \"bad-map\""))
        << c.name;
    EXPECT_THAT(std::string(created.status().message()), HasSubstr(c.message)) << c.name;
  }
  EXPECT_TRUE(runtime_->List().empty());
  EXPECT_FALSE(std::filesystem::exists(runtime_->PathsOf("bad-map").data_dir));
  EXPECT_FALSE(std::filesystem::exists(runtime_->PathsOf("bad-map").run_dir));
  if (auto driver = HostCgroupDriver(kCgroupParent); driver.ok()) {
    EXPECT_TRUE(absl::IsNotFound((*driver)->Open("bad-map").status()));
  }
}

// A bind source on a filesystem without idmapped mounts (procfs) is a clear error at Create,
// and nothing is left.
TEST_F(UsernsTest, BindSourceWithoutIdmapSupportIsAClearError) {
  ContainerSpec spec = Spec("no-idmap", {"true"});
  spec.mounts.push_back({"/host-proc", "bind", "/proc/sys", {"ro"}});
  auto created = runtime_->Create(spec);
  EXPECT_TRUE(absl::IsFailedPrecondition(created.status())) << created.status();
  EXPECT_THAT(std::string(created.status().message()),
              HasSubstr("does not support idmapped mounts"));
  EXPECT_THAT(std::string(created.status().message()), HasSubstr("\"/host-proc\""));
  EXPECT_TRUE(runtime_->List().empty());
  EXPECT_FALSE(std::filesystem::exists(runtime_->PathsOf("no-idmap").data_dir));
}

// A network namespace joined by path belongs to the initial user namespace: the shim enters
// it for the clone (the mapped root could not), and sysfs, which cannot be mounted fresh for
// it, is the host's bound read-only.
TEST_F(UsernsTest, JoinedNetworkNamespaceWorksAndSysIsBoundReadOnly) {
  ContainerSpec spec = Spec(
      "joined", {"sh", "-c",
                 "ls /sys/class/net | tr '\\n' ' ' | sed 's/^/links=/'; echo; "
                 "grep ' /sys ' /proc/mounts; (echo x > /sys/kernel/uevent_helper) 2>/dev/null "
                 "&& echo sys-writable || echo sys-ro; hostname; id -u"});
  spec.namespaces.push_back({NamespaceType::kNetwork, absl::StrCat("/proc/", getpid(), "/ns/net")});
  ContainerState s = Run(spec);
  EXPECT_EQ(s.exit_code, 0);
  const std::string out = Output("joined");
  EXPECT_THAT(out, HasSubstr(absl::StrCat(::mesh::testing::Sandbox::kHostLink, " ")));
  EXPECT_THAT(out, HasSubstr(" /sys sysfs ro,nosuid,nodev,noexec"));
  EXPECT_THAT(out, HasSubstr("sys-ro\n"));
  EXPECT_THAT(out, HasSubstr("joined\n0\n"));
  // The shim went back to its own network namespace: this one is untouched.
  ASSERT_TRUE(runtime_->Delete("joined").ok());
}

// The container's process becomes root of its namespace after clone, which clears the
// parent-death signal (a change of ids): it is set again, so a killed shim still takes the
// container with it.
TEST_F(UsernsTest, KilledShimTakesTheContainerWithIt) {
  ASSERT_TRUE(runtime_->Create(Spec("orphan", {"sleep", "1000"})).ok());
  ASSERT_TRUE(runtime_->Start("orphan").ok());
  auto state = runtime_->State("orphan");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_THAT(ReadFile(absl::StrCat("/proc/", state->init.pid, "/status")).value_or(""),
              HasSubstr("Uid:\t100000\t"));
  auto init = state->init.Open();
  ASSERT_TRUE(init.ok()) << init.status();
  ASSERT_EQ(kill(state->shim.pid, SIGKILL), 0);
  EXPECT_TRUE(WaitFor(
                  [&] {
                    pollfd p{init->get(), POLLIN, 0};
                    return poll(&p, 1, 0) == 1;
                  },
                  absl::Seconds(10), "the container's init to end")
                  .ok());
  auto lost = runtime_->State("orphan");
  ASSERT_TRUE(lost.ok()) << lost.status();
  EXPECT_EQ(lost->status, Status::kStopped);
  ASSERT_TRUE(runtime_->Delete("orphan").ok());
}

// A terminal, init and a read-only root work in a user namespace too.
TEST_F(UsernsTest, TerminalAndInitInAUserNamespace) {
  ContainerSpec spec =
      Spec("tty-init", {"sh", "-c",
                        "tty; test -c /dev/console && echo console; id -u; echo pid=$$; "
                        "touch /new 2>/dev/null && echo root-writable || echo root-ro"});
  spec.process.terminal = true;
  spec.init = true;
  spec.readonly_root = true;
  ContainerState s = Run(spec);
  EXPECT_EQ(s.exit_code, 0);
  const std::string out = Output("tty-init");
  EXPECT_THAT(out, HasSubstr("/dev/pts/0"));
  EXPECT_THAT(out, HasSubstr("console"));
  EXPECT_THAT(out, HasSubstr("\n0\r\n"));
  EXPECT_THAT(out, HasSubstr("pid=2"));
  EXPECT_THAT(out, HasSubstr("root-ro"));
  ASSERT_TRUE(runtime_->Delete("tty-init").ok());
}

}  // namespace
}  // namespace mesh::runtime
