// LinkManager against the fake kernel (no root). Both ends live in the test's own namespace
// (a link between two interfaces of one member): the fake keys namespaces by inode, and making
// a second one needs root. Links across namespaces are tested on the real kernel
// (NetplaneTest.LinksJoinTwoNamespacesStraight).
#include "netplane/network/link_manager.h"

#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "netplane/network/names.h"
#include "netplane/testing/fake_rtnl.h"

namespace mesh::netplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kNetns[] = "/proc/self/ns/net";

class LinkManagerTest : public ::testing::Test {
 protected:
  LinkManager manager_{
      [this](const NamespaceHandle& ns) { return kernel_.Ops(testing::FakeKernel::KeyOf(ns)); }};
  testing::FakeKernel kernel_;

  static LinkConfig Link() {
    LinkConfig link;
    link.id = "lab/r1:eth1--r2:eth1";
    link.ends[0] = LinkEnd{.container_id = "lab-r1",
                           .netns_path = kNetns,
                           .ifname = "r1-eth1",
                           .addresses = {*ipam::InterfaceAddress::Parse("10.0.12.1/30")},
                           .mtu = 9000,
                           .egress = EgressLimit{.rate_bps = 8'000'000, .burst_bytes = 32768}};
    link.ends[1] = LinkEnd{.container_id = "lab-r2",
                           .netns_path = kNetns,
                           .ifname = "r2-eth1",
                           .addresses = {*ipam::InterfaceAddress::Parse("10.0.12.2/30"),
                                         *ipam::InterfaceAddress::Parse("fd00:12::2/64")},
                           .mtu = 1400,
                           .routes = {StaticRoute{*ipam::IpPrefix::Parse("10.0.1.0/24"),
                                                  *ipam::IpAddress::Parse("10.0.12.1")}}};
    return link;
  }
};

TEST_F(LinkManagerTest, CreateMakesBothEndsAsConfigured) {
  const LinkConfig link = Link();
  ASSERT_TRUE(manager_.Create(link).ok());
  const std::string dump = kernel_.Dump();
  // The first end carries the alias; IPv6 is off only where no IPv6 address is.
  EXPECT_THAT(dump, HasSubstr(absl::StrCat("link r1-eth1 veth master=0 up mtu=9000 mac= alias=",
                                           LinkAlias(link), " noipv6\n")));
  // The second end's MAC is stable: the same whenever the link is made again.
  EXPECT_THAT(dump,
              HasSubstr(absl::StrCat("link r2-eth1 veth master=0 up mtu=1400 mac=",
                                     MacToString(ContainerMac("lab-r2", "link r2-eth1")), " ")));
  EXPECT_THAT(dump, Not(HasSubstr("alias=peer:r1-eth1 noipv6")));
  EXPECT_THAT(dump, HasSubstr("addr r1-eth1 10.0.12.1/30\n"));
  EXPECT_THAT(dump, HasSubstr("addr r2-eth1 10.0.12.2/30\n"));
  EXPECT_THAT(dump, HasSubstr("addr r2-eth1 fd00:12::2/64\n"));
  EXPECT_THAT(dump, HasSubstr("qdisc r1-eth1 tbf rate 8000000 burst 32768 limit 52768\n"));
  EXPECT_THAT(dump, HasSubstr("route 10.0.1.0/24 via 10.0.12.1 dev r2-eth1\n"));

  EXPECT_TRUE(manager_.Present(link).value_or(false));
  auto listed = manager_.List(kNetns);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].ifname, "r1-eth1");
  EXPECT_EQ(LinkIdOfAlias((*listed)[0].alias), link.id);
}

TEST_F(LinkManagerTest, AChangedConfigurationIsNotPresentAndRemoveTakesBothEnds) {
  LinkConfig link = Link();
  ASSERT_TRUE(manager_.Create(link).ok());
  LinkConfig changed = link;
  changed.ends[1].addresses[0] = *ipam::InterfaceAddress::Parse("10.0.12.3/30");
  EXPECT_FALSE(manager_.Present(changed).value_or(true));
  changed.ends[1].ifname = "other";
  EXPECT_FALSE(manager_.Present(changed).value_or(true));
  ASSERT_TRUE(manager_.Remove(kNetns, "r1-eth1").ok());
  EXPECT_EQ(kernel_.Dump(), "");
  EXPECT_FALSE(manager_.Present(link).value_or(true));
  EXPECT_TRUE(manager_.Remove(kNetns, "r1-eth1").ok()) << "removing again succeeds";
  EXPECT_TRUE(manager_.Remove("/nonexistent/netns", "r1-eth1").ok())
      << "a namespace that is gone took the link along";
}

TEST_F(LinkManagerTest, EveryFailingStepLeavesNothing) {
  // Count the kernel calls of one good Create, then fail each in turn.
  ASSERT_TRUE(manager_.Create(Link()).ok());
  std::map<std::string, int> calls = kernel_.Calls();
  ASSERT_TRUE(manager_.Remove(kNetns, "r1-eth1").ok());
  for (const auto& [method, count] : calls) {
    if (method == "DeleteLink") continue;  // the undo itself
    for (int nth = 1; nth <= count; ++nth) {
      SCOPED_TRACE(absl::StrCat(method, " #", nth));
      kernel_.FailAt(method, nth, absl::InternalError("injected"));
      absl::Status s = manager_.Create(Link());
      EXPECT_FALSE(s.ok());
      EXPECT_THAT(s.message(), HasSubstr("lab/r1:eth1--r2:eth1"));
      EXPECT_EQ(kernel_.Dump(), "");
      kernel_.FailAt(method, 1'000'000, absl::OkStatus());
    }
  }
}

TEST_F(LinkManagerTest, ATakenNameIsRefusedWithTheNames) {
  ASSERT_TRUE(manager_.Create(Link()).ok());
  LinkConfig again = Link();
  again.id = "lab/other";
  absl::Status s = manager_.Create(again);
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("\"lab-r1\" has an interface \"r1-eth1\" already"));
  EXPECT_THAT(s.message(), HasSubstr("pick another interface name"));
}

TEST_F(LinkManagerTest, ValidateNamesTheEndAndTheProblem) {
  auto error = [](LinkConfig link) { return std::string(LinkManager::Validate(link).message()); };
  LinkConfig link = Link();
  EXPECT_TRUE(LinkManager::Validate(link).ok());
  link.ends[0].ifname = "lo";
  EXPECT_THAT(error(link), HasSubstr("lab-r1:lo: interface name must be 1 to 15 bytes"));
  link = Link();
  link.ends[1].ifname = "a-very-long-interface";
  EXPECT_THAT(error(link), HasSubstr("interface name must be 1 to 15 bytes"));
  link = Link();
  link.ends[1].mtu = 10;
  EXPECT_THAT(error(link), HasSubstr("lab-r2:r2-eth1: mtu 10 is outside 68 to 65535"));
  link = Link();
  link.ends[1].routes[0].via = *ipam::IpAddress::Parse("10.9.9.9");
  EXPECT_THAT(error(link), HasSubstr("route 10.0.1.0/24 via 10.9.9.9: the next hop is on none"));
  link = Link();
  link.ends[1].routes[0].via = *ipam::IpAddress::Parse("10.0.12.2");  // its own address
  EXPECT_THAT(error(link), HasSubstr("the next hop is on none"));
  link = Link();
  link.ends[1].ifname = link.ends[0].ifname;
  EXPECT_THAT(error(link), HasSubstr("both ends are r1-eth1 of \"lab-r1\""));
  link = Link();
  link.ends[0].addresses.push_back(link.ends[0].addresses[0]);
  EXPECT_THAT(error(link), HasSubstr("address 10.0.12.1/30 is given twice"));
}

TEST(LinkAliasTest, ChangesWithTheConfigurationAndKeepsTheId) {
  LinkConfig a;
  a.id = "g/x:e1--y:e1";
  a.ends[0].ifname = "e1";
  a.ends[1].ifname = "e1";
  LinkConfig b = a;
  b.ends[1].mtu = 9000;
  EXPECT_NE(LinkAlias(a), LinkAlias(b));
  EXPECT_EQ(LinkAlias(a), LinkAlias(a));
  EXPECT_TRUE(IsLinkAlias(LinkAlias(a)));
  EXPECT_FALSE(IsLinkAlias("mesh container c network n"));
  EXPECT_EQ(LinkIdOfAlias(LinkAlias(a)), "g/x:e1--y:e1");
  EXPECT_EQ(LinkIdOfAlias("something else"), "");
  EXPECT_LE(LinkAlias(a).size(), 255u);
}

}  // namespace
}  // namespace mesh::netplane
