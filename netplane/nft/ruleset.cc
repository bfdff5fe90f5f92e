#include "netplane/nft/ruleset.h"

#include <arpa/inet.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/rtnetlink.h>

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace mesh::netplane::nft {
namespace {

// The kernel's 4-byte registers, numbered as nft prints them: NFT_REG32_01 is "reg 9".
constexpr uint32_t kReg32_01 = NFT_REG32_01;
constexpr uint32_t kReg32_02 = NFT_REG32_02;

std::string U32(uint32_t host_order) {
  return std::string(reinterpret_cast<const char*>(&host_order), sizeof(host_order));
}
std::string U8(uint8_t value) { return std::string(1, static_cast<char>(value)); }

std::string Truncate(absl::string_view s) { return std::string(s.substr(0, kMaxCommentLength)); }

// ---- Expression sequences, exactly as nft 1.0.6 generates them (`nft --debug=netlink`). ----

// `ct <key> <bits>`: load, mask, test for any bit set.
std::vector<Expr> CtHasBits(uint32_t key, uint32_t bits) {
  return {CtLoad{key, NFT_REG_1}, Bitwise{NFT_REG_1, NFT_REG_1, U32(bits), U32(0)},
          Cmp{NFT_REG_1, NFT_CMP_NEQ, U32(0)}};
}

// The dependency nft adds before an IPv4 match (`ip saddr`, `ip daddr`) in an inet table:
// `meta nfproto ipv4`, a 1-byte compare.
std::vector<Expr> IsIpv4() {
  return {MetaLoad{NFT_META_NFPROTO, NFT_REG_1}, Cmp{NFT_REG_1, NFT_CMP_EQ, U8(NFPROTO_IPV4)}};
}

// `fib daddr type local`.
std::vector<Expr> DaddrIsLocal() {
  return {Fib{NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE, NFT_REG_1},
          Cmp{NFT_REG_1, NFT_CMP_EQ, U32(RTN_LOCAL)}};
}

// `fib daddr . iif type != local`: the destination is not an address of the link the packet
// came in on (the lookup with NFTA_FIB_F_IIF answers RTN_LOCAL only for that link's own).
std::vector<Expr> DaddrIsNotOnTheInputLink() {
  return {Fib{NFTA_FIB_F_DADDR | NFTA_FIB_F_IIF, NFT_FIB_RESULT_ADDRTYPE, NFT_REG_1},
          Cmp{NFT_REG_1, NFT_CMP_NEQ, U32(RTN_LOCAL)}};
}

// `ip saddr @set`: 4 bytes at offset 12 of the IPv4 header.
std::vector<Expr> SaddrIn(absl::string_view set) {
  return {PayloadLoad{NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1},
          Lookup{NFT_REG_1, std::string(set), std::nullopt, false}};
}

// `ip daddr @set`: 4 bytes at offset 16.
std::vector<Expr> DaddrIn(absl::string_view set) {
  return {PayloadLoad{NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG_1},
          Lookup{NFT_REG_1, std::string(set), std::nullopt, false}};
}

// `meta l4proto . th dport @set`.
std::vector<Expr> ProtoPortIn(absl::string_view set) {
  return {MetaLoad{NFT_META_L4PROTO, NFT_REG_1},
          PayloadLoad{NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, kReg32_01},
          Lookup{NFT_REG_1, std::string(set), std::nullopt, false}};
}

// `meta l4proto @set`.
std::vector<Expr> ProtoIn(absl::string_view set) {
  return {MetaLoad{NFT_META_L4PROTO, NFT_REG_1},
          Lookup{NFT_REG_1, std::string(set), std::nullopt, false}};
}

// `iifname . oifname @same_network`: in and out of one mesh bridge (`!=`: not).
std::vector<Expr> InsideOneNetwork(bool invert = false) {
  return {MetaLoad{NFT_META_IIFNAME, NFT_REG_1}, MetaLoad{NFT_META_OIFNAME, NFT_REG_2},
          Lookup{NFT_REG_1, kSameNetworkSet, std::nullopt, invert}};
}

std::vector<Expr> IfnameIn(uint32_t meta_key, absl::string_view set, bool invert = false) {
  return {MetaLoad{meta_key, NFT_REG_1}, Lookup{NFT_REG_1, std::string(set), std::nullopt, invert}};
}

// `dnat ip to meta l4proto . th dport map @published4`: the key (proto . port) goes to
// reg 1 (padded to 4 bytes) and reg 9; the map writes address . port to reg 1 and reg 9.
// nft adds no `meta nfproto ipv4` here: in an inet table the nat expression with family ip
// does nothing to IPv6 packets (nft_nat_inet_eval).
std::vector<Expr> DnatByProtoPort(absl::string_view map) {
  return {MetaLoad{NFT_META_L4PROTO, NFT_REG_1},
          PayloadLoad{NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, kReg32_01},
          Lookup{NFT_REG_1, std::string(map), NFT_REG_1, false},
          Nat{NFT_NAT_DNAT, Family::kIp, NFT_REG_1, kReg32_01}};
}

// `dnat ip to ip daddr . meta l4proto . th dport map @published4_bound`: `ip daddr` brings
// the nfproto dependency.
std::vector<Expr> DnatByAddrProtoPort(absl::string_view map) {
  std::vector<Expr> out = IsIpv4();
  out.insert(out.end(), {PayloadLoad{NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG_1},
                         MetaLoad{NFT_META_L4PROTO, kReg32_01},
                         PayloadLoad{NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, kReg32_02},
                         Lookup{NFT_REG_1, std::string(map), NFT_REG_1, false},
                         Nat{NFT_NAT_DNAT, Family::kIp, NFT_REG_1, kReg32_01}});
  return out;
}

class RuleList {
 public:
  explicit RuleList(Transaction& txn) : txn_(txn) {}
  // Appends a rule made of the concatenated expression sequences.
  void Add(absl::string_view chain, std::initializer_list<std::vector<Expr>> parts,
           absl::string_view comment) {
    Rule rule{kFamily, kTableName, std::string(chain), {}, std::string(comment), 0};
    for (const std::vector<Expr>& part : parts) {
      rule.exprs.insert(rule.exprs.end(), part.begin(), part.end());
    }
    txn_.Add(std::move(rule));
  }

 private:
  Transaction& txn_;
};

std::vector<Expr> Accept() { return {Verdict{NF_ACCEPT}}; }
std::vector<Expr> Drop() { return {Verdict{NF_DROP}}; }
std::vector<Expr> Masq() { return {Masquerade{}}; }

// `ip saddr . ip daddr . meta l4proto @trace4 meta nftrace set 1`.
std::vector<Expr> TraceProbes() {
  std::vector<Expr> out = IsIpv4();
  out.insert(out.end(), {PayloadLoad{NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1},
                         PayloadLoad{NFT_PAYLOAD_NETWORK_HEADER, 16, 4, kReg32_01},
                         MetaLoad{NFT_META_L4PROTO, kReg32_02},
                         Lookup{NFT_REG_1, kTraceSet, std::nullopt, false},
                         Immediate{NFT_REG_1, U8(1)}, MetaSet{NFT_META_NFTRACE, NFT_REG_1}});
  return out;
}

void AddChains(Transaction& txn, const std::vector<PolicyEntry>& policies) {
  auto chain = [&](absl::string_view name, ChainType type, Hook hook, int32_t priority,
                   absl::string_view comment) {
    txn.Add(Chain{kFamily, kTableName, std::string(name),
                  BaseChain{type, hook, priority, Policy::kAccept}, std::string(comment)});
  };
  chain(kForwardChain, ChainType::kFilter, Hook::kForward, kForwardPriority,
        "isolation between mesh networks");
  chain(kInputChain, ChainType::kFilter, Hook::kInput, kForwardPriority,
        "internal networks reach only their gateway");
  chain(kPreroutingChain, ChainType::kNat, Hook::kPrerouting, kDstNatPriority,
        "published ports, from outside and from containers");
  chain(kOutputChain, ChainType::kNat, Hook::kOutput, kDstNatPriority,
        "published ports, from the host itself");
  chain(kPostroutingChain, ChainType::kNat, Hook::kPostrouting, kSrcNatPriority,
        "outbound NAT and hairpin");
  chain(kTraceChain, ChainType::kFilter, Hook::kPrerouting, kTracePriority,
        "nftrace on the probes of meshctl check");

  RuleList rules(txn);
  // First the flows already allowed: replies, and what a policy let begin (a policy change
  // never cuts them). A flow the rules below refuse never gets here: its first packet is
  // dropped, so it never becomes established.
  rules.Add(
      kForwardChain,
      {CtHasBits(NFT_CT_STATE, NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED)),
       Accept()},
      "replies and related traffic");
  // Before the accepts of policies and DNAT (NOTES.md's reference has them after): a container
  // of an internal network must not reach a port published by another network's container
  // through a host address, nor be reached through a port published on its own network, and
  // no policy opens one. Inside the network itself, traffic goes on to the rules below.
  rules.Add(kForwardChain,
            {IfnameIn(NFT_META_IIFNAME, kInternalSet), InsideOneNetwork(/*invert=*/true), Drop()},
            "internal networks have no way out");
  rules.Add(kForwardChain,
            {IfnameIn(NFT_META_OIFNAME, kInternalSet), InsideOneNetwork(/*invert=*/true), Drop()},
            "internal networks have no way in");
  // Policies: each rule in order, then a group's default deny.
  for (const PolicyEntry& policy : policies) {
    for (size_t i = 0; i < policy.rules.size(); ++i) {
      const PolicyRuleEntry& r = policy.rules[i];
      const int index = static_cast<int>(i);
      const std::vector<Expr> addresses = [&] {
        std::vector<Expr> out = IsIpv4();
        for (const std::vector<Expr>& part : {SaddrIn(PolicySetName(policy.group, index, "from")),
                                              DaddrIn(PolicySetName(policy.group, index, "to"))}) {
          out.insert(out.end(), part.begin(), part.end());
        }
        return out;
      }();
      const std::vector<Expr> verdict = r.allow ? Accept() : Drop();
      if (r.ports.empty() && r.protocols.empty()) {
        rules.Add(kForwardChain, {addresses, verdict}, r.comment);
      }
      if (!r.ports.empty()) {
        rules.Add(kForwardChain,
                  {addresses, ProtoPortIn(PolicySetName(policy.group, index, "ports")), verdict},
                  r.comment);
      }
      if (!r.protocols.empty()) {
        rules.Add(kForwardChain,
                  {addresses, ProtoIn(PolicySetName(policy.group, index, "protocols")), verdict},
                  r.comment);
      }
    }
    if (policy.default_deny) {
      rules.Add(kForwardChain,
                {IsIpv4(), DaddrIn(PolicySetName(policy.group, -1, "members")), InsideOneNetwork(),
                 Drop()},
                Truncate(absl::StrCat("policy ", policy.group, ": default deny inside a network")));
    }
  }
  // nft cannot compare two packet fields with each other (`iifname != oifname`); a
  // concatenated set of "br" . "br" says "in and out of the same mesh bridge". With
  // br_netfilter, frames bridged between two ports of one bridge pass here too.
  rules.Add(kForwardChain, {InsideOneNetwork(), Accept()}, "inside one network");
  rules.Add(kForwardChain, {CtHasBits(NFT_CT_STATUS, IPS_DST_NAT), Accept()},
            "published ports, hairpin included");
  rules.Add(
      kForwardChain,
      {IfnameIn(NFT_META_IIFNAME, kBridgesSet), IfnameIn(NFT_META_OIFNAME, kBridgesSet), Drop()},
      "networks are isolated from each other");

  // The host's own services: an internal network's containers reach the gateway address on
  // their bridge (and replies to the host's connections, which come to it), nothing else.
  rules.Add(kInputChain,
            {IfnameIn(NFT_META_IIFNAME, kInternalSet), DaddrIsNotOnTheInputLink(), Drop()},
            "internal networks reach only their gateway");

  // Ports bound to one host address first: a miss in a map lookup ends the rule (NFT_BREAK),
  // and the generic map gets its turn.
  for (absl::string_view chain_name : {kPreroutingChain, kOutputChain}) {
    rules.Add(chain_name, {DaddrIsLocal(), DnatByAddrProtoPort(kPublishedBoundMap)},
              "ports published on one host address");
    rules.Add(chain_name, {DaddrIsLocal(), DnatByProtoPort(kPublishedMap)},
              "ports published on every host address");
  }

  rules.Add(kPostroutingChain,
            {IsIpv4(), SaddrIn(kNatSubnetsSet),
             IfnameIn(NFT_META_OIFNAME, kBridgesSet, /*invert=*/true), Masq()},
            "outbound NAT");
  // A container reaching a published port of its own network through a host address: without
  // masquerade the reply would go straight back over the bridge with the wrong source.
  rules.Add(kPostroutingChain,
            {CtHasBits(NFT_CT_STATUS, IPS_DST_NAT), IsIpv4(), SaddrIn(kNatSubnetsSet),
             IfnameIn(NFT_META_OIFNAME, kBridgesSet), Masq()},
            "hairpin to published ports");

  rules.Add(kTraceChain, {TraceProbes()}, "probes of meshctl check");
}

void AddSets(Transaction& txn) {
  auto set = [&](absl::string_view name, std::vector<DataType> key, std::vector<DataType> data,
                 bool interval, absl::string_view comment) {
    txn.Add(Set{kFamily, kTableName, std::string(name), std::move(key), std::move(data), interval,
                std::string(comment)});
  };
  using T = DataType;
  set(kBridgesSet, {T::kIfname}, {}, false, "bridges of all mesh networks");
  set(kSameNetworkSet, {T::kIfname, T::kIfname}, {}, false, "bridge . bridge of every network");
  set(kInternalSet, {T::kIfname}, {}, false, "bridges of internal networks");
  set(kNatSubnetsSet, {T::kIpv4Addr}, {}, true, "subnets masqueraded to the outside");
  set(kPublishedMap, {T::kInetProto, T::kInetService}, {T::kIpv4Addr, T::kInetService}, false,
      "published ports");
  set(kPublishedBoundMap, {T::kIpv4Addr, T::kInetProto, T::kInetService},
      {T::kIpv4Addr, T::kInetService}, false, "ports published on one host address");
  set(kTraceSet, {T::kIpv4Addr, T::kIpv4Addr, T::kInetProto}, {}, false,
      "probes of meshctl check: source . destination . protocol");
}

// `table bridge mesh`: frames from and to a retired host end go nowhere.
void AddBridgeTable(Transaction& txn) {
  txn.Add(Table{kBridgeFamily, kTableName,
                "mesh: detached containers cut off until their veth pair is deleted"});
  txn.Add(Set{kBridgeFamily,
              kTableName,
              kRetiredSet,
              {DataType::kIfname},
              {},
              false,
              "host ends of detached veth pairs"});
  struct HookRule {
    const char* chain;
    Hook hook;
    uint32_t meta;
    const char* comment;
  };
  for (const HookRule& h : {HookRule{kPreroutingChain, Hook::kPrerouting, NFT_META_IIFNAME,
                                     "nothing from a detached container"},
                            HookRule{kForwardChain, Hook::kForward, NFT_META_OIFNAME,
                                     "nothing bridged to a detached container"},
                            HookRule{kOutputChain, Hook::kOutput, NFT_META_OIFNAME,
                                     "nothing from the host to a detached container"}}) {
    txn.Add(Chain{kBridgeFamily, kTableName, h.chain,
                  BaseChain{ChainType::kFilter, h.hook, kBridgeFilterPriority, Policy::kAccept},
                  "detached containers"});
    Rule rule{kBridgeFamily, kTableName, h.chain, IfnameIn(h.meta, kRetiredSet), h.comment, 0};
    rule.exprs.push_back(Verdict{NF_DROP});
    txn.Add(std::move(rule));
  }
}

Elements RetiredElements(const std::vector<std::string>& host_ends) {
  Elements out{kBridgeFamily, kTableName, kRetiredSet, false, {}};
  for (const std::string& name : host_ends) {
    out.elements.push_back(Element{{Datum::Ifname(name)}, {}, false, false, ""});
  }
  return out;
}

// Elements of one network, grouped by set.
struct NetworkElements {
  std::vector<Element> bridges, same_network, internal, nat_subnets;
};

// A prefix as the two elements of an rbtree interval set: its first address, and the first
// address after it flagged as an interval end. A range reaching 255.255.255.255 has no end
// (its successor would wrap to 0.0.0.0): nft marks such a start "open" instead.
//
// nft also adds an interval-end element at 0.0.0.0 whenever it writes an interval set, from
// how its segment tree encodes the gap below the first range. The kernel does not need it (a
// lookup below every start finds no range either way), and mesh adds and removes ranges one at
// a time, so it never writes it.
std::vector<Element> PrefixElements(in_addr subnet, int prefix_length, const std::string& name) {
  if (prefix_length < 0) prefix_length = 0;
  if (prefix_length > 32) prefix_length = 32;
  const uint32_t mask = prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - prefix_length);
  const uint32_t first = ntohl(subnet.s_addr) & mask;
  const uint64_t end = uint64_t{first} + (uint64_t{1} << (32 - prefix_length));
  Element start{{Datum::Ipv4Addr(in_addr{htonl(first)})}, {}, false, false, Truncate(name)};
  if (end > 0xffffffffULL) {
    start.interval_open = true;
    return {start};
  }
  Element stop{{Datum::Ipv4Addr(in_addr{htonl(static_cast<uint32_t>(end))})}, {}, true, false, ""};
  return {start, stop};
}

NetworkElements ElementsOf(const NetworkEntry& n) {
  NetworkElements out;
  const std::string comment = Truncate(n.name);
  out.bridges.push_back(Element{{Datum::Ifname(n.bridge)}, {}, false, false, comment});
  out.same_network.push_back(
      Element{{Datum::Ifname(n.bridge), Datum::Ifname(n.bridge)}, {}, false, false, comment});
  if (n.internal) {
    out.internal.push_back(Element{{Datum::Ifname(n.bridge)}, {}, false, false, comment});
  }
  if (n.nat) out.nat_subnets = PrefixElements(n.subnet, n.prefix_length, n.name);
  return out;
}

// The map a port's element belongs in.
const char* MapOf(const PortEntry& p) {
  return p.host_address ? kPublishedBoundMap : kPublishedMap;
}

Element ElementOf(const PortEntry& p) {
  Element e;
  if (p.host_address) e.key.push_back(Datum::Ipv4Addr(*p.host_address));
  e.key.push_back(Datum::InetProto(static_cast<uint8_t>(p.proto)));
  e.key.push_back(Datum::InetService(p.host_port));
  e.data = {Datum::Ipv4Addr(p.container_address), Datum::InetService(p.container_port)};
  e.comment = Truncate(p.owner);
  return e;
}

Elements ElementsFor(absl::string_view set, bool map, std::vector<Element> elements) {
  return Elements{kFamily, kTableName, std::string(set), map, std::move(elements)};
}

// Adds each non-empty group, or (remove) ensures and then deletes it: deleting an absent
// element fails with ENOENT, which would abort the whole transaction.
void ApplyElements(Transaction& txn, const std::vector<Elements>& groups, bool remove) {
  for (const Elements& g : groups) {
    if (g.elements.empty()) continue;
    if (!remove) {
      txn.Add(g);
      continue;
    }
    txn.Ensure(g);
    txn.Delete(g);
  }
}

std::vector<Elements> Group(const NetworkElements& e) {
  return {ElementsFor(kBridgesSet, false, e.bridges),
          ElementsFor(kSameNetworkSet, false, e.same_network),
          ElementsFor(kInternalSet, false, e.internal),
          ElementsFor(kNatSubnetsSet, false, e.nat_subnets)};
}

std::vector<Elements> Group(const PortEntry& port) {
  return {ElementsFor(MapOf(port), true, {ElementOf(port)})};
}

Elements TraceElements(const std::vector<TraceEntry>& traces) {
  Elements out = ElementsFor(kTraceSet, false, {});
  for (const TraceEntry& t : traces) {
    out.elements.push_back(Element{
        {Datum::Ipv4Addr(t.source), Datum::Ipv4Addr(t.destination), Datum::InetProto(t.proto)},
        {},
        false,
        false,
        ""});
  }
  return out;
}

void MoveInto(std::vector<Element>& to, std::vector<Element>& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

}  // namespace

std::string TraceEntry::ToString() const {
  return absl::StrCat(Datum::Ipv4Addr(source).ToString(), " . ",
                      Datum::Ipv4Addr(destination).ToString(), " . ",
                      Datum::InetProto(proto).ToString());
}

std::string PolicySetName(absl::string_view group, int rule, absl::string_view what) {
  if (rule < 0) return absl::StrCat("policy/", group, "/", what);
  return absl::StrCat("policy/", group, "/", rule, "/", what);
}

namespace {

// Each policy's sets, then their elements.
void AddPolicySets(Transaction& txn, const std::vector<PolicyEntry>& policies) {
  using T = DataType;
  auto set = [&](const std::string& name, std::vector<DataType> key, absl::string_view comment) {
    txn.Add(Set{kFamily, kTableName, name, std::move(key), {}, false, Truncate(comment)});
  };
  for (const PolicyEntry& p : policies) {
    for (size_t i = 0; i < p.rules.size(); ++i) {
      const int index = static_cast<int>(i);
      const PolicyRuleEntry& r = p.rules[i];
      set(PolicySetName(p.group, index, "from"), {T::kIpv4Addr}, r.comment);
      set(PolicySetName(p.group, index, "to"), {T::kIpv4Addr}, r.comment);
      if (!r.ports.empty()) {
        set(PolicySetName(p.group, index, "ports"), {T::kInetProto, T::kInetService}, r.comment);
      }
      if (!r.protocols.empty()) {
        set(PolicySetName(p.group, index, "protocols"), {T::kInetProto}, r.comment);
      }
    }
    if (p.default_deny) {
      set(PolicySetName(p.group, -1, "members"), {T::kIpv4Addr},
          absl::StrCat("members of group ", p.group));
    }
  }
}

std::vector<Elements> PolicyElements(const std::vector<PolicyEntry>& policies) {
  std::vector<Elements> out;
  auto addresses = [&](const std::string& set, const std::vector<in_addr>& list) {
    std::vector<Element> elements;
    std::set<uint32_t> seen;  // a set holds each address once
    for (const in_addr& a : list) {
      if (!seen.insert(a.s_addr).second) continue;
      elements.push_back(Element{{Datum::Ipv4Addr(a)}, {}, false, false, ""});
    }
    out.push_back(ElementsFor(set, false, std::move(elements)));
  };
  for (const PolicyEntry& p : policies) {
    for (size_t i = 0; i < p.rules.size(); ++i) {
      const int index = static_cast<int>(i);
      const PolicyRuleEntry& r = p.rules[i];
      addresses(PolicySetName(p.group, index, "from"), r.from);
      addresses(PolicySetName(p.group, index, "to"), r.to);
      std::vector<Element> ports, protocols;
      std::set<std::pair<uint8_t, uint16_t>> seen_ports;
      for (const auto& [proto, port] : r.ports) {
        if (!seen_ports.insert({proto, port}).second) continue;
        ports.push_back(
            Element{{Datum::InetProto(proto), Datum::InetService(port)}, {}, false, false, ""});
      }
      std::set<uint8_t> seen_protocols;
      for (uint8_t proto : r.protocols) {
        if (!seen_protocols.insert(proto).second) continue;
        protocols.push_back(Element{{Datum::InetProto(proto)}, {}, false, false, ""});
      }
      out.push_back(ElementsFor(PolicySetName(p.group, index, "ports"), false, std::move(ports)));
      out.push_back(
          ElementsFor(PolicySetName(p.group, index, "protocols"), false, std::move(protocols)));
    }
    if (p.default_deny) addresses(PolicySetName(p.group, -1, "members"), p.members);
  }
  return out;
}

}  // namespace

Transaction FullRebuild(const DesiredState& state) {
  Transaction txn;
  // Adding a table first makes the delete succeed whether or not it existed; the kernel
  // deletes a table with all its chains, rules and sets.
  txn.Ensure(Table{kFamily, kTableName, ""});
  txn.Delete(Table{kFamily, kTableName, ""});
  txn.Add(Table{kFamily, kTableName, "mesh container networks: managed by meshd, do not edit"});
  AddSets(txn);  // before the rules that look them up
  AddPolicySets(txn, state.policies);
  AddChains(txn, state.policies);

  NetworkElements all;
  for (const NetworkEntry& n : state.networks) {
    NetworkElements e = ElementsOf(n);
    MoveInto(all.bridges, e.bridges);
    MoveInto(all.same_network, e.same_network);
    MoveInto(all.internal, e.internal);
    MoveInto(all.nat_subnets, e.nat_subnets);
  }
  std::vector<Element> published, bound;
  for (const PortEntry& p : state.ports)
    (p.host_address ? bound : published).push_back(ElementOf(p));
  std::vector<Elements> groups = Group(all);
  groups.push_back(ElementsFor(kPublishedMap, true, std::move(published)));
  groups.push_back(ElementsFor(kPublishedBoundMap, true, std::move(bound)));
  for (Elements& e : PolicyElements(state.policies)) groups.push_back(std::move(e));
  groups.push_back(TraceElements(state.traces));
  ApplyElements(txn, groups, /*remove=*/false);

  txn.Ensure(Table{kBridgeFamily, kTableName, ""});
  txn.Delete(Table{kBridgeFamily, kTableName, ""});
  AddBridgeTable(txn);
  ApplyElements(txn, {RetiredElements(state.retired_ports)}, /*remove=*/false);
  return txn;
}

Transaction DeleteTable() {
  Transaction txn;
  for (Family family : {kFamily, kBridgeFamily}) {
    txn.Ensure(Table{family, kTableName, ""});
    txn.Delete(Table{family, kTableName, ""});
  }
  return txn;
}

Transaction AddNetwork(const NetworkEntry& network) {
  Transaction txn;
  ApplyElements(txn, Group(ElementsOf(network)), /*remove=*/false);
  return txn;
}

Transaction RemoveNetwork(const NetworkEntry& network) {
  Transaction txn;
  ApplyElements(txn, Group(ElementsOf(network)), /*remove=*/true);
  return txn;
}

Transaction AddPort(const PortEntry& port) {
  Transaction txn;
  ApplyElements(txn, Group(port), /*remove=*/false);
  return txn;
}

Transaction RemovePort(const PortEntry& port) {
  Transaction txn;
  ApplyElements(txn, Group(port), /*remove=*/true);
  return txn;
}

Transaction RetirePorts(const std::vector<std::string>& host_ends) {
  Transaction txn;
  ApplyElements(txn, {RetiredElements(host_ends)}, /*remove=*/false);
  return txn;
}

Transaction ReleasePorts(const std::vector<std::string>& host_ends) {
  Transaction txn;
  ApplyElements(txn, {RetiredElements(host_ends)}, /*remove=*/true);
  return txn;
}

}  // namespace mesh::netplane::nft

namespace mesh::netplane::nft {

Transaction AddTrace(const TraceEntry& trace) {
  Transaction txn;
  ApplyElements(txn, {TraceElements({trace})}, /*remove=*/false);
  return txn;
}

Transaction RemoveTrace(const TraceEntry& trace) {
  Transaction txn;
  ApplyElements(txn, {TraceElements({trace})}, /*remove=*/true);
  return txn;
}

}  // namespace mesh::netplane::nft
