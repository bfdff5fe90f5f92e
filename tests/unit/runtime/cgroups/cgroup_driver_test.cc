// Behaviour both drivers share, run against the v1 and the v2 driver over the fake cgroupfs.
#include <signal.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "base/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/runtime/cgroups/fake_host.h"

namespace mesh::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

class CgroupDriverTest : public ::testing::TestWithParam<CgroupVersion> {
 protected:
  void SetUp() override {
    absl::StatusOr<FakeHost> host =
        MakeFakeHost(GetParam(), FakeV1Options(), FakeV2Options(), absl::Milliseconds(300));
    ASSERT_TRUE(host.ok()) << host.status();
    host_ = std::move(*host);
  }
  FakeCgroupFs& fs() { return *host_.fs; }
  CgroupDriver& driver() { return *host_.driver; }
  bool v1() const { return GetParam() == CgroupVersion::kV1; }

  std::unique_ptr<Cgroup> MustCreate(const std::string& name) {
    absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = driver().Create(name);
    EXPECT_TRUE(cgroup.ok()) << cgroup.status();
    return cgroup.ok() ? std::move(*cgroup) : nullptr;
  }
  std::vector<pid_t> Procs(const std::string& dir) {
    absl::StatusOr<std::string> text = ReadFile(FileIn(dir, "cgroup.procs"));
    EXPECT_TRUE(text.ok()) << text.status();
    absl::StatusOr<std::vector<pid_t>> pids = ParsePidList(text.ok() ? *text : "", dir);
    return pids.ok() ? *pids : std::vector<pid_t>{};
  }
  std::string Path(const std::string& hierarchy, const std::string& name) {
    return fs().root() + "/" + hierarchy + "/mesh/" + name;
  }

  FakeHost host_;
};

TEST_P(CgroupDriverTest, CreateMakesOneDirectoryPerHierarchyUnderTheParent) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("web-1");
  ASSERT_NE(cgroup, nullptr);
  EXPECT_EQ(cgroup->name(), "web-1");
  EXPECT_EQ(cgroup->version(), GetParam());
  if (v1()) {
    EXPECT_THAT(cgroup->Paths(), ElementsAre(Path("memory", "web-1"), Path("cpu", "web-1"),
                                             Path("cpuacct", "web-1"), Path("pids", "web-1"),
                                             Path("freezer", "web-1"), Path("devices", "web-1")));
    EXPECT_EQ(cgroup->dir_fd(), -1);
    EXPECT_FALSE(fs().Exists(Path("cpuset", "web-1")));  // mesh does not use cpuset.
  } else {
    EXPECT_THAT(cgroup->Paths(), ElementsAre(Path("cgroup2", "web-1")));
    EXPECT_GE(cgroup->dir_fd(), 0);
  }
  for (const std::string& path : cgroup->Paths()) EXPECT_TRUE(fs().Exists(path)) << path;
}

TEST_P(CgroupDriverTest, CreatingAnExistingCgroupIsAlreadyExistsAndKeepsIt) {
  std::unique_ptr<Cgroup> first = MustCreate("web-1");
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->AddProcess(500).ok());
  absl::StatusOr<std::unique_ptr<Cgroup>> second = driver().Create("web-1");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(second.status().message(), HasSubstr("Destroy the leftover"));
  for (const std::string& path : first->Paths()) EXPECT_THAT(Procs(path), ElementsAre(500));
}

TEST_P(CgroupDriverTest, BadNamesAreRejectedBeforeAnythingIsCreated) {
  for (const std::string& name :
       {std::string(), std::string("a/b"), std::string(".."), std::string("memory.max"),
        std::string("tasks"), std::string("-x"), std::string("a b"), std::string(256, 'a')}) {
    absl::StatusOr<std::unique_ptr<Cgroup>> cgroup = driver().Create(name);
    EXPECT_EQ(cgroup.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(driver().Open(name).status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  for (const std::string& parent : driver().ParentPaths()) EXPECT_FALSE(fs().Exists(parent));
}

TEST_P(CgroupDriverTest, OpenReattachesToAnExistingCgroup) {
  std::unique_ptr<Cgroup> created = MustCreate("db");
  ASSERT_NE(created, nullptr);
  ASSERT_TRUE(created->AddProcess(4242).ok());
  created.reset();  // Dropping the handle leaves the cgroup.

  absl::StatusOr<std::unique_ptr<Cgroup>> opened = driver().Open("db");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_THAT(Must((*opened)->Pids()), ElementsAre(4242));
  if (!v1()) {
    EXPECT_GE((*opened)->dir_fd(), 0);
  }

  absl::StatusOr<std::unique_ptr<Cgroup>> missing = driver().Open("nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("mesh/nope"));
}

TEST_P(CgroupDriverTest, AddProcessPutsThePidInEveryHierarchy) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("app");
  ASSERT_NE(cgroup, nullptr);
  ASSERT_TRUE(cgroup->AddProcess(1234).ok());
  for (const std::string& path : cgroup->Paths()) EXPECT_THAT(Procs(path), ElementsAre(1234));
  absl::StatusOr<std::vector<pid_t>> pids = cgroup->Pids();
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_THAT(*pids, ElementsAre(1234));
  absl::StatusOr<CgroupStats> stats = cgroup->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pids_current, 1u);
}

TEST_P(CgroupDriverTest, PidsIncludeChildCgroups) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("app");
  ASSERT_NE(cgroup, nullptr);
  ASSERT_TRUE(cgroup->AddProcess(10).ok());
  const std::string child = cgroup->Paths().back() + "/inner";
  ASSERT_TRUE(fs().MakeDir(child).ok());
  ASSERT_TRUE(fs().Write(child + "/cgroup.procs", "11").ok());
  EXPECT_THAT(Must(cgroup->Pids()), ElementsAre(10, 11));
}

TEST_P(CgroupDriverTest, DestroyKillsWhatRunsAndRemovesEveryDirectory) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("app");
  ASSERT_NE(cgroup, nullptr);
  ASSERT_TRUE(cgroup->AddProcess(1001).ok());
  ASSERT_TRUE(cgroup->AddProcess(1002).ok());
  const std::string child = cgroup->Paths().back() + "/inner";
  ASSERT_TRUE(fs().MakeDir(child).ok());

  absl::Status destroyed = cgroup->Destroy();
  ASSERT_TRUE(destroyed.ok()) << destroyed;
  for (const std::string& path : cgroup->Paths()) EXPECT_FALSE(fs().Exists(path)) << path;
  std::vector<std::pair<pid_t, int>> kills;
  for (const auto& signal : fs().signals()) {
    if (signal.second == SIGKILL) kills.push_back(signal);
  }
  EXPECT_THAT(kills, UnorderedElementsAre(Pair(1001, SIGKILL), Pair(1002, SIGKILL)));

  EXPECT_TRUE(cgroup->Destroy().ok());  // Idempotent.
  EXPECT_EQ(driver().Open("app").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Must(driver().List()), IsEmpty());
  EXPECT_EQ(cgroup->Pids().status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(cgroup->KillAll(SIGKILL).ok());  // Nothing left to kill.

  ASSERT_TRUE(driver().RemoveParent().ok());
  for (const std::string& parent : driver().ParentPaths()) EXPECT_FALSE(fs().Exists(parent));
  EXPECT_TRUE(driver().RemoveParent().ok());  // Already gone.
}

TEST_P(CgroupDriverTest, RemoveParentWhileCgroupsRemainIsRefused) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("app");
  ASSERT_NE(cgroup, nullptr);
  EXPECT_EQ(driver().RemoveParent().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(cgroup->Destroy().ok());
  EXPECT_TRUE(driver().RemoveParent().ok());
}

TEST_P(CgroupDriverTest, ListAndAttachFindPartialLeftovers) {
  std::unique_ptr<Cgroup> a = MustCreate("a");
  ASSERT_NE(a, nullptr);
  // What a crash between two mkdirs leaves: the cgroup in the first hierarchy only.
  const std::string partial = driver().ParentPaths().front() + "/b";
  ASSERT_TRUE(fs().MakeDir(partial).ok());
  EXPECT_THAT(Must(driver().List()), ElementsAre("a", "b"));
  if (v1()) {
    EXPECT_EQ(driver().Open("b").status().code(), absl::StatusCode::kNotFound);
  }

  absl::StatusOr<std::unique_ptr<Cgroup>> b = driver().Attach("b");
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE((*b)->Destroy().ok());
  EXPECT_FALSE(fs().Exists(partial));
  EXPECT_THAT(Must(driver().List()), ElementsAre("a"));
}

TEST_P(CgroupDriverTest, KillAllWithSigtermSignalsEachProcessOnceAndThaws) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("app");
  ASSERT_NE(cgroup, nullptr);
  ASSERT_TRUE(cgroup->AddProcess(10).ok());
  ASSERT_TRUE(cgroup->AddProcess(11).ok());
  ASSERT_TRUE(cgroup->KillAll(SIGTERM).ok());
  EXPECT_THAT(fs().signals(), UnorderedElementsAre(Pair(10, SIGTERM), Pair(11, SIGTERM)));
  EXPECT_THAT(Must(cgroup->Pids()), ElementsAre(10, 11));  // They may handle it.
  // Signalled while frozen, then thawed again.
  std::vector<std::string> freezes;
  for (const auto& write : fs().writes()) {
    if (absl::EndsWith(write.first, "freezer.state") ||
        absl::EndsWith(write.first, "cgroup.freeze")) {
      freezes.push_back(write.second);
    }
  }
  if (v1()) {
    EXPECT_THAT(freezes, ElementsAre("FROZEN", "THAWED"));
  } else {
    EXPECT_THAT(freezes, ElementsAre("1", "0"));
  }
}

TEST_P(CgroupDriverTest, KillAllWithSigkillEmptiesTheCgroup) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("app");
  ASSERT_NE(cgroup, nullptr);
  for (pid_t pid : {20, 21, 22}) ASSERT_TRUE(cgroup->AddProcess(pid).ok());
  absl::Status killed = cgroup->KillAll(SIGKILL);
  ASSERT_TRUE(killed.ok()) << killed;
  EXPECT_THAT(Must(cgroup->Pids()), IsEmpty());
  absl::StatusOr<CgroupStats> stats = cgroup->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pids_current, 0u);
  EXPECT_THAT(fs().signals(),
              UnorderedElementsAre(Pair(20, SIGKILL), Pair(21, SIGKILL), Pair(22, SIGKILL)));
}

TEST_P(CgroupDriverTest, KillAllGivesUpOnAnUnkillableProcessNamingIt) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("app");
  ASSERT_NE(cgroup, nullptr);
  fs().SetUnkillableForTest(77);
  ASSERT_TRUE(cgroup->AddProcess(77).ok());
  absl::Status killed = cgroup->KillAll(SIGKILL);
  EXPECT_EQ(killed.code(), absl::StatusCode::kDeadlineExceeded) << killed;
  if (v1()) {
    EXPECT_THAT(killed.message(), HasSubstr("[77]"));
  }
  // Never left frozen.
  if (v1()) {
    EXPECT_THAT(Must(ReadFile(Path("freezer", "app") + "/freezer.state")), HasSubstr("THAWED"));
  } else {
    EXPECT_THAT(Must(ReadFile(Path("cgroup2", "app") + "/cgroup.freeze")), HasSubstr("0"));
  }
  // Destroy reports the same and keeps the directories it could not remove.
  absl::Status destroyed = cgroup->Destroy();
  EXPECT_FALSE(destroyed.ok());
  EXPECT_THAT(destroyed.message(), HasSubstr("destroy cgroup \"app\""));
  fs().ExitForTest(77);
  EXPECT_TRUE(cgroup->Destroy().ok());
}

TEST_P(CgroupDriverTest, KillAllStillKillsWhenTheCgroupCannotFreeze) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("app");
  ASSERT_NE(cgroup, nullptr);
  fs().SetUnfreezableForTest(66);
  ASSERT_TRUE(cgroup->AddProcess(66).ok());
  absl::Status frozen = cgroup->Freeze();
  EXPECT_EQ(frozen.code(), absl::StatusCode::kDeadlineExceeded) << frozen;
  EXPECT_THAT(frozen.message(), HasSubstr("freeze cgroup \"app\""));
  absl::Status killed = cgroup->KillAll(SIGKILL);
  EXPECT_TRUE(killed.ok()) << killed;
  EXPECT_THAT(Must(cgroup->Pids()), IsEmpty());
  EXPECT_THAT(fs().signals(), ::testing::Contains(Pair(66, SIGKILL)));
  if (v1()) {  // Left thawed, not half frozen.
    EXPECT_THAT(Must(ReadFile(Path("freezer", "app") + "/freezer.state")), HasSubstr("THAWED"));
  } else {
    EXPECT_THAT(Must(ReadFile(Path("cgroup2", "app") + "/cgroup.freeze")), HasSubstr("0"));
  }
}

TEST_P(CgroupDriverTest, FreezeAndThaw) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("app");
  ASSERT_NE(cgroup, nullptr);
  ASSERT_TRUE(cgroup->Freeze().ok());
  ASSERT_TRUE(cgroup->Freeze().ok());  // Idempotent.
  if (v1()) {
    EXPECT_THAT(Must(ReadFile(Path("freezer", "app") + "/freezer.state")), HasSubstr("FROZEN"));
  } else {
    EXPECT_THAT(Must(ReadFile(Path("cgroup2", "app") + "/cgroup.events")), HasSubstr("frozen 1"));
  }
  ASSERT_TRUE(cgroup->Thaw().ok());
  if (v1()) {
    EXPECT_THAT(Must(ReadFile(Path("freezer", "app") + "/freezer.state")), HasSubstr("THAWED"));
  } else {
    EXPECT_THAT(Must(ReadFile(Path("cgroup2", "app") + "/cgroup.events")), HasSubstr("frozen 0"));
  }
}

TEST_P(CgroupDriverTest, InvalidResourcesAreRejectedBeforeAnyWrite) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("app");
  ASSERT_NE(cgroup, nullptr);
  const size_t writes = fs().writes().size();
  Resources r;
  r.pids_limit = 10;  // valid, but must not be written either
  r.memory_limit = -1;
  absl::Status s = cgroup->Apply(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("memory_limit -1"));
  EXPECT_THAT(s.message(), HasSubstr("apply resources to cgroup \"app\""));
  EXPECT_EQ(fs().writes().size(), writes);
}

TEST_P(CgroupDriverTest, LimitsReadBackWhatApplySet) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("app");
  ASSERT_NE(cgroup, nullptr);
  absl::StatusOr<Resources> before = cgroup->Limits();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_FALSE(before->memory_limit.has_value());
  EXPECT_FALSE(before->cpu_quota.has_value());
  EXPECT_FALSE(before->pids_limit.has_value());

  Resources r;
  r.memory_limit = 64 << 20;
  r.memory_swap = 128 << 20;
  r.cpu_quota = 50000;
  r.cpu_period = 100000;
  r.cpu_shares = 512;
  r.pids_limit = 16;
  absl::Status applied = cgroup->Apply(r);
  ASSERT_TRUE(applied.ok()) << applied;
  absl::StatusOr<Resources> after = cgroup->Limits();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->memory_limit, 64 << 20);
  EXPECT_EQ(after->memory_swap, 128 << 20);
  EXPECT_EQ(after->cpu_quota, 50000);
  EXPECT_EQ(after->cpu_period, 100000u);
  EXPECT_EQ(after->pids_limit, 16);
  if (v1()) {
    EXPECT_EQ(after->cpu_shares, 512u);
  } else {
    EXPECT_FALSE(after->cpu_shares.has_value());
  }

  // Unlimited again: quota -1, pids -1 (and 0, the OCI spellings), swap -1.
  Resources unlimited;
  unlimited.cpu_quota = -1;
  unlimited.pids_limit = 0;
  unlimited.memory_limit = 64 << 20;
  unlimited.memory_swap = -1;
  ASSERT_TRUE(cgroup->Apply(unlimited).ok());
  after = cgroup->Limits();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_FALSE(after->cpu_quota.has_value());
  EXPECT_FALSE(after->pids_limit.has_value());
  EXPECT_EQ(after->memory_swap, -1);
  EXPECT_EQ(after->cpu_period, 100000u);
}

TEST_P(CgroupDriverTest, ApplyLeavesAbsentLimitsAlone) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("app");
  ASSERT_NE(cgroup, nullptr);
  Resources first;
  first.pids_limit = 16;
  first.cpu_quota = 20000;
  ASSERT_TRUE(cgroup->Apply(first).ok());
  Resources second;
  second.cpu_period = 50000;  // A period alone keeps the quota.
  ASSERT_TRUE(cgroup->Apply(second).ok());
  absl::StatusOr<Resources> limits = cgroup->Limits();
  ASSERT_TRUE(limits.ok()) << limits.status();
  EXPECT_EQ(limits->pids_limit, 16);
  EXPECT_EQ(limits->cpu_quota, 20000);
  EXPECT_EQ(limits->cpu_period, 50000u);
}

TEST_P(CgroupDriverTest, OomKillCountFeedsTheExitReason) {
  std::unique_ptr<Cgroup> cgroup = MustCreate("app");
  ASSERT_NE(cgroup, nullptr);
  absl::StatusOr<uint64_t> before = cgroup->OomKillCount();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(*before, 0u);
  if (v1()) {
    ASSERT_TRUE(fs().SetFileForTest(Path("memory", "app") + "/memory.oom_control",
                                    "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
                    .ok());
  } else {
    ASSERT_TRUE(fs().SetFileForTest(Path("cgroup2", "app") + "/memory.events",
                                    "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")
                    .ok());
  }
  absl::StatusOr<uint64_t> after = cgroup->OomKillCount();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 1u);
  EXPECT_TRUE(WasOomKilled(SIGKILL, *before, *after));
  EXPECT_FALSE(WasOomKilled(SIGTERM, *before, *after));
  absl::StatusOr<CgroupStats> stats = cgroup->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->oom_kills, 1u);
}

INSTANTIATE_TEST_SUITE_P(Drivers, CgroupDriverTest,
                         ::testing::Values(CgroupVersion::kV1, CgroupVersion::kV2),
                         [](const ::testing::TestParamInfo<CgroupVersion>& param) {
                           return std::string(CgroupVersionName(param.param));
                         });

}  // namespace
}  // namespace mesh::runtime
