// Runtime hardening through the runtime and its shim, as root in the sandbox (TESTING.md
// catalogue): a rename race on mount destinations during create (#10), the syscall table walked
// inside a real container (#3), and a container's terminal resized after it started.
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "base/atomic_file.h"
#include "base/wait.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/container/cgroup_access.h"
#include "runtime/container/runtime.h"
#include "runtime/image/digest.h"
#include "runtime/security/process_security.h"
#include "runtime/security/syscalls.h"
#include "runtime/spec/defaults.h"
#include "tests/integration/runtime/syscall_walk_check.h"
#include "tests/support/busybox_layer.h"
#include "tests/support/container_fixture.h"
#include "tests/support/sandbox.h"
#include "tests/unit/runtime/security/seccomp_bpf_eval.h"

namespace mesh::runtime {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kCgroupParent[] = "mesh-test-hardening";

class HardeningTest : public ::mesh::testing::ContainerFixture {
 protected:
  HardeningTest() : ContainerFixture(kCgroupParent) {}
};

// Every entry under `dir` (relative path, type, mode, and a regular file's content), sorted.
std::string Snapshot(const std::string& dir) {
  std::vector<std::string> entries;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    struct stat st;
    if (lstat(e.path().c_str(), &st) != 0) continue;
    std::string entry =
        absl::StrCat(e.path().lexically_relative(dir).string(), " ", absl::Hex(st.st_mode));
    if (S_ISREG(st.st_mode)) absl::StrAppend(&entry, " ", ReadFile(e.path()).value_or("?"));
    entries.push_back(std::move(entry));
  }
  std::sort(entries.begin(), entries.end());
  return absl::StrJoin(entries, "\n");
}

// Mount points of the tmpfs mounts of 1 MiB in a mountinfo (the test's own mounts).
std::vector<std::string> RaceMountPoints(const std::string& mountinfo) {
  std::vector<std::string> points;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    if (!absl::StrContains(line, " - tmpfs ") || !absl::StrContains(line, "size=1024k")) continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() > 4) points.emplace_back(f[4]);
  }
  return points;
}

bool Exchange(const std::string& path) {
  return renameat2(AT_FDCWD, path.c_str(), AT_FDCWD, (path + ".swap").c_str(), RENAME_EXCHANGE) ==
         0;
}

// TESTING.md 10, the rename race (CVE-2019-16884, CVE-2021-30465 and their kind): while
// containers are created in a loop, a thread keeps exchanging a directory on the way to a mount
// destination with a symlink to a host canary directory (renameat2 RENAME_EXCHANGE), at the three
// places an attacker might reach: the image layer, a volume (bind source) that the destination
// of a later mount lies in, and the container's own upper dir (made as soon as it exists, before
// the shim mounts the overlay). Each destination has a missing last component ("made"), so a
// runtime that followed the symlink out would create it in the canary. Every create either
// fails cleanly (an error, no state left) or has all three mounts inside the rootfs (seen in its
// PID 1's mountinfo, which lists only mounts under its root); the canary is unchanged and
// nothing is mounted on it in the host's mount namespace.
TEST_F(HardeningTest, RenameRaceDuringCreateStaysInsideTheRootfs) {
  constexpr int kCreates = 150;
  const std::string canary = absl::StrCat(::mesh::testing::Sandbox::kStateDir, "/race-canary");
  std::filesystem::create_directories(canary + "/sub");
  ASSERT_TRUE(WriteFileAtomically(canary + "/file", "host\n", 0644).ok());
  ASSERT_TRUE(WriteFileAtomically(canary + "/sub/deep", "deep\n", 0600).ok());
  const std::string before = Snapshot(canary);
  const std::string before_hash = image::Sha256Of(before).ToString();

  // The layer and the volume: a directory and its ".swap" twin, a symlink to the canary.
  const std::string volume = absl::StrCat(::mesh::testing::Sandbox::kStateDir, "/race-volume");
  const std::string layer_site = layer_ + "/race-layer";
  const std::string volume_site = volume + "/sub";
  for (const std::string& site : {layer_site, volume_site}) {
    std::filesystem::create_directories(site);
    std::filesystem::create_symlink(canary, site + ".swap");
  }

  std::atomic<bool> stop{false};
  std::atomic<bool> creating{false};
  std::atomic<uint64_t> layer_swaps{0}, volume_swaps{0}, upper_swaps{0};
  std::mutex upper_mu;
  std::string upper_site;  // guarded by upper_mu; empty between creates
  std::thread swapper([&] {
    while (!stop.load()) {
      const bool during = creating.load();
      if (Exchange(layer_site) && during) ++layer_swaps;
      if (Exchange(volume_site) && during) ++volume_swaps;
      std::lock_guard<std::mutex> lock(upper_mu);
      if (upper_site.empty()) continue;
      // ENOENT until Create has made the upper dir, EEXIST afterwards: both expected, ignored.
      (void)!mkdir(upper_site.c_str(), 0755);
      (void)!symlink(canary.c_str(), (upper_site + ".swap").c_str());
      if (Exchange(upper_site)) ++upper_swaps;
    }
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Join() {
      stop = true;
      thread.join();
    }
  } join{stop, swapper};

  int created_ok = 0, failed = 0, data_left = 0;
  std::vector<std::string> errors;
  std::map<std::string, int> mount_points;
  for (int i = 0; i < kCreates; ++i) {
    const std::string id = absl::StrCat("race", i);
    const ContainerPaths paths = runtime_->PathsOf(id);
    ContainerSpec spec = Spec(id, {"true"});
    spec.mounts.push_back(
        {.destination = "/race-layer/made", .type = "tmpfs", .options = {"size=1m"}});
    spec.mounts.push_back(
        {.destination = "/vol", .type = "bind", .source = volume, .options = {"rbind"}});
    spec.mounts.push_back(
        {.destination = "/vol/sub/made", .type = "tmpfs", .options = {"size=1m"}});
    spec.mounts.push_back(
        {.destination = "/race-upper/made", .type = "tmpfs", .options = {"size=1m"}});
    {
      std::lock_guard<std::mutex> lock(upper_mu);
      upper_site = paths.upper() + "/race-upper";
    }
    creating = true;
    absl::StatusOr<ContainerState> created = runtime_->Create(spec);
    creating = false;
    {
      std::lock_guard<std::mutex> lock(upper_mu);
      upper_site.clear();
    }
    if (created.ok()) {
      ++created_ok;
      absl::StatusOr<std::string> mountinfo =
          ReadFile(absl::StrCat("/proc/", created->init.pid, "/mountinfo"));
      ASSERT_TRUE(mountinfo.ok()) << mountinfo.status();
      const std::vector<std::string> points = RaceMountPoints(*mountinfo);
      EXPECT_EQ(points.size(), 3u) << id << ": a mount is not under the container's root\n"
                                   << *mountinfo;
      for (const std::string& p : points) ++mount_points[p];
      ASSERT_TRUE(runtime_->Delete(id, /*force=*/true).ok()) << id;
    } else {
      ++failed;
      EXPECT_FALSE(created.status().message().empty());
      EXPECT_FALSE(std::filesystem::exists(paths.run_dir)) << id << ": " << created.status();
      // The swapper may have written into the upper dir while Create removed it.
      if (std::filesystem::exists(paths.data_dir)) {
        if (data_left++ == 0) {
          std::cout << "  left after a failed create (" << id << "):\n"
                    << Snapshot(paths.data_dir) << "\n";
        }
        std::filesystem::remove_all(paths.data_dir);
      }
      if (errors.size() < 5) errors.push_back(created.status().ToString());
    }
    ASSERT_EQ(Snapshot(canary), before) << "the canary changed after create " << id;
  }
  stop = true;

  std::cout << kCreates << " creates under a rename race: " << created_ok << " created, " << failed
            << " clean errors (" << data_left
            << " left a data dir the swapper had written into); swaps during creates: layer "
            << layer_swaps << ", volume " << volume_swaps << ", upper dir " << upper_swaps << "\n";
  for (const std::string& e : errors) std::cout << "  error: " << e << "\n";
  for (const auto& [point, count] : mount_points) {
    std::cout << "  tmpfs at " << point << " (inside the rootfs): " << count << "\n";
  }
  RecordProperty("race_creates_ok", created_ok);
  RecordProperty("race_creates_failed", failed);
  EXPECT_GT(layer_swaps.load(), 0u);
  EXPECT_GT(volume_swaps.load(), 0u);
  EXPECT_GT(upper_swaps.load(), 0u);
  EXPECT_EQ(created_ok + failed, kCreates);
  EXPECT_GT(created_ok, 0);

  const std::string after = Snapshot(canary);
  EXPECT_EQ(after, before);
  EXPECT_EQ(image::Sha256Of(after).ToString(), before_hash);
  std::cout << "canary " << canary << " unchanged: " << before_hash << "\n";
  absl::StatusOr<std::string> host_mounts = ReadFile("/proc/self/mountinfo");
  ASSERT_TRUE(host_mounts.ok());
  EXPECT_FALSE(absl::StrContains(*host_mounts, "race-canary")) << *host_mounts;
}

// TESTING.md 3: a static build of the syscall walk (security_syscall_walk.cc) runs as the
// command of a default container, under the filter the shim loaded; the verdict for each of the
// 362 known syscalls, and for the argument-filtered and unknown probes, is what the profile says
// (the userspace evaluation of the program Prepare compiles for the same spec).
TEST_F(HardeningTest, SyscallWalkInsideAContainerBlocksExactlyTheProfile) {
  std::filesystem::copy_file(MESH_SECURITY_SYSCALL_WALK_STATIC_PATH, layer_ + "/bin/syscall-walk",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::permissions(layer_ + "/bin/syscall-walk", std::filesystem::perms(0755));
  const ContainerSpec spec = Spec("walk", {"/bin/syscall-walk"});
  ContainerState s = Run(spec);
  EXPECT_EQ(s.status, Status::kStopped);
  EXPECT_EQ(s.exit_code, 0) << Output("walk");
  const std::string out = Output("walk");
  ASSERT_THAT(out, HasSubstr("summary")) << out;

  const ContainerSpec full = WithDefaults(spec);
  absl::StatusOr<security::PreparedSecurity> sec =
      security::Prepare(full.process, full.seccomp, full.privileged);
  ASSERT_TRUE(sec.ok()) << sec.status();
  ASSERT_NE(sec->seccomp(), nullptr);
  const std::vector<sock_filter>& program = sec->seccomp()->instructions();
  std::set<std::string> profile_blocked;
  for (const security::SyscallInfo& info : security::KnownSyscalls()) {
    if (security::ExpectedVerdict(program, info.number, 0) != "allow") {
      profile_blocked.insert(info.name);
    }
  }
  const security::WalkResult walk = security::CheckWalk(out, program);
  const std::set<std::string>& blocked = walk.blocked;
  const int syscalls = walk.syscalls;
  const int probes = static_cast<int>(walk.probes.size());
  EXPECT_EQ(syscalls, static_cast<int>(security::KnownSyscalls().size()));
  EXPECT_EQ(probes, 16);
  EXPECT_EQ(blocked, profile_blocked) << "walk: " << absl::StrJoin(blocked, " ")
                                      << "\nprofile: " << absl::StrJoin(profile_blocked, " ");
  EXPECT_EQ(blocked.size(), 67u);
  EXPECT_THAT(out,
              HasSubstr(absl::StrCat("summary ", blocked.size(), " of ", syscalls, " blocked")));
  std::cout << "inside container \"walk\": " << blocked.size() << " of " << syscalls
            << " blocked\n";
  RecordProperty("syscalls_blocked_in_container", static_cast<int>(blocked.size()));
  ASSERT_TRUE(runtime_->Delete("walk").ok());
}

// Runtime::Resize on a running container: the container's own terminal (process.terminal)
// takes the new size while its command runs (the container test sets it before Start only).
TEST_F(HardeningTest, ContainerTerminalResizedAfterStart) {
  ContainerSpec spec =
      Spec("resized", {"sh", "-c",
                       "echo before=$(stty size); i=0; "
                       "while [ \"$(stty size)\" != '40 100' ] && [ $i -lt 200 ]; do "
                       "sleep 0.05; i=$((i+1)); done; echo after=$(stty size)"});
  spec.process.terminal = true;
  ASSERT_TRUE(runtime_->Create(spec).ok());
  ASSERT_TRUE(runtime_->Start("resized").ok());
  // Once the command has read its first size: the change comes while it runs.
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(Output("resized"), "before="); },
                      absl::Seconds(10), "the command's first stty")
                  .ok());
  ASSERT_TRUE(runtime_->Resize("resized", 40, 100).ok());
  auto done = runtime_->Wait("resized", absl::Seconds(30));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->exit_code, 0);
  const std::string out = Output("resized");
  EXPECT_THAT(out, Not(HasSubstr("before=40 100"))) << out;
  EXPECT_THAT(out, HasSubstr("after=40 100")) << out;
  std::cout << "terminal of \"resized\": " << absl::StrReplaceAll(out, {{"\r", ""}, {"\n", "; "}})
            << "\n";
  ASSERT_TRUE(runtime_->Delete("resized").ok());
}

// A container that joins another's uts namespace (a pod) sees the pod's hostname and leaves
// it alone, with and without a user namespace of its own.
TEST_F(HardeningTest, JoinedUtsNamespaceKeepsThePodsHostname) {
  ContainerSpec pod = Spec("pod", {"sleep", "60"});
  pod.hostname = "the-pod";
  auto created = runtime_->Create(pod);
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_TRUE(runtime_->Start("pod").ok());
  const std::string uts = absl::StrCat("/proc/", created->init.pid, "/ns/uts");
  for (bool userns : {false, true}) {
    const std::string id = userns ? "member-userns" : "member";
    ContainerSpec member = Spec(id, {"hostname"});
    member.hostname = "not-the-pod";
    member.namespaces.push_back({NamespaceType::kUts, uts});
    if (userns) {
      member.namespaces.push_back({NamespaceType::kUser, ""});
      member.uid_mappings = {{0, 100000, 65536}};
      member.gid_mappings = {{0, 100000, 65536}};
    }
    ContainerState done = Run(member);
    EXPECT_EQ(done.exit_code, 0) << id;
    EXPECT_EQ(Output(id), "the-pod\n") << id;
    ASSERT_TRUE(runtime_->Delete(id).ok()) << id;
  }
  ASSERT_TRUE(runtime_->Kill("pod", SIGKILL).ok());
  ASSERT_TRUE(runtime_->Wait("pod", absl::Seconds(30)).ok());
  ASSERT_TRUE(runtime_->Delete("pod").ok());
}

// An exec with a terminal, resized while it runs (as `docker exec -it` does when the window
// changes): the process sees the new size.
TEST_F(HardeningTest, ExecTerminalResizedAfterStart) {
  ContainerSpec spec = Spec("execsize", {"sleep", "60"});
  ASSERT_TRUE(runtime_->Create(spec).ok());
  ASSERT_TRUE(runtime_->Start("execsize").ok());
  int out[2], resize[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(resize, O_CLOEXEC), 0);
  UniqueFd out_read(out[0]), out_write(out[1]), resize_read(resize[0]), resize_write(resize[1]);
  absl::StatusOr<ExitStatus> status = absl::UnknownError("not run");
  std::thread exec([&] {
    status =
        runtime_->Exec("execsize",
                       {.args = {"sh", "-c",
                                 "echo before=$(stty size); i=0; "
                                 "while [ \"$(stty size)\" != '40 100' ] && [ $i -lt 200 ]; do "
                                 "sleep 0.05; i=$((i+1)); done; echo after=$(stty size)"},
                        .terminal = true,
                        .rows = 24,
                        .cols = 80},
                       {.stdout_fd = out_write.get(), .resize_fd = resize_read.get()});
    out_write.Reset();  // EOF for the reader below
  });
  // Once the process has printed its first size, the change comes while it runs.
  std::string text;
  char buf[256];
  bool resized = false;
  for (ssize_t n; (n = read(out_read.get(), buf, sizeof(buf))) > 0;) {
    text.append(buf, static_cast<size_t>(n));
    if (!resized && absl::StrContains(text, "before=")) {
      const TerminalSize size{40, 100};
      EXPECT_EQ(write(resize_write.get(), &size, sizeof(size)), 4);
      resized = true;
    }
  }
  exec.join();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->code, 0);
  EXPECT_TRUE(resized) << text;
  EXPECT_THAT(text, HasSubstr("before=24 80")) << text;
  EXPECT_THAT(text, HasSubstr("after=40 100")) << text;
  ASSERT_TRUE(runtime_->Kill("execsize", SIGKILL).ok());
  ASSERT_TRUE(runtime_->Wait("execsize", absl::Seconds(30)).ok());
  ASSERT_TRUE(runtime_->Delete("execsize").ok());
}

}  // namespace
}  // namespace mesh::runtime
