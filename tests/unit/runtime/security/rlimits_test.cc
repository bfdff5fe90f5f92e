#include "runtime/security/rlimits.h"

#include <sys/resource.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mesh::runtime::security {
namespace {

using ::testing::HasSubstr;

TEST(RlimitNames, ParseAndName) {
  for (const char* name : {"RLIMIT_NOFILE", "rlimit_nofile", "NOFILE", "nofile", "NoFile"}) {
    absl::StatusOr<int> r = ParseRlimitType(name);
    ASSERT_TRUE(r.ok()) << name << ": " << r.status();
    EXPECT_EQ(*r, RLIMIT_NOFILE) << name;
  }
  EXPECT_EQ(*ParseRlimitType("RLIMIT_NPROC"), RLIMIT_NPROC);
  EXPECT_EQ(*ParseRlimitType("RLIMIT_RTTIME"), RLIMIT_RTTIME);
  EXPECT_EQ(*ParseRlimitType("core"), RLIMIT_CORE);
  for (int r = 0; r < RLIMIT_NLIMITS; ++r) {
    std::string name(RlimitName(r));
    ASSERT_FALSE(name.empty()) << r;
    EXPECT_EQ(*ParseRlimitType(name), r);
  }
  EXPECT_EQ(RlimitName(RLIMIT_NOFILE), "RLIMIT_NOFILE");
  EXPECT_EQ(RlimitName(RLIMIT_NLIMITS), "");
}

TEST(RlimitNames, UnknownNamesAreRefusedByName) {
  for (const char* name : {"", "RLIMIT_", "RLIMIT_FILES", "openfiles", "RLIMIT_NOFILE "}) {
    absl::StatusOr<int> r = ParseRlimitType(name);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(absl::StrCat("\"", name, "\"")));
  }
}

TEST(ResolveRlimits, KeepsOrderAndValues) {
  absl::StatusOr<std::vector<ResolvedRlimit>> r = ResolveRlimits(
      {{"RLIMIT_NOFILE", 1024, 4096}, {"nproc", 10, 10}, {"RLIMIT_CORE", 0, kRlimitInfinity}});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ((*r)[0].soft, 1024u);
  EXPECT_EQ((*r)[0].hard, 4096u);
  EXPECT_EQ((*r)[1].resource, RLIMIT_NPROC);
  EXPECT_EQ((*r)[2].resource, RLIMIT_CORE);
  EXPECT_EQ((*r)[2].hard, RLIM_INFINITY);
  EXPECT_TRUE(ResolveRlimits({}).ok());
}

TEST(ResolveRlimits, RefusesSoftAboveHard) {
  absl::StatusOr<std::vector<ResolvedRlimit>> r = ResolveRlimits({{"RLIMIT_NOFILE", 4097, 4096}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("RLIMIT_NOFILE"));
  EXPECT_THAT(r.status().message(), HasSubstr("4097"));
  r = ResolveRlimits({{"RLIMIT_STACK", kRlimitInfinity, 8 << 20}});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("unlimited"));
}

TEST(ResolveRlimits, RefusesDuplicatesAndUnknown) {
  absl::StatusOr<std::vector<ResolvedRlimit>> r =
      ResolveRlimits({{"RLIMIT_NOFILE", 1, 2}, {"nofile", 1, 2}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("twice"));
  r = ResolveRlimits({{"RLIMIT_NOFILE", 1, 2}, {"RLIMIT_BOGUS", 1, 2}});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("\"RLIMIT_BOGUS\""));
}

TEST(CheckRlimitsAllowed, RaisingAHardLimitNeedsCapSysResource) {
  rlimit current{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &current), 0);
  ASSERT_NE(current.rlim_max, RLIM_INFINITY);  // RLIMIT_NOFILE is bounded by fs.nr_open
  const uint64_t hard = current.rlim_max;

  EXPECT_TRUE(CheckRlimitsAllowed({{RLIMIT_NOFILE, 64, hard}}, false).ok());
  EXPECT_TRUE(CheckRlimitsAllowed({{RLIMIT_NOFILE, 64, 128}}, false).ok());
  EXPECT_TRUE(CheckRlimitsAllowed({{RLIMIT_NOFILE, 64, hard + 1}}, true).ok());

  absl::Status s = CheckRlimitsAllowed({{RLIMIT_NOFILE, 64, hard + 1}}, false);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("RLIMIT_NOFILE"));
  EXPECT_THAT(s.message(), HasSubstr("CAP_SYS_RESOURCE"));
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat(hard)));
  EXPECT_THAT(s.message(), HasSubstr("EPERM"));

  s = CheckRlimitsAllowed({{RLIMIT_NOFILE, 64, kRlimitInfinity}}, false);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("unlimited"));
}

}  // namespace
}  // namespace mesh::runtime::security
