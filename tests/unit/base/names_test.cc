#include "base/names.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mesh {
namespace {

using ::testing::HasSubstr;

TEST(NamesTest, AcceptsDnsLabels) {
  for (const char* name : {"a", "web", "web-1", "0", "a1-b2-c3", "x123456789"}) {
    EXPECT_TRUE(ValidateName(NameKind::kContainer, name).ok()) << name;
  }
  EXPECT_TRUE(ValidateName(NameKind::kNetwork, std::string(63, 'n')).ok());
}

struct BadName {
  std::string name;
  std::string expected;  // a substring of the message
};

class BadNamesTest : public ::testing::TestWithParam<BadName> {};

TEST_P(BadNamesTest, RejectedWithAMessageThatSaysWhy) {
  absl::Status s = ValidateName(NameKind::kNetwork, GetParam().name);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("network name \""));
  EXPECT_THAT(std::string(s.message()), HasSubstr(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    All, BadNamesTest,
    ::testing::Values(BadName{"", "must not be empty"},
                      BadName{std::string(64, 'a'), "is 64 characters long, the limit is 63"},
                      BadName{std::string(4096, 'a'), "is 4096 characters long"},
                      BadName{"..", "is a path component"}, BadName{".", "is a path component"},
                      BadName{"a..b", "'.' at position 2"},
                      BadName{"a/b", "'/' at position 2 is not allowed (names are not paths)"},
                      BadName{"../etc", "'.' at position 1"},
                      BadName{std::string("a\0b", 3), "a NUL byte at position 2"},
                      BadName{"-web", "must not start with '-'"},
                      BadName{"web-", "must not end with '-'"},
                      BadName{"Web", "uppercase 'W' at position 1 is not allowed; use \"web\""},
                      BadName{"my_net", "'_' at position 3"},
                      BadName{"a b", "a space at position 2"},
                      BadName{"caf\xc3\xa9", "byte 0xc3 at position 4"}));

TEST(NamesTest, LongNamesAreCutInTheMessage) {
  absl::Status s = ValidateName(NameKind::kGroup, std::string(4096, 'g'));
  EXPECT_LT(s.message().size(), 200u);
  EXPECT_THAT(std::string(s.message()), HasSubstr("group name"));
}

TEST(NamesTest, NonPrintableBytesAreEscapedInTheMessage) {
  absl::Status s = ValidateName(NameKind::kContainer, std::string("a\nb", 3));
  EXPECT_THAT(std::string(s.message()), HasSubstr("\"a\\nb\""));
  EXPECT_THAT(std::string(s.message()), HasSubstr("container name"));
}

}  // namespace
}  // namespace mesh
