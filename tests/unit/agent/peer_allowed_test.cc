#include "agent/server/unix_listener.h"
#include "gtest/gtest.h"

namespace mesh::agent {
namespace {

TEST(PeerAllowedTest, RootAlwaysOthersOnlyThroughTheGroup) {
  EXPECT_TRUE(PeerAllowed({.pid = 1, .uid = 0, .gid = 0}, std::nullopt));
  EXPECT_TRUE(PeerAllowed({.pid = 1, .uid = 0, .gid = 1234}, 999));
  // No mesh group on the host: root only.
  EXPECT_FALSE(PeerAllowed({.pid = 1, .uid = 1000, .gid = 1000}, std::nullopt));
  // Primary or supplementary membership.
  EXPECT_TRUE(PeerAllowed({.pid = 1, .uid = 1000, .gid = 999}, 999));
  EXPECT_TRUE(PeerAllowed({.pid = 1, .uid = 1000, .gid = 1000, .groups = {27, 999}}, 999));
  EXPECT_FALSE(PeerAllowed({.pid = 1, .uid = 1000, .gid = 1000, .groups = {27, 998}}, 999));
}

TEST(PeerAllowedTest, GroupLookup) {
  EXPECT_EQ(LookUpGroup("root"), gid_t{0});
  EXPECT_EQ(LookUpGroup("no-such-group-of-mesh"), std::nullopt);
}

}  // namespace
}  // namespace mesh::agent
