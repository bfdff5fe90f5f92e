#include "base/wait.h"

#include "gtest/gtest.h"

namespace mesh {
namespace {

TEST(WaitForTest, ReturnsOnceConditionHolds) {
  int calls = 0;
  absl::Status s = WaitFor([&] { return ++calls == 3; }, absl::Seconds(10), "third call");
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(calls, 3);
}

TEST(WaitForTest, TimesOutNamingWhatItWaitedFor) {
  absl::Status s = WaitFor([] { return false; }, absl::Milliseconds(30), "the moon");
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(s.message().find("waiting for the moon"), std::string::npos) << s;
}

}  // namespace
}  // namespace mesh
