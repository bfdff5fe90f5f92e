// Validation, conversions, parsers and driver detection.
#include "runtime/cgroups/cgroup.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <limits>
#include <string>

#include "base/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/runtime/cgroups/fake_host.h"

namespace mesh::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

Resources Valid() {
  Resources r;
  r.memory_limit = 64 << 20;
  r.memory_swap = 128 << 20;
  r.cpu_quota = 50000;
  r.cpu_period = 100000;
  r.cpu_shares = 1024;
  r.pids_limit = 100;
  return r;
}

TEST(ValidateResourcesTest, AcceptsSensibleAndUnlimitedValues) {
  EXPECT_TRUE(ValidateResources(Resources()).ok());
  EXPECT_TRUE(ValidateResources(Valid()).ok());
  Resources r = Valid();
  r.memory_swap = -1;
  r.cpu_quota = -1;
  r.pids_limit = -1;
  EXPECT_TRUE(ValidateResources(r).ok());
  r.pids_limit = 0;
  EXPECT_TRUE(ValidateResources(r).ok());
  r.memory_limit = kMinMemoryLimit;
  r.memory_swap = kMinMemoryLimit;
  r.cpu_quota = 1000;
  r.cpu_period = 1000;
  r.cpu_shares = 2;
  EXPECT_TRUE(ValidateResources(r).ok());
  r.cpu_period = 1000000;
  r.cpu_shares = 262144;
  EXPECT_TRUE(ValidateResources(r).ok());
}

TEST(ValidateResourcesTest, RejectsEachBadValueNamingItAndTheRange) {
  struct Case {
    std::function<void(Resources&)> change;
    const char* message;
  };
  const Case cases[] = {
      {[](Resources& r) { r.memory_limit = -1; }, "memory_limit -1 must be at least 1048576"},
      {[](Resources& r) { r.memory_limit = 0; }, "memory_limit 0"},
      {[](Resources& r) { r.memory_limit = 4096; }, "memory_limit 4096"},
      {[](Resources& r) { r.memory_swap = 1 << 20; }, "must be -1 (unlimited swap) or at least"},
      {[](Resources& r) { r.memory_swap = -2; }, "memory_swap -2"},
      {[](Resources& r) {
         r.memory_limit.reset();
         r.memory_swap = 1 << 30;
       },
       "needs memory_limit"},
      {[](Resources& r) { r.cpu_quota = 0; }, "cpu_quota 0 must be -1 (no quota) or from 1000"},
      {[](Resources& r) { r.cpu_quota = 999; }, "cpu_quota 999"},
      {[](Resources& r) { r.cpu_quota = -5; }, "cpu_quota -5"},
      {[](Resources& r) { r.cpu_quota = int64_t{1} << 50; }, "cpu_quota"},
      {[](Resources& r) { r.cpu_period = 999; }, "cpu_period 999 must be from 1000 to 1000000"},
      {[](Resources& r) { r.cpu_period = 1000001; }, "cpu_period 1000001"},
      {[](Resources& r) { r.cpu_shares = 1; }, "cpu_shares 1 must be from 2 to 262144"},
      {[](Resources& r) { r.cpu_shares = 262145; }, "cpu_shares 262145"},
      {[](Resources& r) { r.pids_limit = -2; }, "pids_limit -2 must be positive, or -1 or 0"},
  };
  for (const Case& c : cases) {
    Resources r = Valid();
    c.change(r);
    absl::Status s = ValidateResources(r);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
  }
}

TEST(ValidateResourcesTest, ReportsEveryProblemAtOnce) {
  Resources r;
  r.memory_limit = -1;
  r.pids_limit = -7;
  absl::Status s = ValidateResources(r);
  EXPECT_THAT(s.message(), HasSubstr("memory_limit -1"));
  EXPECT_THAT(s.message(), HasSubstr("pids_limit -7"));
}

TEST(CpuSharesToWeightTest, MatchesTheOciConversion) {
  EXPECT_EQ(CpuSharesToWeight(2), 1u);
  EXPECT_EQ(CpuSharesToWeight(512), 20u);
  EXPECT_EQ(CpuSharesToWeight(1024), 39u);
  EXPECT_EQ(CpuSharesToWeight(262144), 10000u);
}

TEST(WasOomKilledTest, NeedsSigkillAndAGrowingCount) {
  EXPECT_TRUE(WasOomKilled(SIGKILL, 0, 1));
  EXPECT_TRUE(WasOomKilled(SIGKILL, 2, 5));
  EXPECT_FALSE(WasOomKilled(SIGKILL, 1, 1));  // killed by someone else
  EXPECT_FALSE(WasOomKilled(0, 0, 1));        // exited; a child was OOM-killed
  EXPECT_FALSE(WasOomKilled(SIGTERM, 0, 1));
}

TEST(ValidateCgroupNameTest, AcceptsIdsAndRejectsWhatCouldEscapeOrCollide) {
  for (const char* ok : {"a", "web-1", "Abc_9", "0"})
    EXPECT_TRUE(ValidateCgroupName(ok).ok()) << ok;
  EXPECT_TRUE(ValidateCgroupName(std::string(255, 'x')).ok());
  for (const std::string& bad :
       {std::string(), std::string("."), std::string(".."), std::string("a/b"), std::string("/a"),
        std::string("cpu.max"), std::string("-a"), std::string("_a"), std::string("a\nb"),
        std::string("a\0b", 3), std::string("tasks"), std::string("release_agent"),
        std::string("notify_on_release"), std::string(256, 'x')}) {
    absl::Status s = ValidateCgroupName(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("cgroup name"));
  }
}

TEST(CgroupParsersTest, Values) {
  EXPECT_EQ(Must(ParseCgroupValue("1024\n", "f")), 1024u);
  EXPECT_EQ(Must(ParseCgroupValue("max\n", "f")), std::numeric_limits<uint64_t>::max());
  absl::StatusOr<uint64_t> bad = ParseCgroupValue("-1\n", "/x/cpu.cfs_quota_us");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("/x/cpu.cfs_quota_us"));
}

TEST(CgroupParsersTest, KeyedValues) {
  auto values = Must(ParseKeyedValues("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "f"));
  EXPECT_THAT(values,
              ElementsAre(Pair("oom_kill", 3), Pair("oom_kill_disable", 0), Pair("under_oom", 0)));
  EXPECT_EQ(Must(ParseKeyedValues("max max\n", "f")).at("max"),
            std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(ParseKeyedValues("populated\n", "f").ok());
  EXPECT_FALSE(ParseKeyedValues("a 1 2\n", "f").ok());
}

TEST(CgroupParsersTest, PidListsSkipProcessesOutsideOurPidNamespace) {
  EXPECT_THAT(Must(ParsePidList("12\n0\n13\n", "f")), ElementsAre(12, 13));
  EXPECT_TRUE(Must(ParsePidList("", "f")).empty());
  EXPECT_FALSE(ParsePidList("12\nabc\n", "f").ok());
  EXPECT_FALSE(ParsePidList("-3\n", "f").ok());
}

class DetectTest : public ::testing::Test {
 protected:
  void SetUp() override { fs_ = Must(FakeCgroupFs::Create()); }
  absl::StatusOr<std::unique_ptr<CgroupDriver>> Detect(std::string parent = "mesh") {
    CgroupDriverOptions options;
    options.parent = std::move(parent);
    options.fs = fs_;
    return DetectCgroupDriver(fs_->Layout(), options);
  }
  std::shared_ptr<FakeCgroupFs> fs_;
};

TEST_F(DetectTest, HybridHostWithAnEmptyCgroup2UsesV1) {
  ASSERT_TRUE(fs_->AddStandardV1Hierarchies().ok());
  FakeV2Options hugetlb_only;
  hugetlb_only.controllers = {"hugetlb"};
  ASSERT_TRUE(fs_->AddV2Hierarchy("unified", hugetlb_only).ok());
  std::unique_ptr<CgroupDriver> driver = Must(Detect());
  ASSERT_NE(driver, nullptr);
  EXPECT_EQ(driver->version(), CgroupVersion::kV1);
  EXPECT_THAT(driver->ParentPaths(),
              ElementsAre(fs_->root() + "/memory/mesh", fs_->root() + "/cpu/mesh",
                          fs_->root() + "/cpuacct/mesh", fs_->root() + "/pids/mesh",
                          fs_->root() + "/freezer/mesh", fs_->root() + "/devices/mesh"));
}

TEST_F(DetectTest, PureV2UsesV2) {
  ASSERT_TRUE(fs_->AddV2Hierarchy("cgroup").ok());
  std::unique_ptr<CgroupDriver> driver = Must(Detect());
  ASSERT_NE(driver, nullptr);
  EXPECT_EQ(driver->version(), CgroupVersion::kV2);
  EXPECT_THAT(driver->ParentPaths(), ElementsAre(fs_->root() + "/cgroup/mesh"));
}

TEST_F(DetectTest, HybridHostWhoseCgroup2HasTheControllersUsesV2) {
  for (const char* c : {"cpuset", "blkio"}) ASSERT_TRUE(fs_->AddV1Hierarchy(c, {c}).ok());
  ASSERT_TRUE(fs_->AddV2Hierarchy("unified").ok());
  std::unique_ptr<CgroupDriver> driver = Must(Detect());
  ASSERT_NE(driver, nullptr);
  EXPECT_EQ(driver->version(), CgroupVersion::kV2);
}

TEST_F(DetectTest, MissingControllersAreNamed) {
  FakeV2Options no_pids;
  no_pids.controllers = {"cpu", "memory"};
  ASSERT_TRUE(fs_->AddV2Hierarchy("cgroup", no_pids).ok());
  absl::StatusOr<std::unique_ptr<CgroupDriver>> driver = Detect();
  EXPECT_EQ(driver.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(driver.status().message(), HasSubstr("lacks controllers pids"));
}

TEST_F(DetectTest, V1WithoutFreezerIsNamed) {
  for (const char* c : {"cpu", "cpuacct", "memory", "pids"}) {
    ASSERT_TRUE(fs_->AddV1Hierarchy(c, {c}).ok());
  }
  absl::StatusOr<std::unique_ptr<CgroupDriver>> driver = Detect();
  EXPECT_EQ(driver.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(driver.status().message(), HasSubstr("no v1 hierarchy is mounted for freezer"));
  EXPECT_THAT(driver.status().message(), HasSubstr("no cgroup2 hierarchy is mounted"));
}

TEST_F(DetectTest, ParentMustBeACleanRelativePath) {
  ASSERT_TRUE(fs_->AddV2Hierarchy("cgroup").ok());
  for (const char* bad : {"", "/mesh", "mesh/", "a//b", "../mesh", "mesh/..", "a b", "."}) {
    absl::StatusOr<std::unique_ptr<CgroupDriver>> driver = Detect(bad);
    EXPECT_EQ(driver.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(Detect("mesh.slice/containers").ok());
  CgroupDriverOptions options;
  options.fs = fs_;
  options.timeout = absl::ZeroDuration();
  EXPECT_EQ(DetectCgroupDriver(fs_->Layout(), options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ReadCgroupLayoutTest, ReadsAMountinfoFile) {
  char path[] = "/tmp/mesh-mountinfo-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_TRUE(
      WriteFileAtomically(path, "37 31 0:33 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n")
          .ok());
  CgroupLayout layout = Must(ReadCgroupLayout(path));
  EXPECT_EQ(layout.v2, "/sys/fs/cgroup");
  ASSERT_TRUE(WriteFileAtomically(path, "garbage\n").ok());
  absl::StatusOr<CgroupLayout> bad = ReadCgroupLayout(path);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr(path));
  unlink(path);
  EXPECT_EQ(ReadCgroupLayout(path).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace mesh::runtime
