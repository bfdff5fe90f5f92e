#include "netplane/network/names.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mesh::netplane {
namespace {

TEST(NetplaneNamesTest, StableHashIsFnv1a64) {
  // Published FNV-1a 64 test vectors: names derived from it are a persisted format.
  EXPECT_EQ(StableHash(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(StableHash("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(StableHash("foobar"), 0x85944171f73967e8ULL);
}

TEST(NetplaneNamesTest, NamesAreDeterministicFifteenBytesWithMeshPrefixes) {
  std::string bridge = BridgeName("front");
  EXPECT_EQ(bridge, BridgeName("front"));
  EXPECT_EQ(bridge.size(), kMaxIfNameLength);
  EXPECT_TRUE(bridge.starts_with("mbr-"));
  std::string host = VethHostName("web-1", "front");
  std::string peer = VethPeerName("web-1", "front");
  EXPECT_TRUE(host.starts_with("mve-"));
  EXPECT_TRUE(peer.starts_with("mvp-"));
  EXPECT_EQ(host.substr(4), peer.substr(4));  // the two ends of one pair share the hash
  for (const std::string& n : {bridge, host, peer}) {
    EXPECT_EQ(n.size(), 15u) << n;
    EXPECT_TRUE(IsMeshLinkName(n)) << n;
  }
  // Long ids (63-byte names) still give 15-byte names.
  EXPECT_EQ(VethHostName(std::string(63, 'c'), std::string(63, 'n')).size(), 15u);
}

TEST(NetplaneNamesTest, PartsCannotRunTogether) {
  // ("ab", "c") and ("a", "bc") must not collide just because the strings concatenate alike.
  EXPECT_NE(VethHostName("ab", "c"), VethHostName("a", "bc"));
}

TEST(NetplaneNamesTest, NoCollisionsAcrossManyContainers) {
  std::set<std::string> seen;
  for (int i = 0; i < 20000; ++i) {
    ASSERT_TRUE(seen.insert(VethHostName(absl::StrCat("c", i), "net")).second) << i;
  }
}

TEST(NetplaneNamesTest, ForeignNamesAreNotMeshNames) {
  for (const char* name :
       {"eth0", "lo", "docker0", "br-0123456789ab", "veth1234567", "mbr-", "mbr-0123456789",
        "mbr-0123456789ab", "mbr-0123456789G", "mxx-0123456789a", "mbr-0123456789A"}) {
    EXPECT_FALSE(IsMeshLinkName(name)) << name;
  }
}

TEST(NetplaneNamesTest, MacIsStableLocallyAdministeredUnicast) {
  auto mac = ContainerMac("web-1", "front");
  EXPECT_EQ(mac, ContainerMac("web-1", "front"));
  EXPECT_NE(mac, ContainerMac("web-1", "back"));
  EXPECT_EQ(mac[0] & 0x01, 0);  // unicast
  EXPECT_EQ(mac[0] & 0x02, 2);  // locally administered
  EXPECT_EQ(MacToString({0x02, 0x0a, 0xff, 0x00, 0x10, 0x01}), "02:0a:ff:00:10:01");
}

}  // namespace
}  // namespace mesh::netplane
