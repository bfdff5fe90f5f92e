#include "base/errno_status.h"

#include <cerrno>

#include "gtest/gtest.h"

namespace mesh {
namespace {

TEST(ErrnoStatusTest, MapsCodesCallersActOn) {
  EXPECT_EQ(ErrnoToCode(EEXIST), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrnoToCode(ENOENT), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoToCode(ENODEV), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoToCode(ESRCH), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoToCode(EPERM), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoToCode(EACCES), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoToCode(EINVAL), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoToCode(EBUSY), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrnoToCode(ENOSPC), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoToCode(EOPNOTSUPP), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(ErrnoToCode(EIO), absl::StatusCode::kInternal);
}

TEST(ErrnoStatusTest, MessageNamesWhatCauseAndErrnoName) {
  absl::Status s = ErrnoToStatus(EEXIST, "create veth \"mve-0123456789a\"");
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(), "create veth \"mve-0123456789a\": File exists (EEXIST)");
  EXPECT_TRUE(ErrnoToStatus(0, "anything").ok());
}

TEST(ErrnoStatusTest, AnnotateKeepsCodeAndPrefixesContext) {
  absl::Status inner = ErrnoToStatus(ENODEV, "set link \"eth9\" up");
  absl::Status outer = Annotate(inner, "attach container \"web-1\" to network \"front\"");
  EXPECT_EQ(outer.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(outer.message(),
            "attach container \"web-1\" to network \"front\": set link \"eth9\" up: No such "
            "device (ENODEV)");
  EXPECT_TRUE(Annotate(absl::OkStatus(), "ctx").ok());
}

}  // namespace
}  // namespace mesh
