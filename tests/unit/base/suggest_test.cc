#include "base/suggest.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mesh {
namespace {

TEST(EditDistanceTest, CountsInsertionsDeletionsAndSubstitutions) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("abc", ""), 3u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  EXPECT_EQ(EditDistance("image", "image"), 0u);
  EXPECT_EQ(EditDistance("imgae", "image"), 2u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

TEST(ClosestMatchTest, FindsMisspellingsAndPrefixes) {
  const std::vector<std::string> known = {"image",    "command",    "entrypoint", "cap_add",
                                          "cap_drop", "depends_on", "state_dir",  "shim_path"};
  EXPECT_EQ(ClosestMatch("imgae", known), "image");
  EXPECT_EQ(ClosestMatch("comand", known), "command");
  EXPECT_EQ(ClosestMatch("cap-add", known), "cap_add");        // '-' reads as '_'
  EXPECT_EQ(ClosestMatch("Depends_On", known), "depends_on");  // case does not count
  EXPECT_EQ(ClosestMatch("stateDir", known), "state_dir");
  EXPECT_EQ(ClosestMatch("shim", known), "shim_path");  // a prefix
  EXPECT_EQ(ClosestMatch("entrypoints", known), "entrypoint");
}

TEST(ClosestMatchTest, NothingWhenNothingIsClose) {
  const std::vector<std::string> known = {"image", "command"};
  EXPECT_EQ(ClosestMatch("networks", known), std::nullopt);
  EXPECT_EQ(ClosestMatch("xy", known), std::nullopt);
  EXPECT_EQ(ClosestMatch("image", {}), std::nullopt);
}

TEST(ClosestMatchTest, TheClosestWinsAndTiesGoToTheFirst) {
  EXPECT_EQ(ClosestMatch("cap_ad", {"cap_drop", "cap_add"}), "cap_add");
  EXPECT_EQ(ClosestMatch("ab", {"ax", "xb"}), "ax");
}

}  // namespace
}  // namespace mesh
