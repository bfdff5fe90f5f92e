// The v2 driver's file-by-file mapping, against the fake cgroupfs. This machine has no usable
// cgroup v2 controllers, so these tests are what covers the v2 driver here (docs/cgroups.md).
#include "runtime/cgroups/cgroup_v2.h"

#include <signal.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "base/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/runtime/cgroups/device_program_eval.h"
#include "tests/unit/runtime/cgroups/fake_host.h"

namespace mesh::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

class CgroupV2Test : public ::testing::Test {
 protected:
  void Make(FakeV2Options options = FakeV2Options()) {
    absl::StatusOr<FakeHost> host =
        MakeFakeHost(CgroupVersion::kV2, FakeV1Options(), std::move(options));
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = std::move(*host);
    absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = host_.driver->Create("c1");
    ASSERT_TRUE(cgroup.ok()) << cgroup.status();
    cgroup_ = std::move(*cgroup);
  }
  void SetUp() override { Make(); }

  std::string Root() { return host_.fs->root() + "/cgroup2"; }
  std::string File(const std::string& file) { return Root() + "/mesh/c1/" + file; }
  std::string Read(const std::string& file) { return Must(ReadFile(File(file))); }
  std::vector<std::string> WritesTo(const std::string& suffix) {
    std::vector<std::string> out;
    for (const auto& write : host_.fs->writes()) {
      if (absl::EndsWith(write.first, suffix)) out.push_back(write.second);
    }
    return out;
  }

  FakeHost host_;
  std::unique_ptr<Cgroup> cgroup_;
};

TEST_F(CgroupV2Test, CreateEnablesTheControllersFromTheRootDown) {
  EXPECT_EQ(Must(ReadFile(Root() + "/cgroup.subtree_control")), "cpu memory pids\n");
  EXPECT_EQ(Must(ReadFile(Root() + "/mesh/cgroup.subtree_control")), "cpu memory pids\n");
  EXPECT_EQ(Read("cgroup.controllers"), "cpu memory pids\n");
  for (const char* file : {"memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max"}) {
    EXPECT_TRUE(host_.fs->Exists(File(file))) << file;
  }
  // One controller per write, and once: a second Create finds them enabled.
  EXPECT_THAT(WritesTo("cgroup.subtree_control"),
              ElementsAre("+cpu", "+memory", "+pids", "+cpu", "+memory", "+pids"));
  ASSERT_TRUE(host_.driver->Create("c2").ok());
  EXPECT_EQ(WritesTo("cgroup.subtree_control").size(), 6u);
}

TEST_F(CgroupV2Test, AParentWithProcessesCannotPassControllersDown) {
  ASSERT_TRUE(cgroup_->Destroy().ok());
  ASSERT_TRUE(host_.driver->RemoveParent().ok());
  ASSERT_TRUE(host_.fs->MakeDir(Root() + "/mesh").ok());
  ASSERT_TRUE(host_.fs->Write(Root() + "/mesh/cgroup.procs", "300").ok());
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = host_.driver->Create("c1");
  EXPECT_EQ(cgroup.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(cgroup.status().message(), HasSubstr("pick a parent without processes"));
  EXPECT_FALSE(host_.fs->Exists(File("")));
}

TEST_F(CgroupV2Test, ApplyWritesTheV2Files) {
  Resources r;
  r.memory_limit = 32 << 20;
  r.cpu_quota = 50000;
  r.cpu_period = 100000;
  r.cpu_shares = 512;
  r.pids_limit = 16;
  absl::Status applied = cgroup_->Apply(r);
  ASSERT_TRUE(applied.ok()) << applied;
  EXPECT_EQ(Read("memory.max"), "33554432\n");
  EXPECT_EQ(Read("memory.swap.max"), "0\n");  // memory_swap unset: no swap.
  EXPECT_EQ(Read("cpu.max"), "50000 100000\n");
  EXPECT_EQ(Read("cpu.weight"), "20\n");  // 1 + (510 * 9999) / 262142
  EXPECT_EQ(Read("pids.max"), "16\n");
}

TEST_F(CgroupV2Test, SwapIsMemorySwapMinusMemory) {
  Resources r;
  r.memory_limit = 64 << 20;
  r.memory_swap = 96 << 20;
  ASSERT_TRUE(cgroup_->Apply(r).ok());
  EXPECT_EQ(Read("memory.swap.max"), "33554432\n");
  r.memory_swap = -1;
  ASSERT_TRUE(cgroup_->Apply(r).ok());
  EXPECT_EQ(Read("memory.swap.max"), "max\n");
}

TEST_F(CgroupV2Test, QuotaAndPeriodCanBeSetAlone) {
  Resources period;
  period.cpu_period = 20000;
  ASSERT_TRUE(cgroup_->Apply(period).ok());
  EXPECT_EQ(Read("cpu.max"), "max 20000\n");
  Resources quota;
  quota.cpu_quota = 10000;
  ASSERT_TRUE(cgroup_->Apply(quota).ok());
  EXPECT_EQ(Read("cpu.max"), "10000 20000\n");
  ASSERT_TRUE(cgroup_->Apply(period).ok());
  EXPECT_EQ(Read("cpu.max"), "10000 20000\n");
  EXPECT_THAT(WritesTo("cpu.max"), ElementsAre("max 20000", "10000", "10000 20000"));
}

TEST_F(CgroupV2Test, AMissingControllerFileIsRefusedBeforeAnyWrite) {
  ASSERT_TRUE(host_.fs->RemoveFileForTest(File("pids.max")).ok());
  const size_t writes = host_.fs->writes().size();
  Resources r;
  r.memory_limit = 64 << 20;
  r.pids_limit = 10;
  absl::Status s = cgroup_->Apply(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("\"pids\" controller is not enabled"));
  EXPECT_EQ(host_.fs->writes().size(), writes);
}

TEST_F(CgroupV2Test, WithoutSwapFileOnlyASwapLimitIsRefused) {
  FakeV2Options options;
  options.swap_file = false;
  Make(options);
  Resources r;
  r.memory_limit = 64 << 20;
  r.memory_swap = 128 << 20;
  EXPECT_EQ(cgroup_->Apply(r).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Read("memory.max"), "max\n");
  r.memory_swap.reset();
  ASSERT_TRUE(cgroup_->Apply(r).ok());
  EXPECT_EQ(Read("memory.max"), "67108864\n");
}

TEST_F(CgroupV2Test, StatsReadTheV2Counters) {
  ASSERT_TRUE(host_.fs->SetFileForTest(File("memory.current"), "1048576\n").ok());
  ASSERT_TRUE(host_.fs->SetFileForTest(File("memory.peak"), "2097152\n").ok());
  ASSERT_TRUE(host_.fs
                  ->SetFileForTest(File("cpu.stat"),
                                   "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"
                                   "nr_periods 9\nnr_throttled 4\nthrottled_usec 77\n")
                  .ok());
  ASSERT_TRUE(host_.fs->SetFileForTest(File("pids.events"), "max 2\n").ok());
  ASSERT_TRUE(host_.fs
                  ->SetFileForTest(File("memory.events"),
                                   "low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\noom_group_kill 0\n")
                  .ok());
  ASSERT_TRUE(cgroup_->AddProcess(5).ok());
  ASSERT_TRUE(cgroup_->AddProcess(6).ok());
  CgroupStats stats = Must(cgroup_->Stats());
  EXPECT_EQ(stats.memory_usage_bytes, 1048576u);
  EXPECT_EQ(stats.memory_peak_bytes, 2097152u);
  EXPECT_EQ(stats.cpu_usage_ns, 1500000u);
  EXPECT_EQ(stats.cpu_throttled_periods, 4u);
  EXPECT_EQ(stats.pids_current, 2u);
  EXPECT_EQ(stats.pids_rejected, 2u);
  EXPECT_EQ(stats.oom_kills, 2u);
}

TEST_F(CgroupV2Test, KernelsWithoutMemoryPeakReportNoPeak) {
  FakeV2Options options;
  options.peak_file = false;
  Make(options);
  EXPECT_FALSE(Must(cgroup_->Stats()).memory_peak_bytes.has_value());
}

TEST_F(CgroupV2Test, SigkillUsesCgroupKill) {
  for (pid_t pid : {1, 2, 3}) ASSERT_TRUE(cgroup_->AddProcess(pid).ok());
  ASSERT_TRUE(cgroup_->KillAll(SIGKILL).ok());
  EXPECT_THAT(WritesTo("cgroup.kill"), ElementsAre("1"));
  EXPECT_THAT(WritesTo("cgroup.freeze"), IsEmpty());  // No per-process loop needed.
  EXPECT_TRUE(Must(cgroup_->Pids()).empty());
  EXPECT_THAT(Read("cgroup.events"), HasSubstr("populated 0"));
}

TEST_F(CgroupV2Test, WithoutCgroupKillSigkillFreezesAndSignalsEachProcess) {
  FakeV2Options options;
  options.kill_file = false;
  Make(options);
  for (pid_t pid : {1, 2}) ASSERT_TRUE(cgroup_->AddProcess(pid).ok());
  ASSERT_TRUE(cgroup_->KillAll(SIGKILL).ok());
  EXPECT_THAT(WritesTo("cgroup.freeze"), ElementsAre("1", "0"));
  EXPECT_THAT(host_.fs->signals(), ElementsAre(Pair(1, SIGKILL), Pair(2, SIGKILL)));
  EXPECT_TRUE(Must(cgroup_->Pids()).empty());
}

TEST_F(CgroupV2Test, DirFdIsTheCgroupDirectory) {
  struct stat by_fd, by_path;
  ASSERT_EQ(fstat(cgroup_->dir_fd(), &by_fd), 0);
  ASSERT_EQ(stat(File("").c_str(), &by_path), 0);
  EXPECT_EQ(by_fd.st_ino, by_path.st_ino);
  EXPECT_TRUE(S_ISDIR(by_fd.st_mode));
  // Attach never touches the kernel, so it has no descriptor.
  EXPECT_EQ(Must(host_.driver->Attach("c1"))->dir_fd(), -1);
}

TEST_F(CgroupV2Test, DeviceRulesBecomeTheCgroupsDeviceProgram) {
  Resources r;
  r.devices = {DeviceRule{.allow = false, .type = 'a'},
               DeviceRule{.allow = true, .type = 'c', .major = 1, .minor = 3},
               DeviceRule{.allow = true, .type = 'c', .major = 136}};
  ASSERT_TRUE(cgroup_->Apply(r).ok());
  EXPECT_EQ(host_.fs->device_program_sets(), 1);
  std::vector<bpf_insn> program = host_.fs->DeviceProgramForTest(Root() + "/mesh/c1");
  ASSERT_FALSE(program.empty());
  EXPECT_EQ(Verdict(program, 'c', 1, 3, "rwm"), 1);
  EXPECT_EQ(Verdict(program, 'c', 136, 4, "rw"), 1);
  EXPECT_EQ(Verdict(program, 'b', 8, 0, "m"), 0);
  EXPECT_EQ(Verdict(program, 'c', 1, 5, "r"), 0);
  // Applying again replaces the program; Apply without devices leaves it alone.
  r.devices.push_back(DeviceRule{.allow = true, .type = 'c', .major = 1, .minor = 5});
  ASSERT_TRUE(cgroup_->Apply(r).ok());
  EXPECT_EQ(host_.fs->device_program_sets(), 2);
  program = host_.fs->DeviceProgramForTest(Root() + "/mesh/c1");
  EXPECT_EQ(Verdict(program, 'c', 1, 5, "r"), 1);
  Resources pids;
  pids.pids_limit = 5;
  ASSERT_TRUE(cgroup_->Apply(pids).ok());
  EXPECT_EQ(host_.fs->device_program_sets(), 2);
  // The program goes with the cgroup.
  ASSERT_TRUE(cgroup_->Destroy().ok());
  EXPECT_TRUE(host_.fs->DeviceProgramForTest(Root() + "/mesh/c1").empty());
}

TEST_F(CgroupV2Test, BadDeviceRulesAreRefusedBeforeAnything) {
  const size_t writes = host_.fs->writes().size();
  Resources r;
  r.pids_limit = 10;
  r.devices = {DeviceRule{.allow = true, .type = 'c', .major = 1, .minor = 3}};
  absl::Status s = cgroup_->Apply(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("devices[0] (allow c): the first rule must be for every"));
  EXPECT_EQ(host_.fs->writes().size(), writes);
  EXPECT_EQ(host_.fs->device_program_sets(), 0);
}

TEST_F(CgroupV2Test, HierarchyDirsIsTheOneDirectory) {
  std::vector<CgroupHierarchyDir> dirs = cgroup_->HierarchyDirs();
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_EQ(dirs[0].hierarchy, "");
  EXPECT_EQ(dirs[0].dir, Root() + "/mesh/c1");
}

TEST_F(CgroupV2Test, CreateRemovesTheDirectoryWhenOpeningItFails) {
  const std::string dir = Root() + "/mesh/c2";
  host_.fs->FailNextForTest(FakeCgroupFs::Op::kOpenDir, dir,
                            absl::PermissionDeniedError("injected"));
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = host_.driver->Create("c2");
  EXPECT_EQ(cgroup.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(host_.fs->Exists(dir));
}

}  // namespace
}  // namespace mesh::runtime
