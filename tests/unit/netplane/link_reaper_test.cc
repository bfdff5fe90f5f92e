// LinkReaper against the fake kernel: batching, the fallback to one-by-one deletion, waiting
// for clashing names, and what runs after a deletion.
#include "netplane/network/link_reaper.h"

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netplane/testing/fake_rtnl.h"

namespace mesh::netplane {
namespace {

class LinkReaperTest : public ::testing::Test {
 protected:
  // A bridge port `name` in the host namespace (0), retired as Detach does.
  void AddRetiredLink(const std::string& name) {
    auto ops = kernel_.Ops(0);
    ASSERT_TRUE(ops->CreateVeth({.name = name, .peer_name = "p" + name}).ok());
    ASSERT_TRUE(ops->RetireLink(name, netlink::kRetiredLinkGroup, /*down=*/false).ok());
  }
  bool Exists(const std::string& name) { return kernel_.Ops(0)->GetLink(name).ok(); }

  testing::FakeKernel kernel_;
  std::vector<std::vector<netfilter::ProtoPort>> flushed_;
  int reaped_ = 0;
};

TEST_F(LinkReaperTest, ABurstOfRetiredLinksIsDeletedInFewKernelCalls) {
  std::atomic<int> finished = 0;
  {
    LinkReaper reaper(kernel_.Ops(0), [this](const std::vector<std::string>& names,
                                             const std::vector<netfilter::ProtoPort>& p) {
      // Called after the batch's links are gone.
      for (const std::string& name : names) EXPECT_FALSE(Exists(name)) << name;
      reaped_ += static_cast<int>(names.size());
      flushed_.push_back(p);
    });
    for (int i = 0; i < 20; ++i) {
      const std::string name = absl::StrCat("v", i);
      AddRetiredLink(name);
      reaper.Schedule(name, 0, {{17, static_cast<uint16_t>(5000 + i)}}, [&] { ++finished; });
    }
    reaper.AwaitAll();
    EXPECT_EQ(finished, 20);
    for (int i = 0; i < 20; ++i) EXPECT_FALSE(Exists(absl::StrCat("v", i))) << i;
    EXPECT_FALSE(reaper.Busy());
  }
  // Scheduled within microseconds of each other: one batch, or a few on a slow machine.
  const int batches = kernel_.Calls()["DeleteLinkGroup"];
  EXPECT_GE(batches, 1);
  EXPECT_LE(batches, 5);
  EXPECT_EQ(kernel_.Calls()["DeleteLink"], 0);
  // One conntrack walk per batch, covering every port of the batch.
  EXPECT_EQ(static_cast<int>(flushed_.size()), batches);
  size_t ports = 0;
  for (const auto& batch : flushed_) ports += batch.size();
  EXPECT_EQ(ports, 20u);
  EXPECT_EQ(reaped_, 20);
}

TEST_F(LinkReaperTest, AFailedGroupDeleteFallsBackToOneByOne) {
  kernel_.FailAt("DeleteLinkGroup", 1, absl::InternalError("injected"));
  LinkReaper reaper(kernel_.Ops(0), nullptr);
  AddRetiredLink("v1");
  AddRetiredLink("v2");
  reaper.Schedule("v1", 0, {}, nullptr);
  reaper.Schedule("v2", 0, {}, nullptr);
  reaper.AwaitAll();
  EXPECT_FALSE(Exists("v1"));
  EXPECT_FALSE(Exists("v2"));
  EXPECT_GE(kernel_.Calls()["DeleteLink"], 1);
}

TEST_F(LinkReaperTest, AwaitReapedReturnsOnlyOnceTheClashingLinkAndItsFollowUpAreDone) {
  LinkReaper reaper(kernel_.Ops(0), nullptr);
  AddRetiredLink("v1");
  std::atomic<bool> released = false;
  reaper.Schedule("v1", 42, {}, [&] { released = true; });
  reaper.AwaitReaped("other", 42);  // clashes by peer namespace
  EXPECT_TRUE(released);
  EXPECT_FALSE(Exists("v1"));
  reaper.AwaitReaped("v1", 0);  // nothing pending: returns at once
}

TEST_F(LinkReaperTest, DestructionFinishesWhatIsPending) {
  std::atomic<int> finished = 0;
  {
    LinkReaper reaper(kernel_.Ops(0), nullptr);
    AddRetiredLink("v1");
    reaper.Schedule("v1", 0, {}, [&] { ++finished; });
  }
  EXPECT_EQ(finished, 1);
  EXPECT_FALSE(Exists("v1"));
}

TEST_F(LinkReaperTest, OnlyRetiredLinksGo) {
  LinkReaper reaper(kernel_.Ops(0), nullptr);
  auto ops = kernel_.Ops(0);
  ASSERT_TRUE(ops->CreateVeth({.name = "keep", .peer_name = "pkeep"}).ok());
  AddRetiredLink("v1");
  reaper.Schedule("v1", 0, {}, nullptr);
  reaper.AwaitAll();
  EXPECT_TRUE(Exists("keep"));
  EXPECT_FALSE(Exists("v1"));
}

}  // namespace
}  // namespace mesh::netplane
