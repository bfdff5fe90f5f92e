#include "base/ns/namespace_handle.h"

#include <sched.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace mesh {
namespace {

TEST(NamespaceHandleTest, CurrentAndOfProcessNameTheSameNamespace) {
  absl::StatusOr<NamespaceHandle> a = NamespaceHandle::Current(CLONE_NEWNET);
  absl::StatusOr<NamespaceHandle> b = NamespaceHandle::OfProcess(getpid(), CLONE_NEWNET);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(a->SameAs(*b));
  absl::StatusOr<NamespaceHandle> uts = NamespaceHandle::Current(CLONE_NEWUTS);
  ASSERT_TRUE(uts.ok());
  EXPECT_FALSE(a->SameAs(*uts));
}

TEST(NamespaceHandleTest, WrongTypeAndNonNamespaceAreInvalidArgument) {
  absl::StatusOr<NamespaceHandle> wrong = NamespaceHandle::Open("/proc/self/ns/uts", CLONE_NEWNET);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("it is a uts namespace"), std::string::npos);
  absl::StatusOr<NamespaceHandle> file = NamespaceHandle::Open("/dev/null", CLONE_NEWNET);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<NamespaceHandle> missing =
      NamespaceHandle::Open("/run/netns/absent-ns", CLONE_NEWNET);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST(NamespaceHandleTest, RunInNetnsRunsOnAnotherThreadAndReturnsItsStatus) {
  absl::StatusOr<NamespaceHandle> self = NamespaceHandle::Current(CLONE_NEWNET);
  ASSERT_TRUE(self.ok());
  pid_t caller_tid = gettid();
  pid_t worker_tid = 0;
  absl::Status s = RunInNetns(*self, [&] {
    worker_tid = gettid();
    return absl::AbortedError("from worker");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_NE(worker_tid, caller_tid);
}

}  // namespace
}  // namespace mesh
