#include "base/status_macros.h"

#include <memory>

#include "gtest/gtest.h"

namespace mesh {
namespace {

absl::StatusOr<std::unique_ptr<int>> MakeInt(bool ok, int value) {
  if (!ok) return absl::NotFoundError("no int");
  return std::make_unique<int>(value);
}

absl::Status Twice(bool first_ok, bool second_ok, int* calls) {
  auto step = [calls](bool ok) {
    ++*calls;
    return ok ? absl::OkStatus() : absl::InternalError("step failed");
  };
  MESH_RETURN_IF_ERROR(step(first_ok));
  MESH_RETURN_IF_ERROR(step(second_ok));
  return absl::OkStatus();
}

absl::StatusOr<int> Sum(bool a_ok, bool b_ok) {
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<int> a, MakeInt(a_ok, 2));  // move-only value
  MESH_ASSIGN_OR_RETURN(std::unique_ptr<int> b, MakeInt(b_ok, 3));
  return *a + *b;
}

TEST(StatusMacrosTest, ReturnIfErrorStopsAtFirstFailureAndEvaluatesOnce) {
  int calls = 0;
  EXPECT_TRUE(Twice(true, true, &calls).ok());
  EXPECT_EQ(calls, 2);
  calls = 0;
  absl::Status s = Twice(false, true, &calls);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(calls, 1);
}

TEST(StatusMacrosTest, AssignOrReturnMovesValueOrPropagatesError) {
  EXPECT_EQ(*Sum(true, true), 5);
  EXPECT_EQ(Sum(true, false).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Sum(false, true).status().message(), "no int");
}

}  // namespace
}  // namespace mesh
