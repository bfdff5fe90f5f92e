#include "netplane/nft/ruleset.h"

#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/rtnetlink.h>

#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/netplane/nft/sample_state.h"

namespace mesh::netplane::nft {
namespace {

using sample::Addr;
using ::testing::ElementsAre;
using ::testing::SizeIs;

using namespace std::string_literals;  // NOLINT(build/namespaces): byte strings with NULs

// ---- Structural views of a transaction ----

// Objects of one family: `inet mesh` unless asked for `bridge mesh`.
template <typename T>
std::vector<T> ObjectsOf(const Transaction& t, Verb verb, Family family = Family::kInet) {
  std::vector<T> out;
  for (const Command& c : t.commands()) {
    if (c.verb != verb) continue;
    if (const T* o = std::get_if<T>(&c.object); o != nullptr && o->family == family) {
      out.push_back(*o);
    }
  }
  return out;
}

std::vector<Rule> RulesOf(const Transaction& t, absl::string_view chain) {
  std::vector<Rule> out;
  for (const Rule& r : ObjectsOf<Rule>(t, Verb::kAdd)) {
    if (r.chain == chain) out.push_back(r);
  }
  return out;
}

std::optional<Set> SetOf(const Transaction& t, absl::string_view name) {
  for (const Set& s : ObjectsOf<Set>(t, Verb::kAdd)) {
    if (s.name == name) return s;
  }
  return std::nullopt;
}

std::optional<Chain> ChainOf(const Transaction& t, absl::string_view name) {
  for (const Chain& c : ObjectsOf<Chain>(t, Verb::kAdd)) {
    if (c.name == name) return c;
  }
  return std::nullopt;
}

// Elements added to `set` (over all commands).
std::vector<Element> ElementsOf(const Transaction& t, absl::string_view set,
                                Verb verb = Verb::kAdd) {
  std::vector<Element> out;
  for (const Elements& e : ObjectsOf<Elements>(t, verb)) {
    if (e.set == set) out.insert(out.end(), e.elements.begin(), e.elements.end());
  }
  return out;
}

Element Bridge(absl::string_view name, absl::string_view comment) {
  return Element{{Datum::Ifname(name)}, {}, false, false, std::string(comment)};
}
Element Ipv4(const char* address, bool end, absl::string_view comment = "") {
  return Element{{Datum::Ipv4Addr(Addr(address))}, {}, end, false, std::string(comment)};
}

std::string U32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }

// ---- FullRebuild ----

TEST(FullRebuildTest, ReplacesTheTableWhetherOrNotItExists) {
  Transaction t = FullRebuild(sample::State());
  ASSERT_GE(t.size(), 3u);
  const auto& c = t.commands();
  EXPECT_EQ(c[0].verb, Verb::kEnsure);
  EXPECT_EQ(c[1].verb, Verb::kDelete);
  EXPECT_EQ(c[2].verb, Verb::kAdd);
  for (int i = 0; i < 3; ++i) {
    const Table* table = std::get_if<Table>(&c[i].object);
    ASSERT_NE(table, nullptr) << i;
    EXPECT_EQ(table->family, Family::kInet);
    EXPECT_EQ(table->name, "mesh");
  }
  EXPECT_FALSE(std::get<Table>(c[2].object).comment.empty());
  // Nothing else of the inet table is deleted, and only mesh's tables are named: the bridge
  // table is replaced the same way, after it.
  size_t i = 3;
  for (; i < c.size() && !std::holds_alternative<Table>(c[i].object); ++i) {
    EXPECT_EQ(c[i].verb, Verb::kAdd) << c[i].ToString();
  }
  ASSERT_LE(i + 3, c.size());
  for (size_t j = 0; j < 3; ++j) {
    const Table* table = std::get_if<Table>(&c[i + j].object);
    ASSERT_NE(table, nullptr) << c[i + j].ToString();
    EXPECT_EQ(table->family, Family::kBridge);
    EXPECT_EQ(table->name, "mesh");
  }
  EXPECT_EQ(c[i].verb, Verb::kEnsure);
  EXPECT_EQ(c[i + 1].verb, Verb::kDelete);
  EXPECT_EQ(c[i + 2].verb, Verb::kAdd);
  for (i += 3; i < c.size(); ++i) EXPECT_EQ(c[i].verb, Verb::kAdd) << c[i].ToString();
  EXPECT_THAT(ObjectsOf<Table>(t, Verb::kAdd), SizeIs(1));
  EXPECT_THAT(ObjectsOf<Table>(t, Verb::kAdd, Family::kBridge), SizeIs(1));
}

// `bridge mesh`: one set of retired host ends, three base chains of one drop rule each, and
// the retired ports of the state as elements.
TEST(FullRebuildTest, BridgeTableCutsRetiredPortsOff) {
  DesiredState state = sample::State();
  state.retired_ports = {"mv-aaaa", "mv-bbbb"};
  Transaction t = FullRebuild(state);
  const std::vector<Set> sets = ObjectsOf<Set>(t, Verb::kAdd, Family::kBridge);
  ASSERT_THAT(sets, SizeIs(1));
  EXPECT_EQ(sets[0].name, "retired");
  EXPECT_EQ(sets[0].key, std::vector<DataType>{DataType::kIfname});
  EXPECT_FALSE(sets[0].is_map());
  std::vector<std::pair<std::string, Hook>> chains;
  for (const Chain& c : ObjectsOf<Chain>(t, Verb::kAdd, Family::kBridge)) {
    ASSERT_TRUE(c.base.has_value()) << c.name;
    EXPECT_EQ(c.base->type, ChainType::kFilter);
    EXPECT_EQ(c.base->priority, -200);
    EXPECT_EQ(c.base->policy, Policy::kAccept);
    chains.emplace_back(c.name, c.base->hook);
  }
  EXPECT_THAT(chains, ElementsAre(std::pair<std::string, Hook>{"prerouting", Hook::kPrerouting},
                                  std::pair<std::string, Hook>{"forward", Hook::kForward},
                                  std::pair<std::string, Hook>{"output", Hook::kOutput}));
  const std::vector<Rule> rules = ObjectsOf<Rule>(t, Verb::kAdd, Family::kBridge);
  ASSERT_THAT(rules, SizeIs(3));
  const uint32_t keys[] = {NFT_META_IIFNAME, NFT_META_OIFNAME, NFT_META_OIFNAME};
  for (size_t i = 0; i < rules.size(); ++i) {
    EXPECT_EQ(rules[i].exprs, (std::vector<Expr>{MetaLoad{keys[i], NFT_REG_1},
                                                 Lookup{NFT_REG_1, "retired", std::nullopt, false},
                                                 Verdict{NF_DROP}}))
        << rules[i].chain;
    EXPECT_FALSE(rules[i].comment.empty());
  }
  std::vector<Element> retired;
  for (const Elements& e : ObjectsOf<Elements>(t, Verb::kAdd, Family::kBridge)) {
    retired.insert(retired.end(), e.elements.begin(), e.elements.end());
  }
  EXPECT_THAT(retired, ElementsAre(Bridge("mv-aaaa", ""), Bridge("mv-bbbb", "")));
  // Without retired ports: no element command at all.
  EXPECT_THAT(ObjectsOf<Elements>(FullRebuild(sample::State()), Verb::kAdd, Family::kBridge),
              SizeIs(0));
}

TEST(FullRebuildTest, DeclaresTheSetsAndMaps) {
  Transaction t = FullRebuild(sample::State());
  using T = DataType;
  struct Want {
    const char* name;
    std::vector<DataType> key, data;
    bool interval;
  };
  for (const Want& want : std::vector<Want>{
           {"bridges", {T::kIfname}, {}, false},
           {"same_network", {T::kIfname, T::kIfname}, {}, false},
           {"internal", {T::kIfname}, {}, false},
           {"nat_subnets4", {T::kIpv4Addr}, {}, true},
           {"published4", {T::kInetProto, T::kInetService}, {T::kIpv4Addr, T::kInetService}, false},
           {"published4_bound",
            {T::kIpv4Addr, T::kInetProto, T::kInetService},
            {T::kIpv4Addr, T::kInetService},
            false},
           {"trace4", {T::kIpv4Addr, T::kIpv4Addr, T::kInetProto}, {}, false},
       }) {
    std::optional<Set> s = SetOf(t, want.name);
    ASSERT_TRUE(s.has_value()) << want.name;
    EXPECT_EQ(s->family, Family::kInet);
    EXPECT_EQ(s->table, "mesh");
    EXPECT_EQ(s->key, want.key) << want.name;
    EXPECT_EQ(s->data, want.data) << want.name;
    EXPECT_EQ(s->interval, want.interval) << want.name;
    EXPECT_FALSE(s->comment.empty()) << want.name;
  }
  EXPECT_THAT(ObjectsOf<Set>(t, Verb::kAdd), SizeIs(7));
}

TEST(FullRebuildTest, DeclaresStaticBaseChains) {
  Transaction t = FullRebuild(sample::State());
  struct Want {
    const char* name;
    ChainType type;
    Hook hook;
    int32_t priority;
  };
  for (const Want& want : std::vector<Want>{
           {"forward", ChainType::kFilter, Hook::kForward, 0},
           {"input", ChainType::kFilter, Hook::kInput, 0},
           {"prerouting", ChainType::kNat, Hook::kPrerouting, -100},
           {"output", ChainType::kNat, Hook::kOutput, -100},
           {"postrouting", ChainType::kNat, Hook::kPostrouting, 100},
           {"trace", ChainType::kFilter, Hook::kPrerouting, -300},
       }) {
    std::optional<Chain> c = ChainOf(t, want.name);
    ASSERT_TRUE(c.has_value()) << want.name;
    ASSERT_TRUE(c->base.has_value()) << want.name;
    EXPECT_EQ(c->base->type, want.type) << want.name;
    EXPECT_EQ(c->base->hook, want.hook) << want.name;
    EXPECT_EQ(c->base->priority, want.priority) << want.name;
    EXPECT_EQ(c->base->policy, Policy::kAccept) << want.name;
    EXPECT_FALSE(c->comment.empty()) << want.name;
  }
  EXPECT_THAT(ObjectsOf<Chain>(t, Verb::kAdd), SizeIs(6));
}

// The probes of `meshctl check` get nftrace before any other chain of mesh sees them, and only
// they: the rule is exactly what nft makes of
//   ip saddr . ip daddr . meta l4proto @trace4 meta nftrace set 1
TEST(FullRebuildTest, TraceChainSetsNftraceOnProbesOnly) {
  Transaction t = FullRebuild(sample::State());
  std::vector<Rule> rules = RulesOf(t, "trace");
  ASSERT_THAT(rules, SizeIs(1));
  std::vector<std::string> text;
  for (const Expr& e : rules[0].exprs) text.push_back(ExprToString(e));
  EXPECT_THAT(text,
              ElementsAre("[ meta load nfproto => reg 1 ]", "[ cmp eq reg 1 0x00000002 ]",
                          "[ payload load 4b @ network header + 12 => reg 1 ]",
                          "[ payload load 4b @ network header + 16 => reg 9 ]",
                          "[ meta load l4proto => reg 10 ]", "[ lookup reg 1 set trace4 ]",
                          "[ immediate reg 1 0x00000001 ]", "[ meta set nftrace with reg 1 ]"));
  std::optional<Set> set = SetOf(t, "trace4");
  ASSERT_TRUE(set.has_value());
  EXPECT_THAT(set->key,
              ElementsAre(DataType::kIpv4Addr, DataType::kIpv4Addr, DataType::kInetProto));
  EXPECT_EQ(set->key_len(), 12u);
  EXPECT_THAT(ElementsOf(t, "trace4"), SizeIs(0));
  // A rebuild while a check runs keeps tracing its probe.
  DesiredState state = sample::State();
  state.traces.push_back({Addr("10.88.0.2"), Addr("10.88.0.3"), IPPROTO_TCP});
  EXPECT_THAT(ElementsOf(FullRebuild(state), "trace4"), SizeIs(1));
}

TEST(HotPathTest, TraceElementsComeAndGo) {
  const TraceEntry probe{Addr("10.88.0.2"), Addr("10.88.0.3"), IPPROTO_UDP};
  EXPECT_EQ(probe.ToString(), "10.88.0.2 . 10.88.0.3 . udp");
  Transaction add = AddTrace(probe);
  ASSERT_EQ(add.size(), 1u);
  EXPECT_EQ(add.commands()[0].verb, Verb::kAdd);
  EXPECT_THAT(ElementsOf(add, "trace4"), ElementsAre(Element{{Datum::Ipv4Addr(Addr("10.88.0.2")),
                                                              Datum::Ipv4Addr(Addr("10.88.0.3")),
                                                              Datum::InetProto(IPPROTO_UDP)},
                                                             {},
                                                             false,
                                                             false,
                                                             ""}));
  Transaction remove = RemoveTrace(probe);
  ASSERT_EQ(remove.size(), 2u);
  EXPECT_EQ(remove.commands()[0].verb, Verb::kEnsure);
  EXPECT_EQ(remove.commands()[1].verb, Verb::kDelete);
  EXPECT_TRUE(add.Validate().ok());
  EXPECT_TRUE(remove.Validate().ok());
}

TEST(FullRebuildTest, InternalNetworksReachOnlyTheirGatewayOnTheHost) {
  std::vector<Rule> rules = RulesOf(FullRebuild(sample::State()), "input");
  ASSERT_THAT(rules, SizeIs(1));
  // iifname @internal fib daddr . iif type != local drop
  EXPECT_THAT(
      rules[0].exprs,
      ElementsAre(Expr(MetaLoad{NFT_META_IIFNAME, NFT_REG_1}),
                  Expr(Lookup{NFT_REG_1, "internal", {}, false}),
                  Expr(Fib{NFTA_FIB_F_DADDR | NFTA_FIB_F_IIF, NFT_FIB_RESULT_ADDRTYPE, NFT_REG_1}),
                  Expr(Cmp{NFT_REG_1, NFT_CMP_NEQ, U32(RTN_LOCAL)}), Expr(Verdict{NF_DROP})));
  EXPECT_FALSE(rules[0].comment.empty());
}

TEST(FullRebuildTest, SetsComeBeforeTheRulesThatLookThemUp) {
  Transaction t = FullRebuild(sample::State());
  std::set<std::string> declared;
  for (const Command& c : t.commands()) {
    if (const Set* s = std::get_if<Set>(&c.object)) declared.insert(s->name);
    if (const Rule* r = std::get_if<Rule>(&c.object)) {
      for (const Expr& e : r->exprs) {
        if (const Lookup* l = std::get_if<Lookup>(&e)) {
          EXPECT_TRUE(declared.count(l->set)) << l->set << " in " << c.ToString();
          // Value lookups only on maps.
          if (l->dreg) {
            EXPECT_TRUE(SetOf(t, l->set)->is_map()) << l->set;
          }
        }
      }
    }
  }
}

std::vector<Expr> EstablishedAccept() {
  return {Expr(CtLoad{NFT_CT_STATE, NFT_REG_1}),
          Expr(Bitwise{NFT_REG_1, NFT_REG_1, U32(0x6), U32(0)}),
          Expr(Cmp{NFT_REG_1, NFT_CMP_NEQ, U32(0)}), Expr(Verdict{NF_ACCEPT})};
}

TEST(FullRebuildTest, ForwardChainIsolatesNetworks) {
  std::vector<Rule> rules = RulesOf(FullRebuild(sample::State()), "forward");
  ASSERT_THAT(rules, SizeIs(6));
  // ct state established,related accept: first, so no later change cuts an allowed flow
  EXPECT_EQ(rules[0].exprs, EstablishedAccept());
  // iifname @internal iifname . oifname != @same_network drop, and oifname: before the accepts
  // of policies and DNAT; inside the network, on to the rules below
  for (int i : {1, 2}) {
    EXPECT_THAT(
        rules[i].exprs,
        ElementsAre(Expr(MetaLoad{i == 1 ? NFT_META_IIFNAME : NFT_META_OIFNAME, NFT_REG_1}),
                    Expr(Lookup{NFT_REG_1, "internal", {}, false}),
                    Expr(MetaLoad{NFT_META_IIFNAME, NFT_REG_1}),
                    Expr(MetaLoad{NFT_META_OIFNAME, NFT_REG_2}),
                    Expr(Lookup{NFT_REG_1, "same_network", {}, true}), Expr(Verdict{NF_DROP})));
  }
  // iifname . oifname @same_network accept
  EXPECT_THAT(rules[3].exprs, ElementsAre(Expr(MetaLoad{NFT_META_IIFNAME, NFT_REG_1}),
                                          Expr(MetaLoad{NFT_META_OIFNAME, NFT_REG_2}),
                                          Expr(Lookup{NFT_REG_1, "same_network", {}, false}),
                                          Expr(Verdict{NF_ACCEPT})));
  // ct status dnat accept
  EXPECT_THAT(rules[4].exprs,
              ElementsAre(Expr(CtLoad{NFT_CT_STATUS, NFT_REG_1}),
                          Expr(Bitwise{NFT_REG_1, NFT_REG_1, U32(IPS_DST_NAT), U32(0)}),
                          Expr(Cmp{NFT_REG_1, NFT_CMP_NEQ, U32(0)}), Expr(Verdict{NF_ACCEPT})));
  // iifname @bridges oifname @bridges drop
  EXPECT_THAT(rules[5].exprs,
              ElementsAre(Expr(MetaLoad{NFT_META_IIFNAME, NFT_REG_1}),
                          Expr(Lookup{NFT_REG_1, "bridges", {}, false}),
                          Expr(MetaLoad{NFT_META_OIFNAME, NFT_REG_1}),
                          Expr(Lookup{NFT_REG_1, "bridges", {}, false}), Expr(Verdict{NF_DROP})));
  for (const Rule& r : rules) EXPECT_FALSE(r.comment.empty());
}

in_addr A(const char* text) { return Addr(text); }

TEST(FullRebuildTest, PoliciesComeAfterEstablishedFlowsAndBeforeTheNetworksRules) {
  DesiredState state = sample::State();
  PolicyEntry policy;
  policy.group = "shop";
  policy.rules.push_back(PolicyRuleEntry{true,
                                         {A("10.88.1.2")},
                                         {A("10.88.1.3")},
                                         {{IPPROTO_TCP, 8080}, {IPPROTO_TCP, 8080}},
                                         {IPPROTO_ICMP},
                                         "policy shop rule 1: allow web -> app"});
  policy.rules.push_back(
      PolicyRuleEntry{false, {A("10.88.1.2")}, {A("10.88.1.4")}, {}, {}, "policy shop rule 2"});
  policy.default_deny = true;
  policy.members = {A("10.88.1.2"), A("10.88.1.3"), A("10.88.1.4"), A("10.88.1.2")};
  state.policies.push_back(policy);
  const Transaction t = FullRebuild(state);
  std::vector<Rule> rules = RulesOf(t, "forward");
  ASSERT_THAT(rules, SizeIs(10));
  EXPECT_EQ(rules[0].exprs, EstablishedAccept());
  // Rule 1: its ports and its protocols are one nft rule each, with the rule's comment.
  const std::vector<Expr> addresses = {
      Expr(MetaLoad{NFT_META_NFPROTO, NFT_REG_1}),
      Expr(Cmp{NFT_REG_1, NFT_CMP_EQ, std::string(1, NFPROTO_IPV4)}),
      Expr(PayloadLoad{NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1}),
      Expr(Lookup{NFT_REG_1, "policy/shop/0/from", {}, false}),
      Expr(PayloadLoad{NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG_1}),
      Expr(Lookup{NFT_REG_1, "policy/shop/0/to", {}, false})};
  std::vector<Expr> ports = addresses;
  ports.insert(ports.end(), {Expr(MetaLoad{NFT_META_L4PROTO, NFT_REG_1}),
                             Expr(PayloadLoad{NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_01}),
                             Expr(Lookup{NFT_REG_1, "policy/shop/0/ports", {}, false}),
                             Expr(Verdict{NF_ACCEPT})});
  EXPECT_EQ(rules[3].exprs, ports);
  EXPECT_EQ(rules[3].comment, "policy shop rule 1: allow web -> app");
  std::vector<Expr> protocols = addresses;
  protocols.insert(protocols.end(), {Expr(MetaLoad{NFT_META_L4PROTO, NFT_REG_1}),
                                     Expr(Lookup{NFT_REG_1, "policy/shop/0/protocols", {}, false}),
                                     Expr(Verdict{NF_ACCEPT})});
  EXPECT_EQ(rules[4].exprs, protocols);
  // Rule 2: anything, dropped.
  EXPECT_EQ(rules[5].exprs.back(), Expr(Verdict{NF_DROP}));
  EXPECT_EQ(rules[5].exprs.size(), 7u);
  EXPECT_EQ(rules[5].comment, "policy shop rule 2");
  // The default deny: to a member, inside one network.
  EXPECT_THAT(
      rules[6].exprs,
      ElementsAre(Expr(MetaLoad{NFT_META_NFPROTO, NFT_REG_1}),
                  Expr(Cmp{NFT_REG_1, NFT_CMP_EQ, std::string(1, NFPROTO_IPV4)}),
                  Expr(PayloadLoad{NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG_1}),
                  Expr(Lookup{NFT_REG_1, "policy/shop/members", {}, false}),
                  Expr(MetaLoad{NFT_META_IIFNAME, NFT_REG_1}),
                  Expr(MetaLoad{NFT_META_OIFNAME, NFT_REG_2}),
                  Expr(Lookup{NFT_REG_1, "same_network", {}, false}), Expr(Verdict{NF_DROP})));
  EXPECT_EQ(rules[6].comment, "policy shop: default deny inside a network");
  // Then the networks' own rules, as without a policy.
  EXPECT_EQ(rules[7].comment, "inside one network");
  EXPECT_EQ(rules[9].comment, "networks are isolated from each other");

  // The sets, each element once, before the rules that look them up.
  ASSERT_TRUE(SetOf(t, "policy/shop/0/ports").has_value());
  EXPECT_THAT(SetOf(t, "policy/shop/0/ports")->key,
              ElementsAre(DataType::kInetProto, DataType::kInetService));
  EXPECT_THAT(ElementsOf(t, "policy/shop/0/ports"), SizeIs(1));
  EXPECT_THAT(ElementsOf(t, "policy/shop/0/protocols"), SizeIs(1));
  EXPECT_THAT(ElementsOf(t, "policy/shop/members"), SizeIs(3));
  EXPECT_FALSE(SetOf(t, "policy/shop/1/ports").has_value());
  EXPECT_TRUE(t.Validate().ok()) << t.Validate();
}

TEST(FullRebuildTest, BoundPortsAreTranslatedBeforeTheGenericMap) {
  Transaction t = FullRebuild(sample::State());
  const std::vector<Expr> is_local = {Fib{NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE, NFT_REG_1},
                                      Cmp{NFT_REG_1, NFT_CMP_EQ, U32(RTN_LOCAL)}};
  for (const char* chain : {"prerouting", "output"}) {
    std::vector<Rule> rules = RulesOf(t, chain);
    ASSERT_THAT(rules, SizeIs(2)) << chain;
    // fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @published4_bound
    std::vector<Expr> bound = is_local;
    bound.insert(bound.end(),
                 {MetaLoad{NFT_META_NFPROTO, NFT_REG_1}, Cmp{NFT_REG_1, NFT_CMP_EQ, "\x02"s},
                  PayloadLoad{NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG_1},
                  MetaLoad{NFT_META_L4PROTO, NFT_REG32_01},
                  PayloadLoad{NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_02},
                  Lookup{NFT_REG_1, "published4_bound", NFT_REG_1, false},
                  Nat{NFT_NAT_DNAT, Family::kIp, NFT_REG_1, NFT_REG32_01}});
    EXPECT_EQ(rules[0].exprs, bound) << chain;
    // fib daddr type local dnat ip to meta l4proto . th dport map @published4
    std::vector<Expr> generic = is_local;
    generic.insert(generic.end(), {MetaLoad{NFT_META_L4PROTO, NFT_REG_1},
                                   PayloadLoad{NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_01},
                                   Lookup{NFT_REG_1, "published4", NFT_REG_1, false},
                                   Nat{NFT_NAT_DNAT, Family::kIp, NFT_REG_1, NFT_REG32_01}});
    EXPECT_EQ(rules[1].exprs, generic) << chain;
  }
}

TEST(FullRebuildTest, PostroutingMasqueradesOutboundAndHairpin) {
  std::vector<Rule> rules = RulesOf(FullRebuild(sample::State()), "postrouting");
  ASSERT_THAT(rules, SizeIs(2));
  const std::vector<Expr> saddr_in_nat_subnets = {
      MetaLoad{NFT_META_NFPROTO, NFT_REG_1}, Cmp{NFT_REG_1, NFT_CMP_EQ, "\x02"s},
      PayloadLoad{NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1},
      Lookup{NFT_REG_1, "nat_subnets4", {}, false}};
  // ip saddr @nat_subnets4 oifname != @bridges masquerade
  std::vector<Expr> outbound = saddr_in_nat_subnets;
  outbound.insert(outbound.end(),
                  {MetaLoad{NFT_META_OIFNAME, NFT_REG_1},
                   Lookup{NFT_REG_1, "bridges", {}, /*invert=*/true}, Masquerade{}});
  EXPECT_EQ(rules[0].exprs, outbound);
  // ct status dnat ip saddr @nat_subnets4 oifname @bridges masquerade
  std::vector<Expr> hairpin = {CtLoad{NFT_CT_STATUS, NFT_REG_1},
                               Bitwise{NFT_REG_1, NFT_REG_1, U32(IPS_DST_NAT), U32(0)},
                               Cmp{NFT_REG_1, NFT_CMP_NEQ, U32(0)}};
  hairpin.insert(hairpin.end(), saddr_in_nat_subnets.begin(), saddr_in_nat_subnets.end());
  hairpin.insert(hairpin.end(), {MetaLoad{NFT_META_OIFNAME, NFT_REG_1},
                                 Lookup{NFT_REG_1, "bridges", {}, false}, Masquerade{}});
  EXPECT_EQ(rules[1].exprs, hairpin);
}

TEST(FullRebuildTest, ElementsOfTwoNetworksAndTwoPorts) {
  Transaction t = FullRebuild(sample::State());
  EXPECT_THAT(ElementsOf(t, "bridges"),
              ElementsAre(Bridge("mbr-front", "front"), Bridge("mbr-lab", "lab")));
  EXPECT_THAT(
      ElementsOf(t, "same_network"),
      ElementsAre(
          Element{
              {Datum::Ifname("mbr-front"), Datum::Ifname("mbr-front")}, {}, false, false, "front"},
          Element{{Datum::Ifname("mbr-lab"), Datum::Ifname("mbr-lab")}, {}, false, false, "lab"}));
  EXPECT_THAT(ElementsOf(t, "internal"), ElementsAre(Bridge("mbr-lab", "lab")));
  // Only the NAT network: 10.88.0.0/24 as a start and an end element.
  EXPECT_THAT(ElementsOf(t, "nat_subnets4"),
              ElementsAre(Ipv4("10.88.0.0", false, "front"), Ipv4("10.88.1.0", true)));
  EXPECT_THAT(ElementsOf(t, "published4"),
              ElementsAre(Element{{Datum::InetProto(IPPROTO_TCP), Datum::InetService(8080)},
                                  {Datum::Ipv4Addr(Addr("10.88.0.2")), Datum::InetService(80)},
                                  false,
                                  false,
                                  "web-1/front"}));
  EXPECT_THAT(ElementsOf(t, "published4_bound"),
              ElementsAre(Element{{Datum::Ipv4Addr(Addr("203.0.113.1")),
                                   Datum::InetProto(IPPROTO_UDP), Datum::InetService(5353)},
                                  {Datum::Ipv4Addr(Addr("10.88.1.3")), Datum::InetService(53)},
                                  false,
                                  false,
                                  "dns/lab"}));
  for (const Elements& e : ObjectsOf<Elements>(t, Verb::kAdd)) {
    EXPECT_EQ(e.map, e.set == "published4" || e.set == "published4_bound") << e.set;
  }
}

TEST(FullRebuildTest, EmptyStateHasTheTableAndNoElements) {
  Transaction t = FullRebuild({});
  EXPECT_TRUE(ObjectsOf<Elements>(t, Verb::kAdd).empty());
  EXPECT_THAT(ObjectsOf<Set>(t, Verb::kAdd), SizeIs(7));
  EXPECT_THAT(ObjectsOf<Rule>(t, Verb::kAdd), SizeIs(14));
}

TEST(FullRebuildTest, RuleCountDoesNotDependOnScale) {
  Transaction one = FullRebuild(sample::Scaled(1));
  Transaction fifty = FullRebuild(sample::Scaled(50));
  EXPECT_THAT(ObjectsOf<Rule>(one, Verb::kAdd), SizeIs(14));
  EXPECT_THAT(ObjectsOf<Rule>(fifty, Verb::kAdd), SizeIs(14));
  EXPECT_EQ(ObjectsOf<Chain>(one, Verb::kAdd).size(), ObjectsOf<Chain>(fifty, Verb::kAdd).size());
  EXPECT_EQ(ObjectsOf<Set>(one, Verb::kAdd).size(), ObjectsOf<Set>(fifty, Verb::kAdd).size());
  // Only the elements grow.
  EXPECT_THAT(ElementsOf(fifty, "bridges"), SizeIs(50));
  EXPECT_THAT(ElementsOf(fifty, "nat_subnets4"), SizeIs(100));
  EXPECT_THAT(ElementsOf(fifty, "published4"), SizeIs(50));
  // The hot path is the same size whatever exists already.
  EXPECT_EQ(AddNetwork(sample::Front()).size(), 3u);
  EXPECT_EQ(AddPort(sample::WebPort()).size(), 1u);
}

// ---- Hot path ----

TEST(HotPathTest, AddNetworkOnlyAddsElements) {
  Transaction nat = AddNetwork(sample::Front());
  for (const Command& c : nat.commands()) {
    EXPECT_EQ(c.verb, Verb::kAdd);
    EXPECT_TRUE(std::holds_alternative<Elements>(c.object)) << c.ToString();
  }
  EXPECT_THAT(ElementsOf(nat, "bridges"), ElementsAre(Bridge("mbr-front", "front")));
  EXPECT_THAT(ElementsOf(nat, "same_network"), SizeIs(1));
  EXPECT_THAT(ElementsOf(nat, "internal"), SizeIs(0));
  EXPECT_THAT(ElementsOf(nat, "nat_subnets4"),
              ElementsAre(Ipv4("10.88.0.0", false, "front"), Ipv4("10.88.1.0", true)));

  Transaction internal = AddNetwork(sample::Lab());
  EXPECT_THAT(ElementsOf(internal, "internal"), ElementsAre(Bridge("mbr-lab", "lab")));
  EXPECT_THAT(ElementsOf(internal, "nat_subnets4"), SizeIs(0));
  EXPECT_EQ(internal.size(), 3u);  // bridges, same_network, internal
}

TEST(HotPathTest, RemoveEnsuresThenDeletesEachGroup) {
  for (const Transaction& t : {RemoveNetwork(sample::Front()), RemoveNetwork(sample::Lab()),
                               RemovePort(sample::WebPort()), RemovePort(sample::DnsPort())}) {
    ASSERT_EQ(t.size() % 2, 0u);
    for (size_t i = 0; i < t.size(); i += 2) {
      EXPECT_EQ(t.commands()[i].verb, Verb::kEnsure);
      EXPECT_EQ(t.commands()[i + 1].verb, Verb::kDelete);
      const auto& ensured = std::get<Elements>(t.commands()[i].object);
      const auto& deleted = std::get<Elements>(t.commands()[i + 1].object);
      EXPECT_EQ(ensured.set, deleted.set);
      EXPECT_EQ(ensured.elements, deleted.elements);
    }
  }
  EXPECT_EQ(RemoveNetwork(sample::Front()).size(), 6u);
}

TEST(HotPathTest, PortGoesToTheMapOfItsBinding) {
  EXPECT_THAT(ElementsOf(AddPort(sample::WebPort()), "published4"), SizeIs(1));
  EXPECT_THAT(ElementsOf(AddPort(sample::DnsPort()), "published4_bound"), SizeIs(1));
  EXPECT_THAT(ElementsOf(RemovePort(sample::DnsPort()), "published4_bound", Verb::kDelete),
              SizeIs(1));
}

TEST(HotPathTest, DeleteTableIsIdempotent) {
  Transaction t = DeleteTable();
  ASSERT_EQ(t.size(), 4u);
  for (size_t i = 0; i < 4; i += 2) {
    EXPECT_EQ(t.commands()[i].verb, Verb::kEnsure);
    EXPECT_EQ(t.commands()[i + 1].verb, Verb::kDelete);
    EXPECT_EQ(std::get<Table>(t.commands()[i + 1].object).name, "mesh");
  }
  EXPECT_EQ(std::get<Table>(t.commands()[1].object).family, Family::kInet);
  EXPECT_EQ(std::get<Table>(t.commands()[3].object).family, Family::kBridge);
}

TEST(HotPathTest, RetireAddsAndReleaseEnsuresThenDeletes) {
  Transaction retire = RetirePorts({"mv-aaaa"});
  ASSERT_EQ(retire.size(), 1u);
  EXPECT_EQ(retire.commands()[0].verb, Verb::kAdd);
  const auto& added = std::get<Elements>(retire.commands()[0].object);
  EXPECT_EQ(added.family, Family::kBridge);
  EXPECT_EQ(added.set, "retired");
  EXPECT_THAT(added.elements, ElementsAre(Bridge("mv-aaaa", "")));
  Transaction release = ReleasePorts({"mv-aaaa", "mv-bbbb"});
  ASSERT_EQ(release.size(), 2u);
  EXPECT_EQ(release.commands()[0].verb, Verb::kEnsure);
  EXPECT_EQ(release.commands()[1].verb, Verb::kDelete);
  EXPECT_THAT(std::get<Elements>(release.commands()[1].object).elements, SizeIs(2));
  EXPECT_EQ(RetirePorts({}).size(), 0u);
  EXPECT_EQ(ReleasePorts({}).size(), 0u);
}

// ---- Subnets as intervals ----

std::vector<Element> Subnet(const char* address, int prefix_length) {
  NetworkEntry n{"n", "mbr-n", Addr(address), prefix_length, true, false};
  return ElementsOf(AddNetwork(n), "nat_subnets4");
}

TEST(IntervalTest, HostBitsAreIgnored) {
  EXPECT_THAT(Subnet("10.88.0.77", 24),
              ElementsAre(Ipv4("10.88.0.0", false, "n"), Ipv4("10.88.1.0", true)));
  EXPECT_THAT(Subnet("172.16.5.5", 12),
              ElementsAre(Ipv4("172.16.0.0", false, "n"), Ipv4("172.32.0.0", true)));
  EXPECT_THAT(Subnet("10.0.0.9", 32),
              ElementsAre(Ipv4("10.0.0.9", false, "n"), Ipv4("10.0.0.10", true)));
}

TEST(IntervalTest, RangeReachingTheTopIsOpen) {
  // 255.255.255.255 + 1 would wrap: no end element, the start is flagged open (as nft does).
  std::vector<Element> top = Subnet("255.255.255.0", 24);
  ASSERT_THAT(top, SizeIs(1));
  EXPECT_EQ(top[0].key[0], Datum::Ipv4Addr(Addr("255.255.255.0")));
  EXPECT_TRUE(top[0].interval_open);
  std::vector<Element> all = Subnet("1.2.3.4", 0);
  ASSERT_THAT(all, SizeIs(1));
  EXPECT_EQ(all[0].key[0], Datum::Ipv4Addr(Addr("0.0.0.0")));
  EXPECT_TRUE(all[0].interval_open);
}

TEST(CommentTest, OwnerIsTruncatedToTheCommentLimit) {
  PortEntry p = sample::WebPort();
  p.owner = std::string(200, 'o');
  std::vector<Element> e = ElementsOf(AddPort(p), "published4");
  ASSERT_THAT(e, SizeIs(1));
  EXPECT_EQ(e[0].comment.size(), kMaxCommentLength);
  EXPECT_TRUE(AddPort(p).Validate().ok());
}

}  // namespace
}  // namespace mesh::netplane::nft
