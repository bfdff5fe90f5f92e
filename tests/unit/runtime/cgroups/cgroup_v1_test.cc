// The v1 driver's file-by-file mapping, against the fake cgroupfs.
#include "runtime/cgroups/cgroup_v1.h"

#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "base/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/spec/defaults.h"
#include "tests/unit/runtime/cgroups/fake_host.h"

namespace mesh::runtime {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr char kUnlimited[] = "9223372036854771712\n";

auto HierarchyDir(const std::string& hierarchy, const std::string& dir) {
  return AllOf(Field(&CgroupHierarchyDir::hierarchy, hierarchy),
               Field(&CgroupHierarchyDir::dir, dir));
}

class CgroupV1Test : public ::testing::Test {
 protected:
  void Make(FakeV1Options options = FakeV1Options()) {
    absl::StatusOr<FakeHost> host = MakeFakeHost(CgroupVersion::kV1, options);
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = std::move(*host);
    absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = host_.driver->Create("c1");
    ASSERT_TRUE(cgroup.ok()) << cgroup.status();
    cgroup_ = std::move(*cgroup);
  }
  void SetUp() override { Make(); }

  std::string File(const std::string& hierarchy, const std::string& file) {
    return host_.fs->root() + "/" + hierarchy + "/mesh/c1/" + file;
  }
  std::string Read(const std::string& hierarchy, const std::string& file) {
    return Must(ReadFile(File(hierarchy, file)));
  }
  // The values written to files whose name ends in `suffix`, in order.
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

TEST_F(CgroupV1Test, ApplyWritesTheV1Files) {
  Resources r;
  r.memory_limit = 32 << 20;
  r.cpu_quota = 50000;
  r.cpu_period = 100000;
  r.cpu_shares = 512;
  r.pids_limit = 16;
  absl::Status applied = cgroup_->Apply(r);
  ASSERT_TRUE(applied.ok()) << applied;
  EXPECT_EQ(Read("memory", "memory.limit_in_bytes"), "33554432\n");
  // memory_swap unset: no swap, so memory+swap = memory.
  EXPECT_EQ(Read("memory", "memory.memsw.limit_in_bytes"), "33554432\n");
  EXPECT_EQ(Read("cpu", "cpu.cfs_quota_us"), "50000\n");
  EXPECT_EQ(Read("cpu", "cpu.cfs_period_us"), "100000\n");
  EXPECT_EQ(Read("cpu", "cpu.shares"), "512\n");
  EXPECT_EQ(Read("pids", "pids.max"), "16\n");
}

TEST_F(CgroupV1Test, DefaultDeviceRulesDenyEverythingThenAllowEachDefaultDevice) {
  Resources r;
  r.devices = DefaultDeviceRules(false);
  absl::Status applied = cgroup_->Apply(r);
  ASSERT_TRUE(applied.ok()) << applied;
  EXPECT_THAT(WritesTo("devices.deny"), ElementsAre("a"));
  EXPECT_THAT(WritesTo("devices.allow"),
              ElementsAre("c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                          "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm"));
  const std::string expected =
      "c 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:2 rwm\n"
      "c 136:* rwm\n";
  EXPECT_EQ(Read("devices", "devices.list"), expected);
  // The same rules again give the same list: "a" clears the earlier exceptions first.
  ASSERT_TRUE(cgroup_->Apply(r).ok());
  EXPECT_EQ(Read("devices", "devices.list"), expected);
  // Resources without devices leave them alone.
  Resources pids;
  pids.pids_limit = 3;
  ASSERT_TRUE(cgroup_->Apply(pids).ok());
  EXPECT_EQ(Read("devices", "devices.list"), expected);
}

TEST_F(CgroupV1Test, PrivilegedAllowsEveryDevice) {
  Resources r;
  r.devices = DefaultDeviceRules(false);
  ASSERT_TRUE(cgroup_->Apply(r).ok());
  r.devices = DefaultDeviceRules(true);
  ASSERT_TRUE(cgroup_->Apply(r).ok());
  EXPECT_THAT(WritesTo("devices.allow").back(), "a");
  EXPECT_EQ(Read("devices", "devices.list"), "a *:* rwm\n");
}

TEST_F(CgroupV1Test, AnAllowDefaultTakesDenyExceptions) {
  Resources r;
  r.devices = {DeviceRule{.allow = true, .type = 'a'},
               DeviceRule{.allow = false, .type = 'b', .major = 8, .access = "m"}};
  ASSERT_TRUE(cgroup_->Apply(r).ok());
  EXPECT_THAT(WritesTo("devices.allow"), ElementsAre("a"));
  EXPECT_THAT(WritesTo("devices.deny"), ElementsAre("b 8:* m"));
}

TEST_F(CgroupV1Test, BadDeviceRulesAreRefusedBeforeAnyWrite) {
  const size_t writes = host_.fs->writes().size();
  Resources r;
  r.memory_limit = 64 << 20;
  r.devices = {DeviceRule{.allow = false, .type = 'a'},
               DeviceRule{.allow = true, .type = 'c', .major = 1, .minor = 3, .access = "rwx"}};
  absl::Status s = cgroup_->Apply(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("devices[1] (allow c): access \"rwx\" has 'x'"));
  EXPECT_THAT(s.message(), HasSubstr("apply resources to cgroup \"c1\" (v1)"));
  EXPECT_EQ(host_.fs->writes().size(), writes);
}

TEST_F(CgroupV1Test, MemoryAndMemswAreWrittenInTheOrderTheKernelAccepts) {
  // Raising: memsw must grow first (the fake refuses memory > memsw like the kernel).
  Resources r;
  r.memory_limit = 64 << 20;
  r.memory_swap = 128 << 20;
  ASSERT_TRUE(cgroup_->Apply(r).ok());
  r.memory_limit = 256 << 20;
  r.memory_swap = 512 << 20;
  absl::Status raised = cgroup_->Apply(r);
  ASSERT_TRUE(raised.ok()) << raised;
  // Lowering: memory must shrink first.
  r.memory_limit = 16 << 20;
  r.memory_swap.reset();
  absl::Status lowered = cgroup_->Apply(r);
  ASSERT_TRUE(lowered.ok()) << lowered;
  EXPECT_EQ(Read("memory", "memory.limit_in_bytes"), "16777216\n");
  EXPECT_EQ(Read("memory", "memory.memsw.limit_in_bytes"), "16777216\n");

  std::vector<std::string> order;
  for (const auto& write : host_.fs->writes()) {
    if (absl::StrContains(write.first, "limit_in_bytes")) {
      order.push_back(
          absl::StrCat(absl::StrContains(write.first, "memsw") ? "memsw=" : "mem=", write.second));
    }
  }
  // The first Apply starts from "unlimited" for both, so memory goes first.
  EXPECT_THAT(order, ElementsAre("mem=67108864", "memsw=134217728", "memsw=536870912",
                                 "mem=268435456", "mem=16777216", "memsw=16777216"));
}

TEST_F(CgroupV1Test, UnlimitedSwapIsMinusOne) {
  Resources r;
  r.memory_limit = 64 << 20;
  r.memory_swap = -1;
  ASSERT_TRUE(cgroup_->Apply(r).ok());
  EXPECT_EQ(Read("memory", "memory.memsw.limit_in_bytes"), kUnlimited);
  EXPECT_EQ(Must(cgroup_->Limits()).memory_swap, -1);
}

TEST_F(CgroupV1Test, WithoutSwapAccountingOnlyASwapLimitIsRefused) {
  FakeV1Options options;
  options.swap_accounting = false;
  Make(options);
  Resources r;
  r.memory_limit = 64 << 20;
  r.memory_swap = 128 << 20;
  r.pids_limit = 5;
  absl::Status s = cgroup_->Apply(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("swapaccount=1"));
  EXPECT_TRUE(host_.fs->writes().empty());  // Nothing written before the refusal.

  r.memory_swap.reset();  // No swap limit asked for: fine.
  ASSERT_TRUE(cgroup_->Apply(r).ok());
  EXPECT_EQ(Read("memory", "memory.limit_in_bytes"), "67108864\n");
  EXPECT_FALSE(Must(cgroup_->Limits()).memory_swap.has_value());
}

TEST_F(CgroupV1Test, StatsReadTheV1Counters) {
  ASSERT_TRUE(host_.fs->SetFileForTest(File("memory", "memory.usage_in_bytes"), "1048576\n").ok());
  ASSERT_TRUE(
      host_.fs->SetFileForTest(File("memory", "memory.max_usage_in_bytes"), "2097152\n").ok());
  ASSERT_TRUE(host_.fs->SetFileForTest(File("cpuacct", "cpuacct.usage"), "123456789\n").ok());
  ASSERT_TRUE(host_.fs
                  ->SetFileForTest(File("cpu", "cpu.stat"),
                                   "nr_periods 10\nnr_throttled 7\nthrottled_time 5000\n")
                  .ok());
  ASSERT_TRUE(host_.fs->SetFileForTest(File("pids", "pids.events"), "max 3\n").ok());
  ASSERT_TRUE(cgroup_->AddProcess(99).ok());
  CgroupStats stats = Must(cgroup_->Stats());
  EXPECT_EQ(stats.memory_usage_bytes, 1048576u);
  EXPECT_EQ(stats.memory_peak_bytes, 2097152u);
  EXPECT_EQ(stats.cpu_usage_ns, 123456789u);
  EXPECT_EQ(stats.cpu_throttled_periods, 7u);
  EXPECT_EQ(stats.pids_current, 1u);
  EXPECT_EQ(stats.pids_rejected, 3u);
  EXPECT_EQ(stats.oom_kills, 0u);
}

TEST_F(CgroupV1Test, KernelsWithoutTheOomKillCounterSayUnimplemented) {
  FakeV1Options options;
  options.oom_kill_counter = false;
  Make(options);
  absl::StatusOr<uint64_t> count = cgroup_->OomKillCount();
  EXPECT_EQ(count.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(count.status().message(), HasSubstr("4.13"));
  EXPECT_FALSE(Must(cgroup_->Stats()).oom_kills.has_value());
}

TEST_F(CgroupV1Test, SigkillWhileFrozenTakesEffectAtTheThaw) {
  for (pid_t pid : {1, 2}) ASSERT_TRUE(cgroup_->AddProcess(pid).ok());
  ASSERT_TRUE(cgroup_->KillAll(SIGKILL).ok());
  EXPECT_THAT(WritesTo("freezer.state"), ElementsAre("FROZEN", "THAWED"));
  EXPECT_THAT(host_.fs->signals(), ElementsAre(Pair(1, SIGKILL), Pair(2, SIGKILL)));
  EXPECT_TRUE(Must(cgroup_->Pids()).empty());
}

TEST_F(CgroupV1Test, CreateRemovesWhatItMadeWhenAHierarchyFails) {
  const std::string freezer = host_.fs->root() + "/freezer/mesh/c2";
  host_.fs->FailNextForTest(FakeCgroupFs::Op::kMakeDir, freezer,
                            absl::PermissionDeniedError("injected"));
  absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = host_.driver->Create("c2");
  EXPECT_EQ(cgroup.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(cgroup.status().message(), HasSubstr("create cgroup \"c2\" (v1)"));
  for (const char* h : {"memory", "cpu", "cpuacct", "pids", "freezer", "devices"}) {
    EXPECT_FALSE(host_.fs->Exists(host_.fs->root() + "/" + h + "/mesh/c2")) << h;
  }
  EXPECT_THAT(Must(host_.driver->List()), ElementsAre("c1"));
}

TEST(CgroupV1CoMountTest, CoMountedControllersShareOneDirectory) {
  std::shared_ptr<FakeCgroupFs> fs = Must(FakeCgroupFs::Create());
  ASSERT_NE(fs, nullptr);
  ASSERT_TRUE(fs->AddV1Hierarchy("cpu,cpuacct", {"cpu", "cpuacct"}).ok());
  for (const char* c : {"memory", "pids", "freezer", "devices"}) {
    ASSERT_TRUE(fs->AddV1Hierarchy(c, {c}).ok());
  }
  CgroupDriverOptions options;
  options.parent = "mesh/containers";
  options.fs = fs;
  std::unique_ptr<CgroupDriver> driver = Must(DetectCgroupDriver(fs->Layout(), options));
  ASSERT_NE(driver, nullptr);
  ASSERT_EQ(driver->version(), CgroupVersion::kV1);
  std::unique_ptr<Cgroup> cgroup = Must(driver->Create("c1"));
  ASSERT_NE(cgroup, nullptr);
  const std::string cpu = fs->root() + "/cpu,cpuacct/mesh/containers/c1";
  EXPECT_THAT(cgroup->Paths(), ElementsAre(fs->root() + "/memory/mesh/containers/c1", cpu,
                                           fs->root() + "/pids/mesh/containers/c1",
                                           fs->root() + "/freezer/mesh/containers/c1",
                                           fs->root() + "/devices/mesh/containers/c1"));
  EXPECT_THAT(cgroup->HierarchyDirs(),
              ElementsAre(HierarchyDir("memory", fs->root() + "/memory/mesh/containers/c1"),
                          HierarchyDir("cpu,cpuacct", cpu),
                          HierarchyDir("pids", fs->root() + "/pids/mesh/containers/c1"),
                          HierarchyDir("freezer", fs->root() + "/freezer/mesh/containers/c1"),
                          HierarchyDir("devices", fs->root() + "/devices/mesh/containers/c1")));
  ASSERT_TRUE(fs->SetFileForTest(cpu + "/cpuacct.usage", "42\n").ok());
  EXPECT_EQ(Must(cgroup->Stats()).cpu_usage_ns, 42u);
  ASSERT_TRUE(cgroup->AddProcess(7).ok());
  EXPECT_THAT(Must(cgroup->Pids()), ElementsAre(7));
  ASSERT_TRUE(cgroup->Destroy().ok());
  for (const std::string& path : cgroup->Paths()) EXPECT_FALSE(fs->Exists(path));
  ASSERT_TRUE(driver->RemoveParent().ok());
  EXPECT_FALSE(fs->Exists(fs->root() + "/memory/mesh/containers"));
  EXPECT_TRUE(fs->Exists(fs->root() + "/memory/mesh"));  // Only the last component goes.
}

}  // namespace
}  // namespace mesh::runtime
