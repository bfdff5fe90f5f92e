#include "netplane/nft/transaction.h"

#include <cerrno>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "netplane/nft/ruleset.h"
#include "tests/unit/netplane/nft/sample_state.h"

namespace mesh::netplane::nft {
namespace {

using sample::Addr;
using ::testing::HasSubstr;

using namespace std::string_literals;  // NOLINT(build/namespaces): byte strings with NULs

TEST(DatumTest, KernelByteLayout) {
  EXPECT_EQ(Datum::Ifname("br0").bytes, "br0"s + std::string(13, '\0'));
  EXPECT_EQ(Datum::Ipv4Addr(Addr("10.88.0.1")).bytes, "\x0a\x58\x00\x01"s);
  EXPECT_EQ(Datum::InetService(8080).bytes, "\x1f\x90"s);
  EXPECT_EQ(Datum::InetProto(IPPROTO_UDP).bytes, "\x11"s);
  EXPECT_EQ(Datum::Ifname("br0").ToString(), "\"br0\"");
  EXPECT_EQ(Datum::Ipv4Addr(Addr("10.88.0.1")).ToString(), "10.88.0.1");
  EXPECT_EQ(Datum::InetService(8080).ToString(), "8080");
  EXPECT_EQ(Datum::InetProto(IPPROTO_TCP).ToString(), "tcp");
  EXPECT_EQ(Datum::InetProto(IPPROTO_UDP).ToString(), "udp");
}

TEST(DatumTest, ConcatenationFieldsArePaddedToFourBytes) {
  EXPECT_EQ(PackFields({Datum::InetProto(IPPROTO_TCP), Datum::InetService(8080)}),
            "\x06\0\0\0\x1f\x90\0\0"s);
  EXPECT_EQ(PackFields({Datum::InetService(8080)}), "\x1f\x90"s);  // a single field is not
}

TEST(SetTest, KeyAndDataLengthsMatchNft) {
  // The lengths nft 1.0.6 sends for the same declarations (NFTA_SET_KEY_LEN/DATA_LEN).
  Set same{Family::kInet, "t", "s", {DataType::kIfname, DataType::kIfname}, {}, false, ""};
  EXPECT_EQ(same.key_len(), 32u);
  EXPECT_EQ(same.data_len(), 0u);
  Set published{Family::kInet,
                "t",
                "m",
                {DataType::kInetProto, DataType::kInetService},
                {DataType::kIpv4Addr, DataType::kInetService},
                false,
                ""};
  EXPECT_EQ(published.key_len(), 8u);
  EXPECT_EQ(published.data_len(), 8u);
  Set bound{Family::kInet,
            "t",
            "m",
            {DataType::kIpv4Addr, DataType::kInetProto, DataType::kInetService},
            {DataType::kIpv4Addr, DataType::kInetService},
            false,
            ""};
  EXPECT_EQ(bound.key_len(), 12u);
  Set subnets{Family::kInet, "t", "s", {DataType::kIpv4Addr}, {}, true, ""};
  EXPECT_EQ(subnets.key_len(), 4u);
}

Elements BridgeElements(absl::string_view name) {
  return Elements{Family::kInet,
                  "mesh",
                  "bridges",
                  false,
                  {Element{{Datum::Ifname(name)}, {}, false, false, ""}}};
}

TEST(TransactionValidateTest, AcceptsTheRuleset) {
  EXPECT_TRUE(FullRebuild(sample::State()).Validate().ok());
  EXPECT_TRUE(FullRebuild(sample::Scaled(50)).Validate().ok());
  EXPECT_TRUE(RemovePort(sample::DnsPort()).Validate().ok());
  EXPECT_TRUE(Transaction().Validate().ok());
}

TEST(TransactionValidateTest, RejectsLongInterfaceNames) {
  absl::Status s = Transaction().Add(BridgeElements("sixteen-bytes-xx")).Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "nftables: add element to set \"bridges\" in table inet mesh (\"sixteen-bytes-xx\"): "
            "interface name \"sixteen-bytes-xx\" is longer than 15 bytes");
  EXPECT_TRUE(Transaction().Add(BridgeElements("fifteen-bytes-x")).Validate().ok());
  EXPECT_FALSE(Transaction().Add(BridgeElements("")).Validate().ok());
}

TEST(TransactionValidateTest, RejectsWhatTheKernelOrNftWould) {
  auto invalid = [](const Transaction& t) {
    return t.Validate().code() == absl::StatusCode::kInvalidArgument;
  };
  EXPECT_TRUE(invalid(Transaction().Add(Table{Family::kInet, "", ""})));
  EXPECT_TRUE(invalid(Transaction().Add(Table{Family::kInet, std::string(256, 't'), ""})));
  EXPECT_FALSE(invalid(Transaction().Add(Table{Family::kInet, std::string(255, 't'), ""})));
  EXPECT_TRUE(invalid(Transaction().Add(Table{Family::kInet, "t", std::string(129, 'c')})));
  EXPECT_FALSE(invalid(Transaction().Add(Table{Family::kInet, "t", std::string(128, 'c')})));
  EXPECT_TRUE(invalid(Transaction().Flush(Table{Family::kInet, "t", ""})));
  // A rule is appended every time it is added; "ensure" has no meaning for it.
  EXPECT_TRUE(invalid(Transaction().Ensure(Rule{Family::kInet, "t", "c", {}, "", 0})));
  EXPECT_TRUE(invalid(Transaction().Delete(Rule{Family::kInet, "t", "c", {}, "", 0})));
  EXPECT_FALSE(invalid(Transaction().Delete(Rule{Family::kInet, "t", "c", {}, "", 7})));
  // An empty DELSETELEM would flush the set.
  EXPECT_TRUE(invalid(Transaction().Delete(Elements{Family::kInet, "t", "s", false, {}})));
  EXPECT_TRUE(invalid(Transaction().Add(
      Set{Family::kInet, "t", "s", {DataType::kIpv4Addr, DataType::kInetService}, {}, true, ""})));
  EXPECT_TRUE(invalid(Transaction().Add(Set{Family::kInet, "t", "s", {}, {}, false, ""})));
  Element with_value{{Datum::Ifname("br0")}, {Datum::Mark(1)}, false, false, ""};
  EXPECT_TRUE(
      invalid(Transaction().Add(Elements{Family::kInet, "t", "s", /*map=*/false, {with_value}})));
  Element without_value{{Datum::Ifname("br0")}, {}, false, false, ""};
  EXPECT_TRUE(
      invalid(Transaction().Add(Elements{Family::kInet, "t", "m", /*map=*/true, {without_value}})));
  // Deleting needs the key only.
  EXPECT_FALSE(invalid(
      Transaction().Delete(Elements{Family::kInet, "t", "m", /*map=*/true, {without_value}})));
  Rule bad_cmp{Family::kInet, "t", "c", {Cmp{NFT_REG_1, NFT_CMP_EQ, ""}}, "", 0};
  EXPECT_TRUE(invalid(Transaction().Add(bad_cmp)));
  Rule bad_bitwise{Family::kInet, "t", "c", {Bitwise{NFT_REG_1, NFT_REG_1, "ab", "a"}}, "", 0};
  EXPECT_TRUE(invalid(Transaction().Add(bad_bitwise)));
  Rule long_rule{Family::kInet, "t", "c", std::vector<Expr>(65, Masquerade{}), "", 0};
  EXPECT_TRUE(invalid(Transaction().Add(long_rule)));
}

TEST(CommandTest, DescribeNamesKindAndQuotedName) {
  auto describe = [](const Transaction& t) { return t.commands().at(0).Describe(); };
  EXPECT_EQ(describe(Transaction().Add(Table{Family::kInet, "mesh", "c"})), "add table inet mesh");
  EXPECT_EQ(describe(Transaction().Ensure(Table{Family::kIp, "other", ""})),
            "ensure table ip other");
  EXPECT_EQ(describe(Transaction().Delete(Chain{Family::kInet, "mesh", "forward", {}, ""})),
            "delete chain \"forward\" in table inet mesh");
  EXPECT_EQ(describe(Transaction().Flush(Chain{Family::kInet, "mesh", "forward", {}, ""})),
            "flush chain \"forward\" in table inet mesh");
  EXPECT_EQ(describe(Transaction().Add(
                Set{Family::kInet, "mesh", "m", {DataType::kMark}, {DataType::kMark}, false, ""})),
            "add map \"m\" in table inet mesh");
  EXPECT_EQ(describe(Transaction().Flush(Set{Family::kInet, "mesh", "bridges", {}, {}, false, ""})),
            "flush set \"bridges\" in table inet mesh");
  EXPECT_EQ(describe(Transaction().Add(
                Rule{Family::kInet, "mesh", "forward", {Verdict{NF_DROP}}, "no way out", 0})),
            "add rule to chain \"forward\" in table inet mesh (comment \"no way out\")");
  EXPECT_EQ(describe(Transaction().Delete(Rule{Family::kInet, "mesh", "forward", {}, "", 12})),
            "delete rule handle 12 from chain \"forward\" in table inet mesh");
  EXPECT_EQ(describe(AddPort(sample::WebPort())),
            "add element to map \"published4\" in table inet mesh (tcp . 8080 : 10.88.0.2 . 80)");
  Transaction remove = RemovePort(sample::DnsPort());
  EXPECT_EQ(remove.commands().at(0).Describe(),
            "ensure element in map \"published4_bound\" in table inet mesh "
            "(203.0.113.1 . udp . 5353 : 10.88.1.3 . 53)");
  EXPECT_EQ(remove.commands().at(1).Describe(),
            "delete element from map \"published4_bound\" in table inet mesh "
            "(203.0.113.1 . udp . 5353)");

  Elements five{Family::kInet, "mesh", "bridges", false, {}};
  for (const char* name : {"a", "b", "c", "d", "e"}) {
    five.elements.push_back(Element{{Datum::Ifname(name)}, {}, false, false, "x"});
  }
  EXPECT_EQ(describe(Transaction().Add(five)),
            "add 5 elements to set \"bridges\" in table inet mesh (\"a\", \"b\", \"c\", ...)");
}

TEST(CommandTest, ErrorsKeepTheErrnoAsCode) {
  absl::Status exists = CommandError(Verb::kAdd, "add table inet mesh", EEXIST);
  EXPECT_EQ(exists.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(exists.message(), "nftables: add table inet mesh: File exists (EEXIST)");
  absl::Status clash = CommandError(Verb::kEnsure, "ensure element", EEXIST);
  EXPECT_EQ(clash.message(),
            "nftables: ensure element: File exists (EEXIST); it exists with different contents");
  EXPECT_EQ(CommandError(Verb::kDelete, "delete table inet mesh", ENOENT).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(CommandError(Verb::kDelete, "delete set", EBUSY).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CommandTest, ToStringReadsLikeNft) {
  Transaction t = AddPort(sample::DnsPort());
  t.Add(Chain{Family::kInet, "mesh", "forward",
              BaseChain{ChainType::kFilter, Hook::kForward, 0, Policy::kAccept}, "isolation"});
  t.Add(Set{Family::kInet, "mesh", "nat_subnets4", {DataType::kIpv4Addr}, {}, true, ""});
  t.Add(Rule{
      Family::kInet,
      "mesh",
      "postrouting",
      {MetaLoad{NFT_META_OIFNAME, NFT_REG_1}, Lookup{NFT_REG_1, "bridges", {}, true}, Masquerade{}},
      "outbound NAT",
      0});
  t.Delete(Table{Family::kInet, "mesh", "ignored when deleting"});
  EXPECT_EQ(t.ToString(),
            "add element inet mesh published4_bound { 203.0.113.1 . udp . 5353 comment "
            "\"dns/lab\" : 10.88.1.3 . 53 }\n"
            "add chain inet mesh forward { type filter hook forward priority 0; policy accept; } "
            "comment \"isolation\"\n"
            "add set inet mesh nat_subnets4 { type ipv4_addr; flags interval; }\n"
            "add rule inet mesh postrouting [ meta load oifname => reg 1 ] "
            "[ lookup reg 1 set bridges 0x1 ] [ masq ] comment \"outbound NAT\"\n"
            "delete table inet mesh\n");
}

TEST(ExprTest, PrintsLibnftnlNotation) {
  EXPECT_EQ(ExprToString(PayloadLoad{NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1}),
            "[ payload load 4b @ network header + 12 => reg 1 ]");
  EXPECT_EQ(ExprToString(Cmp{NFT_REG_1, NFT_CMP_EQ, "\x02"s}), "[ cmp eq reg 1 0x00000002 ]");
  EXPECT_EQ(ExprToString(Lookup{NFT_REG_1, "published4", NFT_REG_1, false}),
            "[ lookup reg 1 set published4 dreg 1 ]");
  EXPECT_EQ(ExprToString(Nat{NFT_NAT_DNAT, Family::kIp, NFT_REG_1, NFT_REG32_01}),
            "[ nat dnat ip addr_min reg 1 proto_min reg 9 ]");
  EXPECT_EQ(ExprToString(Fib{NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE, NFT_REG_1}),
            "[ fib daddr type => reg 1 ]");
  EXPECT_EQ(ExprToString(Verdict{NF_DROP}), "[ immediate reg 0 drop ]");
}

TEST(TransactionTest, AppendKeepsOrder) {
  Transaction t = AddPort(sample::WebPort());
  t.Append(AddNetwork(sample::Front()));
  ASSERT_EQ(t.size(), 4u);  // the port, then bridges, same_network, nat_subnets4
  EXPECT_THAT(t.commands()[0].Describe(), HasSubstr("published4"));
  EXPECT_THAT(t.commands()[3].Describe(), HasSubstr("nat_subnets4"));
}

}  // namespace
}  // namespace mesh::netplane::nft
