// The fake must refuse what the kernel refuses, or the driver tests prove nothing.
#include "runtime/cgroups/testing/fake_cgroup_fs.h"

#include <signal.h>

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

class FakeCgroupFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = Must(FakeCgroupFs::Create());
    ASSERT_NE(fs_, nullptr);
    v2_ = Must(fs_->AddV2Hierarchy("cgroup2"));
    ASSERT_TRUE(fs_->AddStandardV1Hierarchies().ok());
  }
  absl::StatusCode WriteCode(const std::string& path, absl::string_view value) {
    return fs_->Write(path, value).code();
  }
  std::shared_ptr<FakeCgroupFs> fs_;
  std::string v2_;
};

TEST_F(FakeCgroupFsTest, V1DevicesFollowTheKernelsRules) {
  const std::string a = fs_->root() + "/devices/a";
  ASSERT_TRUE(fs_->MakeDir(a).ok());
  EXPECT_EQ(Must(fs_->Read(a + "/devices.list")), "a *:* rwm\n");  // the root's, inherited
  ASSERT_TRUE(fs_->Write(a + "/devices.deny", "a").ok());
  EXPECT_EQ(Must(fs_->Read(a + "/devices.list")), "");
  ASSERT_TRUE(fs_->Write(a + "/devices.allow", "c 1:3 r").ok());
  ASSERT_TRUE(fs_->Write(a + "/devices.allow", "c 1:3 mw").ok());  // merged into one
  ASSERT_TRUE(fs_->Write(a + "/devices.allow", "b 8:* m").ok());
  EXPECT_EQ(Must(fs_->Read(a + "/devices.list")), "c 1:3 rwm\nb 8:* m\n");
  ASSERT_TRUE(fs_->Write(a + "/devices.deny", "c 1:3 w").ok());  // takes access away
  EXPECT_EQ(Must(fs_->Read(a + "/devices.list")), "c 1:3 rm\nb 8:* m\n");
  for (const char* bad : {"c 1:3", "x 1:3 r", "c 1-3 r", "c 1:3 rx", "c a:3 r", "c 1:3 rwmr"}) {
    EXPECT_EQ(WriteCode(a + "/devices.allow", bad), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(WriteCode(a + "/devices.list", "a"), absl::StatusCode::kPermissionDenied);
  // A child starts with its parent's rules; its parent cannot change default meanwhile, and
  // the child cannot allow everything under a denying parent.
  ASSERT_TRUE(fs_->MakeDir(a + "/b").ok());
  EXPECT_EQ(Must(fs_->Read(a + "/b/devices.list")), "c 1:3 rm\nb 8:* m\n");
  EXPECT_EQ(WriteCode(a + "/devices.allow", "a"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteCode(a + "/b/devices.allow", "a"), absl::StatusCode::kPermissionDenied);
}

TEST_F(FakeCgroupFsTest, DeviceProgramsAreRecordedPerV2CgroupAndGoWithIt) {
  const std::string c = v2_ + "/c";
  ASSERT_TRUE(fs_->MakeDir(c).ok());
  const std::vector<bpf_insn> program = {bpf_insn{.code = BPF_ALU64 | BPF_MOV | BPF_K},
                                         bpf_insn{.code = BPF_JMP | BPF_EXIT}};
  ASSERT_TRUE(fs_->SetDeviceProgram(c, program).ok());
  EXPECT_EQ(fs_->DeviceProgramForTest(c).size(), 2u);
  EXPECT_EQ(fs_->device_program_sets(), 1);
  // Only cgroup2 directories take a program (EBADF), only existing ones (ENOENT).
  const std::string memory = fs_->root() + "/memory/x";
  ASSERT_TRUE(fs_->MakeDir(memory).ok());
  EXPECT_THAT(fs_->SetDeviceProgram(memory, program).message(), HasSubstr("EBADF"));
  EXPECT_EQ(fs_->SetDeviceProgram(v2_ + "/gone", program).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(fs_->RemoveDir(c).ok());
  EXPECT_TRUE(fs_->DeviceProgramForTest(c).empty());
}

TEST_F(FakeCgroupFsTest, MkdirCreatesInterfaceFilesAndRmdirRemovesThem) {
  const std::string memory = fs_->root() + "/memory/a";
  ASSERT_TRUE(fs_->MakeDir(memory).ok());
  EXPECT_EQ(Must(fs_->Read(memory + "/memory.limit_in_bytes")), "9223372036854771712\n");
  EXPECT_EQ(fs_->MakeDir(memory).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(fs_->MakeDir(fs_->root() + "/memory/x/y").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(fs_->RemoveDir(memory).ok());
  EXPECT_FALSE(fs_->Exists(memory));
  EXPECT_EQ(fs_->RemoveDir(memory).code(), absl::StatusCode::kNotFound);
  // A hierarchy's root cannot be removed.
  EXPECT_EQ(fs_->RemoveDir(fs_->root() + "/memory").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(FakeCgroupFsTest, RmdirIsBusyWithProcessesOrChildren) {
  const std::string dir = fs_->root() + "/pids/a";
  ASSERT_TRUE(fs_->MakeDir(dir).ok());
  ASSERT_TRUE(fs_->MakeDir(dir + "/b").ok());
  EXPECT_EQ(fs_->RemoveDir(dir).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(fs_->RemoveDir(dir + "/b").ok());
  ASSERT_TRUE(fs_->Write(dir + "/cgroup.procs", "42").ok());
  EXPECT_EQ(Must(fs_->Read(dir + "/pids.current")), "1\n");
  EXPECT_EQ(fs_->RemoveDir(dir).code(), absl::StatusCode::kFailedPrecondition);
  fs_->ExitForTest(42);
  EXPECT_TRUE(fs_->RemoveDir(dir).ok());
}

TEST_F(FakeCgroupFsTest, AProcessLivesInOneCgroupPerHierarchy) {
  ASSERT_TRUE(fs_->MakeDir(fs_->root() + "/pids/a").ok());
  ASSERT_TRUE(fs_->MakeDir(fs_->root() + "/pids/b").ok());
  ASSERT_TRUE(fs_->Write(fs_->root() + "/pids/a/cgroup.procs", "5").ok());
  ASSERT_TRUE(fs_->Write(fs_->root() + "/pids/b/cgroup.procs", "5").ok());
  EXPECT_EQ(Must(fs_->Read(fs_->root() + "/pids/a/cgroup.procs")), "");
  EXPECT_EQ(Must(fs_->Read(fs_->root() + "/pids/b/cgroup.procs")), "5\n");
  EXPECT_EQ(WriteCode(fs_->root() + "/pids/b/cgroup.procs", "abc"),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FakeCgroupFsTest, SubtreeControlFollowsTheV2Rules) {
  const std::string a = v2_ + "/a";
  ASSERT_TRUE(fs_->MakeDir(a).ok());
  EXPECT_FALSE(fs_->Exists(a + "/memory.max"));  // Not enabled by the root yet.
  // Only controllers the cgroup has can be passed down.
  EXPECT_EQ(WriteCode(v2_ + "/cgroup.subtree_control", "+hugetlb"), absl::StatusCode::kNotFound);
  EXPECT_EQ(WriteCode(v2_ + "/cgroup.subtree_control", "memory"),
            absl::StatusCode::kInvalidArgument);
  // Enabling reaches existing children.
  ASSERT_TRUE(fs_->Write(v2_ + "/cgroup.subtree_control", "+memory").ok());
  EXPECT_TRUE(fs_->Exists(a + "/memory.max"));
  EXPECT_EQ(Must(fs_->Read(a + "/cgroup.controllers")), "memory\n");
  EXPECT_EQ(WriteCode(a + "/cgroup.subtree_control", "+pids"), absl::StatusCode::kNotFound);
  // No internal processes: a cgroup with processes cannot pass controllers down, and one that
  // passes controllers down cannot take processes.
  ASSERT_TRUE(fs_->Write(a + "/cgroup.procs", "9").ok());
  EXPECT_EQ(WriteCode(a + "/cgroup.subtree_control", "+memory"),
            absl::StatusCode::kFailedPrecondition);
  fs_->ExitForTest(9);
  ASSERT_TRUE(fs_->Write(a + "/cgroup.subtree_control", "+memory").ok());
  EXPECT_EQ(WriteCode(a + "/cgroup.procs", "9"), absl::StatusCode::kFailedPrecondition);
  // The root is exempt.
  EXPECT_TRUE(fs_->Write(v2_ + "/cgroup.procs", "9").ok());
}

TEST_F(FakeCgroupFsTest, ValuesAreCheckedLikeTheKernelDoes) {
  ASSERT_TRUE(fs_->Write(v2_ + "/cgroup.subtree_control", "+cpu +memory +pids").ok());
  const std::string a = v2_ + "/a";
  ASSERT_TRUE(fs_->MakeDir(a).ok());
  EXPECT_EQ(WriteCode(a + "/cpu.max", "500 100000"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteCode(a + "/cpu.max", "5000 100"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteCode(a + "/cpu.weight", "0"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteCode(a + "/memory.max", "lots"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteCode(a + "/pids.max", "-1"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteCode(a + "/cgroup.kill", "2"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteCode(a + "/memory.current", "0"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(WriteCode(a + "/no.such.file", "1"), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs_->Exists(a + "/no.such.file"));  // Writes never create files.
  ASSERT_TRUE(fs_->Write(a + "/memory.max", "10000").ok());
  EXPECT_EQ(Must(fs_->Read(a + "/memory.max")), "8192\n");  // Whole pages.
  absl::Status s = fs_->Write(a + "/cpu.max", "1");
  EXPECT_THAT(s.message(), HasSubstr("write \"1\" to " + a + "/cpu.max: Invalid argument"));

  const std::string m = fs_->root() + "/memory/a";
  ASSERT_TRUE(fs_->MakeDir(m).ok());
  ASSERT_TRUE(fs_->Write(m + "/memory.limit_in_bytes", "1048576").ok());
  ASSERT_TRUE(fs_->Write(m + "/memory.memsw.limit_in_bytes", "1048576").ok());
  EXPECT_EQ(WriteCode(m + "/memory.limit_in_bytes", "2097152"),
            absl::StatusCode::kInvalidArgument);  // memory > memory+swap
  EXPECT_EQ(WriteCode(m + "/memory.memsw.limit_in_bytes", "4096"),
            absl::StatusCode::kInvalidArgument);  // memory+swap < memory
  ASSERT_TRUE(fs_->Write(m + "/memory.memsw.limit_in_bytes", "-1").ok());
  EXPECT_EQ(Must(fs_->Read(m + "/memory.memsw.limit_in_bytes")), "9223372036854771712\n");
  EXPECT_EQ(WriteCode(fs_->root() + "/cpu/cpu.cfs_quota_us", "10"),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FakeCgroupFsTest, KillNeverReachesTheKernelAndFollowsTheFreezer) {
  EXPECT_EQ(fs_->Kill(::getpid(), SIGKILL).code(), absl::StatusCode::kNotFound);  // Unknown.
  const std::string f = fs_->root() + "/freezer/a";
  ASSERT_TRUE(fs_->MakeDir(f).ok());
  ASSERT_TRUE(fs_->Write(f + "/cgroup.procs", "31").ok());
  ASSERT_TRUE(fs_->Write(f + "/freezer.state", "FROZEN").ok());
  ASSERT_TRUE(fs_->Kill(31, SIGKILL).ok());
  EXPECT_EQ(Must(fs_->Read(f + "/cgroup.procs")), "31\n");  // Frozen: dies at the thaw.
  ASSERT_TRUE(fs_->Write(f + "/freezer.state", "THAWED").ok());
  EXPECT_EQ(Must(fs_->Read(f + "/cgroup.procs")), "");
  EXPECT_EQ(fs_->Kill(31, SIGTERM).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(WriteCode(f + "/freezer.state", "STOPPED"), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(fs_->signals(), ElementsAre(Pair(31, SIGKILL)));
}

TEST_F(FakeCgroupFsTest, CgroupKillEmptiesTheSubtree) {
  ASSERT_TRUE(fs_->Write(v2_ + "/cgroup.subtree_control", "+pids").ok());
  ASSERT_TRUE(fs_->MakeDir(v2_ + "/a").ok());
  ASSERT_TRUE(fs_->MakeDir(v2_ + "/a/b").ok());
  ASSERT_TRUE(fs_->Write(v2_ + "/a/b/cgroup.procs", "8").ok());
  EXPECT_THAT(Must(fs_->Read(v2_ + "/a/cgroup.events")), HasSubstr("populated 1"));
  ASSERT_TRUE(fs_->Write(v2_ + "/a/cgroup.kill", "1").ok());
  EXPECT_THAT(Must(fs_->Read(v2_ + "/a/cgroup.events")), HasSubstr("populated 0"));
  EXPECT_THAT(fs_->signals(), ElementsAre(Pair(8, SIGKILL)));
}

TEST(FakeCgroupFsLifetimeTest, RemovesItsDirectory) {
  std::string root;
  {
    std::shared_ptr<FakeCgroupFs> fs = Must(FakeCgroupFs::Create());
    ASSERT_NE(fs, nullptr);
    root = fs->root();
    ASSERT_TRUE(fs->AddStandardV1Hierarchies().ok());
    ASSERT_TRUE(fs->MakeDir(root + "/memory/x").ok());
  }
  EXPECT_FALSE(KernelCgroupFs().Exists(root));
}

}  // namespace
}  // namespace mesh::runtime
