#include "netplane/nft/fake_nft_table.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "netplane/nft/ruleset.h"
#include "tests/unit/netplane/nft/sample_state.h"

namespace mesh::netplane::nft {
namespace {

using sample::Addr;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

constexpr Family kInet = Family::kInet;

class FakeNftTableTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(nft_.Apply(FullRebuild(sample::State())).ok()); }

  size_t Count(absl::string_view set) const {
    return nft_.ElementCount(kInet, kTableName, set).value_or(999);
  }

  FakeNftTable nft_;
};

// The readable dump of the reference state: mesh's table as the fake holds it.
constexpr char kSampleDump[] = R"(table inet mesh
  comment "mesh container networks: managed by meshd, do not edit"
  set bridges { type ifname }
    comment "bridges of all mesh networks"
    "mbr-front" comment "front"
    "mbr-lab" comment "lab"
  set internal { type ifname }
    comment "bridges of internal networks"
    "mbr-lab" comment "lab"
  set nat_subnets4 { type ipv4_addr; flags interval }
    comment "subnets masqueraded to the outside"
    10.88.0.0/24 comment "front"
  map published4 { type inet_proto . inet_service : ipv4_addr . inet_service }
    comment "published ports"
    tcp . 8080 comment "web-1/front" : 10.88.0.2 . 80
  map published4_bound { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
    comment "ports published on one host address"
    203.0.113.1 . udp . 5353 comment "dns/lab" : 10.88.1.3 . 53
  set same_network { type ifname . ifname }
    comment "bridge . bridge of every network"
    "mbr-front" . "mbr-front" comment "front"
    "mbr-lab" . "mbr-lab" comment "lab"
  set trace4 { type ipv4_addr . ipv4_addr . inet_proto }
    comment "probes of meshctl check: source . destination . protocol"
  chain forward { type filter hook forward priority 0; policy accept }
    comment "isolation between mesh networks"
    rule comment "replies and related traffic"
      [ ct load state => reg 1 ]
      [ bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000 ]
      [ cmp neq reg 1 0x00000000 ]
      [ immediate reg 0 accept ]
    rule comment "internal networks have no way out"
      [ meta load iifname => reg 1 ]
      [ lookup reg 1 set internal ]
      [ meta load iifname => reg 1 ]
      [ meta load oifname => reg 2 ]
      [ lookup reg 1 set same_network 0x1 ]
      [ immediate reg 0 drop ]
    rule comment "internal networks have no way in"
      [ meta load oifname => reg 1 ]
      [ lookup reg 1 set internal ]
      [ meta load iifname => reg 1 ]
      [ meta load oifname => reg 2 ]
      [ lookup reg 1 set same_network 0x1 ]
      [ immediate reg 0 drop ]
    rule comment "inside one network"
      [ meta load iifname => reg 1 ]
      [ meta load oifname => reg 2 ]
      [ lookup reg 1 set same_network ]
      [ immediate reg 0 accept ]
    rule comment "published ports, hairpin included"
      [ ct load status => reg 1 ]
      [ bitwise reg 1 = ( reg 1 & 0x00000020 ) ^ 0x00000000 ]
      [ cmp neq reg 1 0x00000000 ]
      [ immediate reg 0 accept ]
    rule comment "networks are isolated from each other"
      [ meta load iifname => reg 1 ]
      [ lookup reg 1 set bridges ]
      [ meta load oifname => reg 1 ]
      [ lookup reg 1 set bridges ]
      [ immediate reg 0 drop ]
  chain input { type filter hook input priority 0; policy accept }
    comment "internal networks reach only their gateway"
    rule comment "internal networks reach only their gateway"
      [ meta load iifname => reg 1 ]
      [ lookup reg 1 set internal ]
      [ fib daddr . iif type => reg 1 ]
      [ cmp neq reg 1 0x00000002 ]
      [ immediate reg 0 drop ]
  chain output { type nat hook output priority -100; policy accept }
    comment "published ports, from the host itself"
    rule comment "ports published on one host address"
      [ fib daddr type => reg 1 ]
      [ cmp eq reg 1 0x00000002 ]
      [ meta load nfproto => reg 1 ]
      [ cmp eq reg 1 0x00000002 ]
      [ payload load 4b @ network header + 16 => reg 1 ]
      [ meta load l4proto => reg 9 ]
      [ payload load 2b @ transport header + 2 => reg 10 ]
      [ lookup reg 1 set published4_bound dreg 1 ]
      [ nat dnat ip addr_min reg 1 proto_min reg 9 ]
    rule comment "ports published on every host address"
      [ fib daddr type => reg 1 ]
      [ cmp eq reg 1 0x00000002 ]
      [ meta load l4proto => reg 1 ]
      [ payload load 2b @ transport header + 2 => reg 9 ]
      [ lookup reg 1 set published4 dreg 1 ]
      [ nat dnat ip addr_min reg 1 proto_min reg 9 ]
  chain postrouting { type nat hook postrouting priority 100; policy accept }
    comment "outbound NAT and hairpin"
    rule comment "outbound NAT"
      [ meta load nfproto => reg 1 ]
      [ cmp eq reg 1 0x00000002 ]
      [ payload load 4b @ network header + 12 => reg 1 ]
      [ lookup reg 1 set nat_subnets4 ]
      [ meta load oifname => reg 1 ]
      [ lookup reg 1 set bridges 0x1 ]
      [ masq ]
    rule comment "hairpin to published ports"
      [ ct load status => reg 1 ]
      [ bitwise reg 1 = ( reg 1 & 0x00000020 ) ^ 0x00000000 ]
      [ cmp neq reg 1 0x00000000 ]
      [ meta load nfproto => reg 1 ]
      [ cmp eq reg 1 0x00000002 ]
      [ payload load 4b @ network header + 12 => reg 1 ]
      [ lookup reg 1 set nat_subnets4 ]
      [ meta load oifname => reg 1 ]
      [ lookup reg 1 set bridges ]
      [ masq ]
  chain prerouting { type nat hook prerouting priority -100; policy accept }
    comment "published ports, from outside and from containers"
    rule comment "ports published on one host address"
      [ fib daddr type => reg 1 ]
      [ cmp eq reg 1 0x00000002 ]
      [ meta load nfproto => reg 1 ]
      [ cmp eq reg 1 0x00000002 ]
      [ payload load 4b @ network header + 16 => reg 1 ]
      [ meta load l4proto => reg 9 ]
      [ payload load 2b @ transport header + 2 => reg 10 ]
      [ lookup reg 1 set published4_bound dreg 1 ]
      [ nat dnat ip addr_min reg 1 proto_min reg 9 ]
    rule comment "ports published on every host address"
      [ fib daddr type => reg 1 ]
      [ cmp eq reg 1 0x00000002 ]
      [ meta load l4proto => reg 1 ]
      [ payload load 2b @ transport header + 2 => reg 9 ]
      [ lookup reg 1 set published4 dreg 1 ]
      [ nat dnat ip addr_min reg 1 proto_min reg 9 ]
  chain trace { type filter hook prerouting priority -300; policy accept }
    comment "nftrace on the probes of meshctl check"
    rule comment "probes of meshctl check"
      [ meta load nfproto => reg 1 ]
      [ cmp eq reg 1 0x00000002 ]
      [ payload load 4b @ network header + 12 => reg 1 ]
      [ payload load 4b @ network header + 16 => reg 9 ]
      [ meta load l4proto => reg 10 ]
      [ lookup reg 1 set trace4 ]
      [ immediate reg 1 0x00000001 ]
      [ meta set nftrace with reg 1 ]
table bridge mesh
  comment "mesh: detached containers cut off until their veth pair is deleted"
  set retired { type ifname }
    comment "host ends of detached veth pairs"
  chain forward { type filter hook forward priority -200; policy accept }
    comment "detached containers"
    rule comment "nothing bridged to a detached container"
      [ meta load oifname => reg 1 ]
      [ lookup reg 1 set retired ]
      [ immediate reg 0 drop ]
  chain output { type filter hook output priority -200; policy accept }
    comment "detached containers"
    rule comment "nothing from the host to a detached container"
      [ meta load oifname => reg 1 ]
      [ lookup reg 1 set retired ]
      [ immediate reg 0 drop ]
  chain prerouting { type filter hook prerouting priority -200; policy accept }
    comment "detached containers"
    rule comment "nothing from a detached container"
      [ meta load iifname => reg 1 ]
      [ lookup reg 1 set retired ]
      [ immediate reg 0 drop ]
)";

TEST_F(FakeNftTableTest, FullRebuildDump) {
  EXPECT_EQ(nft_.Dump(), kSampleDump);
  EXPECT_EQ(nft_.RuleCount(kInet, kTableName), 14u);
  EXPECT_EQ(Count(kBridgesSet), 2u);
  EXPECT_EQ(Count(kSameNetworkSet), 2u);
  EXPECT_EQ(Count(kInternalSet), 1u);
  EXPECT_EQ(Count(kNatSubnetsSet), 2u);  // start and end of 10.88.0.0/24
  EXPECT_EQ(Count(kPublishedMap), 1u);
  EXPECT_EQ(Count(kPublishedBoundMap), 1u);
}

TEST_F(FakeNftTableTest, FullRebuildIsIdempotentAndReplacesEverything) {
  ASSERT_TRUE(nft_.Apply(FullRebuild(sample::State())).ok());
  EXPECT_EQ(nft_.Dump(), kSampleDump);
  // A port and a network added by hand (or left by a crash) vanish with the next rebuild.
  ASSERT_TRUE(nft_.Apply(AddPort({IPPROTO_TCP, std::nullopt, 9, Addr("10.88.0.9"), 9, "x"})).ok());
  ASSERT_TRUE(nft_.Apply(AddNetwork({"b", "mbr-b", Addr("10.88.7.0"), 24, true, false})).ok());
  ASSERT_NE(nft_.Dump(), kSampleDump);
  ASSERT_TRUE(nft_.Apply(FullRebuild(sample::State())).ok());
  EXPECT_EQ(nft_.Dump(), kSampleDump);
}

TEST_F(FakeNftTableTest, StructuralAccess) {
  std::optional<Chain> forward = nft_.GetChain(kInet, kTableName, kForwardChain);
  ASSERT_TRUE(forward.has_value());
  EXPECT_EQ(forward->base->hook, Hook::kForward);
  std::vector<Rule> rules = nft_.GetRules(kInet, kTableName, kPostroutingChain);
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_NE(rules[0].handle, rules[1].handle);
  EXPECT_EQ(rules[0].exprs.back(), Expr(Masquerade{}));
  std::optional<Set> map = nft_.GetSet(kInet, kTableName, kPublishedMap);
  ASSERT_TRUE(map.has_value());
  EXPECT_TRUE(map->is_map());
  std::vector<Element> elements = nft_.GetElements(kInet, kTableName, kPublishedMap);
  ASSERT_EQ(elements.size(), 1u);
  EXPECT_EQ(elements[0].data[0], Datum::Ipv4Addr(Addr("10.88.0.2")));
  EXPECT_FALSE(nft_.GetSet(kInet, kTableName, "nope").has_value());
  EXPECT_EQ(nft_.ElementCount(kInet, kTableName, "nope"), std::nullopt);
  EXPECT_EQ(nft_.ElementCount(Family::kIp, kTableName, kBridgesSet), std::nullopt);
}

TEST_F(FakeNftTableTest, AddPortTwiceIsAlreadyExistsAndChangesNothing) {
  absl::Status s = nft_.Apply(AddPort(sample::WebPort()));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(),
            "nftables: add element to map \"published4\" in table inet mesh "
            "(tcp . 8080 : 10.88.0.2 . 80): File exists (EEXIST)");
  EXPECT_EQ(nft_.Dump(), kSampleDump);
  // Same host port for another container: also refused.
  PortEntry other = sample::WebPort();
  other.container_address = Addr("10.88.0.3");
  EXPECT_EQ(nft_.Apply(AddPort(other)).code(), absl::StatusCode::kAlreadyExists);
  // Same port on one host address is a different key.
  other.host_address = Addr("203.0.113.1");
  EXPECT_TRUE(nft_.Apply(AddPort(other)).ok());
  EXPECT_EQ(Count(kPublishedBoundMap), 2u);
}

TEST_F(FakeNftTableTest, FailingTransactionAppliesNothing) {
  PortEntry fresh{IPPROTO_TCP, std::nullopt, 9090, Addr("10.88.0.4"), 90, "new"};
  Transaction t = AddPort(fresh);                                            // would succeed
  t.Append(AddPort(sample::WebPort()));                                      // fails: already there
  t.Append(AddNetwork({"c", "mbr-c", Addr("10.88.9.0"), 24, true, false}));  // never reached
  absl::Status s = nft_.Apply(t);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(s.message(), HasSubstr("8080"));  // names the failing command, not the first
  EXPECT_THAT(s.message(), Not(HasSubstr("9090")));
  EXPECT_EQ(nft_.Dump(), kSampleDump);
}

TEST_F(FakeNftTableTest, DeletingWhatIsAbsentIsNotFound) {
  Elements absent{
      kInet,
      kTableName,
      kPublishedMap,
      true,
      {Element{{Datum::InetProto(IPPROTO_UDP), Datum::InetService(1)}, {}, false, false, ""}}};
  absl::Status s = nft_.Apply(Transaction().Delete(absent));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(),
            "nftables: delete element from map \"published4\" in table inet mesh (udp . 1): No "
            "such file or directory (ENOENT)");
  EXPECT_EQ(nft_.Apply(Transaction().Delete(Table{Family::kIp, "nope", ""})).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(nft_.Apply(Transaction().Delete(Chain{kInet, kTableName, "nope", {}, ""})).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(
      nft_.Apply(Transaction().Flush(Set{kInet, kTableName, "nope", {}, {}, false, ""})).code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(
      nft_.Apply(Transaction().Delete(Rule{kInet, kTableName, kForwardChain, {}, "", 999})).code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(nft_.Dump(), kSampleDump);
}

TEST(FakeNftTableEmptyTest, HotPathNeedsTheTable) {
  FakeNftTable nft;
  absl::Status s = nft.Apply(AddPort(sample::WebPort()));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(nft.HasTable(kInet, kTableName));
  EXPECT_EQ(nft.Dump(), "");
  EXPECT_EQ(nft.apply_count(), 1);
}

TEST_F(FakeNftTableTest, RemoveIsIdempotent) {
  ASSERT_TRUE(nft_.Apply(RemovePort(sample::WebPort())).ok());
  ASSERT_TRUE(nft_.Apply(RemovePort(sample::WebPort())).ok());
  ASSERT_TRUE(nft_.Apply(RemoveNetwork(sample::Lab())).ok());
  ASSERT_TRUE(nft_.Apply(RemoveNetwork(sample::Lab())).ok());
  EXPECT_EQ(Count(kPublishedMap), 0u);
  EXPECT_EQ(Count(kInternalSet), 0u);
  EXPECT_EQ(Count(kBridgesSet), 1u);
  // Adding them back restores the reference exactly.
  ASSERT_TRUE(nft_.Apply(AddPort(sample::WebPort())).ok());
  ASSERT_TRUE(nft_.Apply(AddNetwork(sample::Lab())).ok());
  EXPECT_EQ(nft_.Dump(), kSampleDump);
}

TEST_F(FakeNftTableTest, RemovePortNeverRemovesAnotherContainersMapping) {
  PortEntry other = sample::WebPort();
  other.container_address = Addr("10.88.0.99");
  absl::Status s = nft_.Apply(RemovePort(other));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(),
            "nftables: ensure element in map \"published4\" in table inet mesh "
            "(tcp . 8080 : 10.88.0.99 . 80): File exists (EEXIST); it exists with different "
            "contents");
  EXPECT_EQ(nft_.Dump(), kSampleDump);
}

TEST_F(FakeNftTableTest, AdjacentSubnetsAreIndependentRanges) {
  NetworkEntry next{"next", "mbr-next", Addr("10.88.1.0"), 24, true, false};  // after front
  ASSERT_TRUE(nft_.Apply(AddNetwork(next)).ok());
  EXPECT_EQ(Count(kNatSubnetsSet), 4u);  // front's end and next's start share 10.88.1.0
  EXPECT_THAT(nft_.Dump(),
              HasSubstr("    10.88.0.0/24 comment \"front\"\n    10.88.1.0/24 comment \"next\"\n"));
  ASSERT_TRUE(nft_.Apply(RemoveNetwork(sample::Front())).ok());
  EXPECT_THAT(nft_.Dump(), HasSubstr("  set nat_subnets4 { type ipv4_addr; flags interval }\n"
                                     "    comment \"subnets masqueraded to the outside\"\n"
                                     "    10.88.1.0/24 comment \"next\"\n  map"));
}

TEST_F(FakeNftTableTest, KernelRulesForSetsAndRules) {
  // A set a rule looks up cannot be deleted (EBUSY).
  absl::Status busy =
      nft_.Apply(Transaction().Delete(Set{kInet, kTableName, kBridgesSet, {}, {}, false, ""}));
  EXPECT_EQ(busy.code(), absl::StatusCode::kFailedPrecondition);
  // Ensuring a set with other types clashes; with the same types it is a no-op.
  Set bridges = *nft_.GetSet(kInet, kTableName, kBridgesSet);
  EXPECT_TRUE(nft_.Apply(Transaction().Ensure(bridges)).ok());
  EXPECT_EQ(nft_.Apply(Transaction().Add(bridges)).code(), absl::StatusCode::kAlreadyExists);
  bridges.key = {DataType::kMark};
  EXPECT_EQ(nft_.Apply(Transaction().Ensure(bridges)).code(), absl::StatusCode::kAlreadyExists);
  // An element of the wrong shape for its set.
  Elements wrong{kInet,
                 kTableName,
                 kNatSubnetsSet,
                 false,
                 {Element{{Datum::Ifname("br0")}, {}, false, false, ""}}};
  EXPECT_EQ(nft_.Apply(Transaction().Add(wrong)).code(), absl::StatusCode::kInvalidArgument);
  // A rule looking up a missing set, or asking a plain set for a value.
  Rule missing{kInet, kTableName, kForwardChain, {Lookup{NFT_REG_1, "nope", {}, false}}, "", 0};
  EXPECT_EQ(nft_.Apply(Transaction().Add(missing)).code(), absl::StatusCode::kNotFound);
  Rule value{kInet, kTableName, kForwardChain, {Lookup{NFT_REG_1, kBridgesSet, NFT_REG_1, false}},
             "",    0};
  EXPECT_EQ(nft_.Apply(Transaction().Add(value)).code(), absl::StatusCode::kInvalidArgument);
  // Validation errors come back before anything is looked at.
  Elements long_name{kInet,
                     kTableName,
                     kBridgesSet,
                     false,
                     {Element{{Datum::Ifname("much-too-long-name")}, {}, false, false, ""}}};
  EXPECT_EQ(nft_.Apply(Transaction().Add(long_name)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(nft_.Dump(), kSampleDump);
}

TEST_F(FakeNftTableTest, FlushAndDeleteRules) {
  std::vector<Rule> rules = nft_.GetRules(kInet, kTableName, kForwardChain);
  Rule victim = rules.at(1);
  ASSERT_TRUE(nft_.Apply(Transaction().Delete(victim)).ok());
  EXPECT_EQ(nft_.RuleCount(kInet, kTableName), 13u);
  ASSERT_TRUE(
      nft_.Apply(Transaction().Flush(Chain{kInet, kTableName, kForwardChain, {}, ""})).ok());
  EXPECT_EQ(nft_.RuleCount(kInet, kTableName), 8u);
  ASSERT_TRUE(
      nft_.Apply(Transaction().Flush(Set{kInet, kTableName, kBridgesSet, {}, {}, false, ""})).ok());
  EXPECT_EQ(Count(kBridgesSet), 0u);
}

TEST(FakeNftTableScaleTest, RuleCountIsTheSameForOneAndFiftyNetworksAndPorts) {
  FakeNftTable one, fifty;
  ASSERT_TRUE(one.Apply(FullRebuild(sample::Scaled(1))).ok());
  ASSERT_TRUE(fifty.Apply(FullRebuild(sample::Scaled(50))).ok());
  EXPECT_EQ(one.RuleCount(kInet, kTableName), 14u);
  EXPECT_EQ(fifty.RuleCount(kInet, kTableName), 14u);
  EXPECT_THAT(fifty.ElementCount(kInet, kTableName, kBridgesSet), Optional(50u));
  EXPECT_THAT(fifty.ElementCount(kInet, kTableName, kNatSubnetsSet), Optional(100u));
  EXPECT_THAT(fifty.ElementCount(kInet, kTableName, kPublishedMap), Optional(50u));
  // Growing one by hot-path calls gives exactly the rebuilt table.
  for (int i = 1; i < 50; ++i) {
    DesiredState s = sample::Scaled(50);
    ASSERT_TRUE(one.Apply(AddNetwork(s.networks[i])).ok()) << i;
    ASSERT_TRUE(one.Apply(AddPort(s.ports[i])).ok()) << i;
  }
  EXPECT_EQ(one.RuleCount(kInet, kTableName), 14u);
  EXPECT_EQ(one.Dump(), fifty.Dump());
}

TEST(FakeNftTableForeignTest, OtherTablesAreLeftAlone) {
  FakeNftTable nft;
  Transaction foreign;
  foreign.Add(Table{Family::kIp, "other", ""});
  foreign.Add(Chain{Family::kIp, "other", "input",
                    BaseChain{ChainType::kFilter, Hook::kInput, 0, Policy::kAccept}, ""});
  foreign.Add(Rule{Family::kIp, "other", "input", {Verdict{NF_ACCEPT}}, "theirs", 0});
  ASSERT_TRUE(nft.Apply(foreign).ok());
  const std::string before = nft.Dump();
  ASSERT_TRUE(nft.Apply(FullRebuild(sample::State())).ok());
  ASSERT_TRUE(nft.Apply(FullRebuild(sample::State())).ok());
  EXPECT_TRUE(nft.HasTable(kInet, kTableName));
  EXPECT_EQ(nft.RuleCount(Family::kIp, "other"), 1u);
  ASSERT_TRUE(nft.Apply(DeleteTable()).ok());
  ASSERT_TRUE(nft.Apply(DeleteTable()).ok());  // idempotent
  EXPECT_FALSE(nft.HasTable(kInet, kTableName));
  EXPECT_EQ(nft.Dump(), before);
}

TEST(FakeNftTableInjectionTest, FailNextApply) {
  FakeNftTable nft;
  nft.FailNextApplyForTest(absl::PermissionDeniedError("injected"));
  EXPECT_EQ(nft.Apply(FullRebuild({})).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(nft.HasTable(kInet, kTableName));
  EXPECT_TRUE(nft.Apply(FullRebuild({})).ok());
  EXPECT_EQ(nft.apply_count(), 2);
}

}  // namespace
}  // namespace mesh::netplane::nft
