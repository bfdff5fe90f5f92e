// Serialization: the batch is parsed back with libmnl and libnftnl (no kernel needed) and
// compared with what nft 1.0.6 sends for NOTES.md's reference ruleset.
#include "netplane/nft/batch.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <linux/netfilter/nfnetlink.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "netplane/nft/nftnl_ptr.h"
#include "netplane/nft/ruleset.h"
#include "tests/unit/netplane/nft/sample_state.h"

namespace mesh::netplane::nft {
namespace {

using sample::Addr;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

struct Message {
  uint16_t type = 0;  // nlmsg_type
  uint16_t flags = 0;
  uint32_t seq = 0;
  uint8_t family = 0;
  uint16_t res_id = 0;
  const nlmsghdr* nlh = nullptr;
};

std::vector<Message> Parse(const std::string& bytes) {
  std::vector<Message> out;
  int len = static_cast<int>(bytes.size());
  for (auto* nlh = reinterpret_cast<const nlmsghdr*>(bytes.data()); mnl_nlmsg_ok(nlh, len);
       nlh = mnl_nlmsg_next(nlh, &len)) {
    const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
    out.push_back(Message{nlh->nlmsg_type, nlh->nlmsg_flags, nlh->nlmsg_seq, nfg->nfgen_family,
                          ntohs(nfg->res_id), nlh});
  }
  EXPECT_EQ(len, 0) << "trailing bytes";
  return out;
}

constexpr uint16_t Nft(uint16_t msg) { return (NFNL_SUBSYS_NFTABLES << 8) | msg; }

// The comment in a libnftnl object's user data.
std::string UdataComment(const void* data, uint32_t len, uint8_t type) {
  std::string out;
  const auto* begin = static_cast<const char*>(data);
  const char* p = begin;
  while (p + 2 <= begin + len) {
    const auto t = static_cast<uint8_t>(p[0]);
    const auto l = static_cast<uint8_t>(p[1]);
    if (t == type) out.assign(p + 2, l > 0 ? l - 1 : 0);  // strz
    p += 2 + l;
  }
  return out;
}

std::map<uint8_t, uint32_t> UdataU32s(const void* data, uint32_t len) {
  std::map<uint8_t, uint32_t> out;
  const auto* begin = static_cast<const char*>(data);
  for (const char* p = begin; p + 2 <= begin + len; p += 2 + static_cast<uint8_t>(p[1])) {
    if (static_cast<uint8_t>(p[1]) == 4) {
      uint32_t v = 0;
      std::memcpy(&v, p + 2, 4);
      out[static_cast<uint8_t>(p[0])] = v;
    }
  }
  return out;
}

TEST(BatchTest, FramingTypesFlagsAndSequenceNumbers) {
  Transaction t = FullRebuild(sample::State());
  absl::StatusOr<Batch> batch = BuildBatch(t, 1000);
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::vector<Message> m = Parse(batch->bytes);
  ASSERT_EQ(m.size(), batch->messages.size() + 2);

  EXPECT_EQ(m.front().type, NFNL_MSG_BATCH_BEGIN);
  EXPECT_EQ(m.front().res_id, NFNL_SUBSYS_NFTABLES);
  EXPECT_EQ(m.front().seq, 1000u);
  EXPECT_EQ(m.back().type, NFNL_MSG_BATCH_END);
  EXPECT_EQ(m.back().res_id, NFNL_SUBSYS_NFTABLES);
  EXPECT_EQ(m.back().seq, batch->last_seq());

  std::vector<uint16_t> types;
  for (size_t i = 1; i + 1 < m.size(); ++i) {
    types.push_back(m[i].type);
    EXPECT_EQ(m[i].seq, 1000 + i) << i;
    // `inet mesh` first (36 commands), then `bridge mesh`.
    EXPECT_EQ(m[i].family, i <= 36 ? NFPROTO_INET : NFPROTO_BRIDGE) << i;
    // Every command is answered, so errors can be matched to it.
    EXPECT_TRUE(m[i].flags & NLM_F_ACK) << i;
    EXPECT_TRUE(m[i].flags & NLM_F_REQUEST) << i;
  }
  std::vector<uint16_t> want = {Nft(NFT_MSG_NEWTABLE), Nft(NFT_MSG_DELTABLE),
                                Nft(NFT_MSG_NEWTABLE)};
  want.insert(want.end(), 7, Nft(NFT_MSG_NEWSET));
  want.insert(want.end(), 6, Nft(NFT_MSG_NEWCHAIN));
  want.insert(want.end(), 14, Nft(NFT_MSG_NEWRULE));
  want.insert(want.end(), 6, Nft(NFT_MSG_NEWSETELEM));
  want.insert(want.end(), {Nft(NFT_MSG_NEWTABLE), Nft(NFT_MSG_DELTABLE), Nft(NFT_MSG_NEWTABLE),
                           Nft(NFT_MSG_NEWSET)});
  for (int i = 0; i < 3; ++i)
    want.insert(want.end(), {Nft(NFT_MSG_NEWCHAIN), Nft(NFT_MSG_NEWRULE)});
  EXPECT_EQ(types, want);

  // ensure table: no NLM_F_EXCL; add table: NLM_F_EXCL; rules appended, not inserted at the head.
  EXPECT_EQ(m[1].flags & (NLM_F_CREATE | NLM_F_EXCL), NLM_F_CREATE);
  EXPECT_EQ(m[2].flags & (NLM_F_CREATE | NLM_F_EXCL), 0);
  EXPECT_EQ(m[3].flags & (NLM_F_CREATE | NLM_F_EXCL), NLM_F_CREATE | NLM_F_EXCL);
  for (const Message& msg : m) {
    if (msg.type == Nft(NFT_MSG_NEWRULE)) {
      EXPECT_EQ(msg.flags & (NLM_F_CREATE | NLM_F_APPEND), NLM_F_CREATE | NLM_F_APPEND);
    }
    if (msg.type == Nft(NFT_MSG_NEWSETELEM)) {
      EXPECT_TRUE(msg.flags & NLM_F_EXCL);
    }
  }
  // Every message maps back to its command.
  for (size_t i = 0; i < batch->messages.size(); ++i) {
    EXPECT_EQ(batch->messages[i].command, i);
  }
}

// What `nft --debug=netlink -f` prints for the reference ruleset (nft 1.0.6, NOTES.md, in mesh's
// order: established flows first, docs/netplane.md), plus published4_bound's rule in output, rule
// by rule.
const char* const kNftReferenceRules[] = {
    // forward
    "[ ct load state => reg 1 ] [ bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000 ] "
    "[ cmp neq reg 1 0x00000000 ] [ immediate reg 0 accept ]",
    "[ meta load iifname => reg 1 ] [ lookup reg 1 set internal ] [ meta load iifname => reg 1 ] "
    "[ meta load oifname => reg 2 ] [ lookup reg 1 set same_network 0x1 ] [ immediate reg 0 drop ]",
    "[ meta load oifname => reg 1 ] [ lookup reg 1 set internal ] [ meta load iifname => reg 1 ] "
    "[ meta load oifname => reg 2 ] [ lookup reg 1 set same_network 0x1 ] [ immediate reg 0 drop ]",
    "[ meta load iifname => reg 1 ] [ meta load oifname => reg 2 ] "
    "[ lookup reg 1 set same_network ] [ immediate reg 0 accept ]",
    "[ ct load status => reg 1 ] [ bitwise reg 1 = ( reg 1 & 0x00000020 ) ^ 0x00000000 ] "
    "[ cmp neq reg 1 0x00000000 ] [ immediate reg 0 accept ]",
    "[ meta load iifname => reg 1 ] [ lookup reg 1 set bridges ] [ meta load oifname => reg 1 ] "
    "[ lookup reg 1 set bridges ] [ immediate reg 0 drop ]",
    // input
    "[ meta load iifname => reg 1 ] [ lookup reg 1 set internal ] "
    "[ fib daddr . iif type => reg 1 ] [ cmp neq reg 1 0x00000002 ] [ immediate reg 0 drop ]",
    // prerouting
    "[ fib daddr type => reg 1 ] [ cmp eq reg 1 0x00000002 ] [ meta load nfproto => reg 1 ] "
    "[ cmp eq reg 1 0x00000002 ] [ payload load 4b @ network header + 16 => reg 1 ] "
    "[ meta load l4proto => reg 9 ] [ payload load 2b @ transport header + 2 => reg 10 ] "
    "[ lookup reg 1 set published4_bound dreg 1 ] [ nat dnat ip addr_min reg 1 proto_min reg 9 ]",
    "[ fib daddr type => reg 1 ] [ cmp eq reg 1 0x00000002 ] [ meta load l4proto => reg 1 ] "
    "[ payload load 2b @ transport header + 2 => reg 9 ] [ lookup reg 1 set published4 dreg 1 ] "
    "[ nat dnat ip addr_min reg 1 proto_min reg 9 ]",
    // output
    "[ fib daddr type => reg 1 ] [ cmp eq reg 1 0x00000002 ] [ meta load nfproto => reg 1 ] "
    "[ cmp eq reg 1 0x00000002 ] [ payload load 4b @ network header + 16 => reg 1 ] "
    "[ meta load l4proto => reg 9 ] [ payload load 2b @ transport header + 2 => reg 10 ] "
    "[ lookup reg 1 set published4_bound dreg 1 ] [ nat dnat ip addr_min reg 1 proto_min reg 9 ]",
    "[ fib daddr type => reg 1 ] [ cmp eq reg 1 0x00000002 ] [ meta load l4proto => reg 1 ] "
    "[ payload load 2b @ transport header + 2 => reg 9 ] [ lookup reg 1 set published4 dreg 1 ] "
    "[ nat dnat ip addr_min reg 1 proto_min reg 9 ]",
    // postrouting
    "[ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x00000002 ] "
    "[ payload load 4b @ network header + 12 => reg 1 ] [ lookup reg 1 set nat_subnets4 ] "
    "[ meta load oifname => reg 1 ] [ lookup reg 1 set bridges 0x1 ] [ masq ]",
    "[ ct load status => reg 1 ] [ bitwise reg 1 = ( reg 1 & 0x00000020 ) ^ 0x00000000 ] "
    "[ cmp neq reg 1 0x00000000 ] [ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x00000002 ] "
    "[ payload load 4b @ network header + 12 => reg 1 ] [ lookup reg 1 set nat_subnets4 ] "
    "[ meta load oifname => reg 1 ] [ lookup reg 1 set bridges ] [ masq ]",
    // trace: `ip saddr . ip daddr . meta l4proto @trace4 meta nftrace set 1`
    "[ meta load nfproto => reg 1 ] [ cmp eq reg 1 0x00000002 ] "
    "[ payload load 4b @ network header + 12 => reg 1 ] "
    "[ payload load 4b @ network header + 16 => reg 9 ] [ meta load l4proto => reg 10 ] "
    "[ lookup reg 1 set trace4 ] [ immediate reg 1 0x00000001 ] [ meta set nftrace with reg 1 ]",
    // bridge mesh: prerouting `iifname @retired drop`, forward and output `oifname @retired drop`
    "[ meta load iifname => reg 1 ] [ lookup reg 1 set retired ] [ immediate reg 0 drop ]",
    "[ meta load oifname => reg 1 ] [ lookup reg 1 set retired ] [ immediate reg 0 drop ]",
    "[ meta load oifname => reg 1 ] [ lookup reg 1 set retired ] [ immediate reg 0 drop ]",
};

// libnftnl's own rendering of a parsed rule: "inet mesh forward 0 0\n  [ ... ]\n  [ ... ]".
std::string ExprsOf(nftnl_rule* rule) {
  char text[8192];
  nftnl_rule_snprintf(text, sizeof(text), rule, NFTNL_OUTPUT_DEFAULT, 0);
  std::vector<std::string> exprs;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::StartsWith(line, "[")) exprs.emplace_back(line);
  }
  return absl::StrJoin(exprs, " ");
}

TEST(BatchTest, RulesAreTheExpressionsNftGenerates) {
  Transaction t = FullRebuild(sample::State());
  absl::StatusOr<Batch> batch = BuildBatch(t, 1);
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::vector<std::string> parsed, ours, chains;
  for (const Message& m : Parse(batch->bytes)) {
    if (m.type != Nft(NFT_MSG_NEWRULE)) continue;
    NftnlPtr<nftnl_rule> rule(nftnl_rule_alloc());
    ASSERT_EQ(nftnl_rule_nlmsg_parse(m.nlh, rule.get()), 0);
    parsed.push_back(ExprsOf(rule.get()));
    chains.push_back(nftnl_rule_get_str(rule.get(), NFTNL_RULE_CHAIN));
    EXPECT_STREQ(nftnl_rule_get_str(rule.get(), NFTNL_RULE_TABLE), "mesh");
    uint32_t len = 0;
    const void* ud = nftnl_rule_get_data(rule.get(), NFTNL_RULE_USERDATA, &len);
    ASSERT_NE(ud, nullptr);
    EXPECT_FALSE(UdataComment(ud, len, NFTNL_UDATA_RULE_COMMENT).empty());
  }
  for (const Rule& r : [&] {
         std::vector<Rule> rules;
         for (const Command& c : t.commands()) {
           if (const Rule* r = std::get_if<Rule>(&c.object)) rules.push_back(*r);
         }
         return rules;
       }()) {
    std::vector<std::string> exprs;
    for (const Expr& e : r.exprs) exprs.push_back(ExprToString(e));
    ours.push_back(absl::StrJoin(exprs, " "));
  }
  EXPECT_THAT(parsed, ElementsAreArray(kNftReferenceRules));
  // ExprToString (used by Transaction::ToString and the fake's dump) agrees with libnftnl.
  EXPECT_EQ(ours, parsed);
  EXPECT_THAT(chains,
              ElementsAre("forward", "forward", "forward", "forward", "forward", "forward", "input",
                          "prerouting", "prerouting", "output", "output", "postrouting",
                          "postrouting", "trace", "prerouting", "forward", "output"));
}

TEST(BatchTest, SetsAreDeclaredAsNftDeclaresThem) {
  absl::StatusOr<Batch> batch = BuildBatch(FullRebuild(sample::State()), 1);
  ASSERT_TRUE(batch.ok()) << batch.status();
  struct Got {
    uint32_t flags, key_type, key_len, data_type, data_len, id;
    std::map<uint8_t, uint32_t> udata;
    std::string comment;
  };
  std::map<std::string, Got> sets;
  for (const Message& m : Parse(batch->bytes)) {
    if (m.type != Nft(NFT_MSG_NEWSET)) continue;
    NftnlPtr<nftnl_set> set(nftnl_set_alloc());
    ASSERT_EQ(nftnl_set_nlmsg_parse(m.nlh, set.get()), 0);
    uint32_t len = 0;
    const void* ud = nftnl_set_get_data(set.get(), NFTNL_SET_USERDATA, &len);
    ASSERT_NE(ud, nullptr);
    auto u32 = [&](uint16_t attr) {
      return nftnl_set_is_set(set.get(), attr) ? nftnl_set_get_u32(set.get(), attr) : 0u;
    };
    sets[nftnl_set_get_str(set.get(), NFTNL_SET_NAME)] =
        Got{u32(NFTNL_SET_FLAGS),    u32(NFTNL_SET_KEY_TYPE),
            u32(NFTNL_SET_KEY_LEN),  u32(NFTNL_SET_DATA_TYPE),
            u32(NFTNL_SET_DATA_LEN), u32(NFTNL_SET_ID),
            UdataU32s(ud, len),      UdataComment(ud, len, NFTNL_UDATA_SET_COMMENT)};
  }
  ASSERT_EQ(sets.size(), 8u);
  // The numbers nft 1.0.6 sends (`nft --debug=mnl`): datatype ids, concatenations shifted by
  // 6 bits per field, fields padded to 4 bytes, and the key byte order in the user data
  // (1 host, 2 network, 0 for concatenations).
  const std::map<std::string, std::vector<uint32_t>> want = {
      // flags, key type, key len, data type, data len, key byte order
      {"bridges", {0, 41, 16, 0, 0, 1}},
      {"same_network", {0, 0xa69, 32, 0, 0, 0}},
      {"internal", {0, 41, 16, 0, 0, 1}},
      {"nat_subnets4", {NFT_SET_INTERVAL, 7, 4, 0, 0, 2}},
      {"published4", {NFT_SET_MAP, 0x30d, 8, 0x1cd, 8, 0}},
      {"published4_bound", {NFT_SET_MAP, 0x730d, 12, 0x1cd, 8, 0}},
      {"trace4", {0, 0x71cc, 12, 0, 0, 0}},
      {"retired", {0, 41, 16, 0, 0, 1}},  // in `bridge mesh`
  };
  std::set<uint32_t> ids;
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(sets.count(name)) << name;
    const Got& g = sets[name];
    EXPECT_EQ(g.flags, w[0]) << name;
    EXPECT_EQ(g.key_type, w[1]) << name;
    EXPECT_EQ(g.key_len, w[2]) << name;
    EXPECT_EQ(g.data_type, w[3]) << name;
    EXPECT_EQ(g.data_len, w[4]) << name;
    EXPECT_EQ(g.udata.at(NFTNL_UDATA_SET_KEYBYTEORDER), w[5]) << name;
    if (g.flags & NFT_SET_MAP) {
      EXPECT_EQ(g.udata.at(NFTNL_UDATA_SET_DATABYTEORDER), 0u);
    }
    EXPECT_FALSE(g.comment.empty()) << name;
    ids.insert(g.id);
  }
  EXPECT_EQ(ids.size(), 8u);  // unique ids, for lookups in the same batch
}

struct ParsedElement {
  std::string key, data;
  uint32_t flags = 0;
  std::string comment;
};

// Attributes of a netlink message or nest, in order.
std::vector<const nlattr*> Attrs(const void* begin, size_t len) {
  std::vector<const nlattr*> out;
  const auto* attr = static_cast<const nlattr*>(begin);
  int remaining = static_cast<int>(len);
  while (mnl_attr_ok(attr, remaining)) {
    out.push_back(attr);
    remaining -= static_cast<int>(MNL_ALIGN(attr->nla_len));
    attr = mnl_attr_next(attr);
  }
  return out;
}
std::vector<const nlattr*> Nested(const nlattr* nest) {
  return Attrs(mnl_attr_get_payload(nest), mnl_attr_get_payload_len(nest));
}
std::string Value(const nlattr* data) {  // NFTA_DATA_VALUE inside NFTA_SET_ELEM_KEY/DATA
  for (const nlattr* a : Nested(data)) {
    if (mnl_attr_get_type(a) == NFTA_DATA_VALUE) {
      return std::string(static_cast<const char*>(mnl_attr_get_payload(a)),
                         mnl_attr_get_payload_len(a));
    }
  }
  return "";
}

// Parsed by hand: libnftnl's nftnl_set_elems_nlmsg_parse() only accepts element nests of type
// NFTA_LIST_ELEM, as the kernel sends them, while its builder numbers them 1, 2, 3... (the
// kernel ignores that type when it receives them).
std::vector<ParsedElement> ParseElements(const nlmsghdr* nlh, std::string* set_name,
                                         uint32_t* set_id = nullptr) {
  std::vector<ParsedElement> out;
  const auto* begin = static_cast<const char*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)));
  const auto* end = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  for (const nlattr* a : Attrs(begin, end - begin)) {
    switch (mnl_attr_get_type(a)) {
      case NFTA_SET_ELEM_LIST_SET:
        *set_name = mnl_attr_get_str(a);
        break;
      case NFTA_SET_ELEM_LIST_SET_ID:
        if (set_id != nullptr) *set_id = ntohl(mnl_attr_get_u32(a));
        break;
      case NFTA_SET_ELEM_LIST_ELEMENTS:
        for (const nlattr* element : Nested(a)) {
          ParsedElement p;
          for (const nlattr* f : Nested(element)) {
            switch (mnl_attr_get_type(f)) {
              case NFTA_SET_ELEM_KEY:
                p.key = Value(f);
                break;
              case NFTA_SET_ELEM_DATA:
                p.data = Value(f);
                break;
              case NFTA_SET_ELEM_FLAGS:
                p.flags = ntohl(mnl_attr_get_u32(f));
                break;
              case NFTA_SET_ELEM_USERDATA:
                p.comment = UdataComment(mnl_attr_get_payload(f), mnl_attr_get_payload_len(f),
                                         NFTNL_UDATA_SET_ELEM_COMMENT);
                break;
            }
          }
          out.push_back(p);
        }
        break;
    }
  }
  return out;
}

using namespace std::string_literals;  // NOLINT(build/namespaces): byte strings with NULs

TEST(BatchTest, ElementsCarryKernelLayoutFlagsAndComments) {
  absl::StatusOr<Batch> batch = BuildBatch(FullRebuild(sample::State()), 1);
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::map<std::string, std::vector<ParsedElement>> elements;
  for (const Message& m : Parse(batch->bytes)) {
    if (m.type != Nft(NFT_MSG_NEWSETELEM)) continue;
    std::string name;
    uint32_t id = 0;
    std::vector<ParsedElement> e = ParseElements(m.nlh, &name, &id);
    EXPECT_NE(id, 0u) << name;  // the set was created in this batch
    elements[name] = e;
  }
  ASSERT_EQ(elements["nat_subnets4"].size(), 2u);
  EXPECT_EQ(elements["nat_subnets4"][0].key, "\x0a\x58\x00\x00"s);
  EXPECT_EQ(elements["nat_subnets4"][0].flags, 0u);
  EXPECT_EQ(elements["nat_subnets4"][0].comment, "front");
  EXPECT_EQ(elements["nat_subnets4"][1].key, "\x0a\x58\x01\x00"s);
  EXPECT_EQ(elements["nat_subnets4"][1].flags, static_cast<uint32_t>(NFT_SET_ELEM_INTERVAL_END));
  ASSERT_EQ(elements["same_network"].size(), 2u);
  EXPECT_EQ(elements["same_network"][0].key.size(), 32u);
  EXPECT_EQ(elements["same_network"][0].key.substr(0, 16), Datum::Ifname("mbr-front").bytes);
  // The bytes `nft --debug=netlink` shows for `tcp . 8080 : 10.88.0.2 . 80`:
  // element 00000006 0000901f : 0200580a 00005000.
  ASSERT_EQ(elements["published4"].size(), 1u);
  EXPECT_EQ(elements["published4"][0].key, "\x06\0\0\0\x1f\x90\0\0"s);
  EXPECT_EQ(elements["published4"][0].data, "\x0a\x58\x00\x02\x00\x50\0\0"s);
  EXPECT_EQ(elements["published4"][0].comment, "web-1/front");
  ASSERT_EQ(elements["published4_bound"].size(), 1u);
  EXPECT_EQ(elements["published4_bound"][0].key, "\xcb\x00\x71\x01\x11\0\0\0\x14\xe9\0\0"s);
}

TEST(BatchTest, RemoveEnsuresThenDeletesByKeyOnly) {
  absl::StatusOr<Batch> batch = BuildBatch(RemovePort(sample::WebPort()), 50);
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::vector<Message> m = Parse(batch->bytes);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[1].type, Nft(NFT_MSG_NEWSETELEM));
  EXPECT_EQ(m[1].flags & (NLM_F_CREATE | NLM_F_EXCL), NLM_F_CREATE);
  EXPECT_EQ(m[2].type, Nft(NFT_MSG_DELSETELEM));
  std::string name;
  std::vector<ParsedElement> ensured = ParseElements(m[1].nlh, &name);
  ASSERT_EQ(ensured.size(), 1u);
  EXPECT_FALSE(ensured[0].data.empty());
  std::vector<ParsedElement> deleted = ParseElements(m[2].nlh, &name);
  EXPECT_EQ(name, "published4");
  ASSERT_EQ(deleted.size(), 1u);
  EXPECT_EQ(deleted[0].key, ensured[0].key);
  EXPECT_TRUE(deleted[0].data.empty());
}

TEST(BatchTest, FlushChainAndSet) {
  Transaction t;
  t.Flush(Chain{Family::kInet, "mesh", "forward", {}, ""});
  t.Flush(Set{Family::kInet, "mesh", "bridges", {}, {}, false, ""});
  absl::StatusOr<Batch> batch = BuildBatch(t, 1);
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::vector<Message> m = Parse(batch->bytes);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[1].type, Nft(NFT_MSG_DELRULE));
  NftnlPtr<nftnl_rule> rule(nftnl_rule_alloc());
  ASSERT_EQ(nftnl_rule_nlmsg_parse(m[1].nlh, rule.get()), 0);
  EXPECT_STREQ(nftnl_rule_get_str(rule.get(), NFTNL_RULE_CHAIN), "forward");
  EXPECT_FALSE(nftnl_rule_is_set(rule.get(), NFTNL_RULE_HANDLE));
  EXPECT_EQ(m[2].type, Nft(NFT_MSG_DELSETELEM));
  std::string name;
  EXPECT_TRUE(ParseElements(m[2].nlh, &name).empty());
  EXPECT_EQ(name, "bridges");
}

TEST(BatchTest, LargeElementListsAreSplitIntoBoundedMessages) {
  DesiredState state = sample::Scaled(3000);
  Transaction t = FullRebuild(state);
  absl::StatusOr<Batch> batch = BuildBatch(t, 1);
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::vector<Message> m = Parse(batch->bytes);
  ASSERT_EQ(m.size(), batch->messages.size() + 2);
  std::map<std::string, size_t> per_set;
  size_t published_messages = 0;
  for (size_t i = 1; i + 1 < m.size(); ++i) {
    EXPECT_LE(m[i].nlh->nlmsg_len, 20u * 1024) << i;
    if (m[i].type != Nft(NFT_MSG_NEWSETELEM)) continue;
    std::string name;
    const size_t n = ParseElements(m[i].nlh, &name).size();
    per_set[name] += n;
    EXPECT_EQ(batch->messages[i - 1].element_count, n);
    if (name == "published4") ++published_messages;
  }
  EXPECT_EQ(per_set["bridges"], 3000u);
  EXPECT_EQ(per_set["same_network"], 3000u);
  EXPECT_EQ(per_set["nat_subnets4"], 6000u);
  EXPECT_EQ(per_set["published4"], 3000u);
  EXPECT_GT(published_messages, 1u);
  // An error in one of them names that message's elements only (the last such message; the
  // bridge table's chains and rules follow it).
  auto with_elements = std::find_if(batch->messages.rbegin(), batch->messages.rend(),
                                    [](const BatchMessage& b) { return b.element_count > 0; });
  ASSERT_NE(with_elements, batch->messages.rend());
  const BatchMessage& last = *with_elements;
  EXPECT_GT(last.first_element, 0u);
  EXPECT_THAT(DescribeMessage(t, last),
              HasSubstr(absl::StrCat("add ", last.element_count, " elements to map")));
}

TEST(BatchTest, InvalidTransactionsAreNotSerialized) {
  Transaction t;
  t.Add(Elements{Family::kInet,
                 "mesh",
                 "bridges",
                 false,
                 {Element{{Datum::Ifname("this-name-is-too-long")}, {}, false, false, ""}}});
  EXPECT_EQ(BuildBatch(t, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BatchTest, EmptyTransactionIsJustTheFrame) {
  absl::StatusOr<Batch> batch = BuildBatch(Transaction(), 7);
  ASSERT_TRUE(batch.ok());
  std::vector<Message> m = Parse(batch->bytes);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].seq, 7u);
  EXPECT_EQ(m[1].seq, 8u);
}

}  // namespace
}  // namespace mesh::netplane::nft
