#include "netplane/ipam/ip.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/netplane/ipam/test_util.h"

namespace mesh::netplane::ipam {
namespace {

using ::testing::HasSubstr;

TEST(IpAddressTest, ParsesAndFormatsIpv4) {
  IpAddress a = A("10.88.1.2");
  EXPECT_EQ(a.family(), Family::kV4);
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.bit_length(), 32);
  EXPECT_EQ(a.ToString(), "10.88.1.2");
  EXPECT_EQ(a.ToV4HostOrder(), 0x0a580102u);
  EXPECT_EQ(a, IpAddress::V4(0x0a580102));
  EXPECT_EQ(std::vector<uint8_t>(a.bytes().begin(), a.bytes().end()),
            (std::vector<uint8_t>{10, 88, 1, 2}));
  EXPECT_EQ(A("0.0.0.0"), IpAddress());
  EXPECT_EQ(A("255.255.255.255").ToV4HostOrder(), 0xffffffffu);
}

TEST(IpAddressTest, ParsesAndFormatsIpv6Canonically) {
  IpAddress a = A("FD00:0:0::0001");
  EXPECT_EQ(a.family(), Family::kV6);
  EXPECT_EQ(a.bit_length(), 128);
  EXPECT_EQ(a.ToString(), "fd00::1");  // RFC 5952: lowercase, zeros compressed
  EXPECT_EQ(a.bytes().size(), 16u);
  EXPECT_EQ(a.bytes()[0], 0xfd);
  EXPECT_EQ(a.bytes()[15], 0x01);
  EXPECT_EQ(a.ToV4HostOrder(), std::nullopt);
  EXPECT_EQ(A("::").ToString(), "::");
  EXPECT_EQ(A("2001:db8:0:0:1:0:0:1").ToString(), "2001:db8::1:0:0:1");
  // An IPv4-mapped address stays IPv6: it is not the same address as 1.2.3.4.
  IpAddress mapped = A("::ffff:1.2.3.4");
  EXPECT_EQ(mapped.family(), Family::kV6);
  EXPECT_EQ(mapped.ToString(), "::ffff:1.2.3.4");
  EXPECT_NE(mapped, A("1.2.3.4"));
}

TEST(IpAddressTest, RejectsWhatIsNotAnAddress) {
  EXPECT_THAT(IpAddress::Parse("10.88.1.300"),
              StatusIs(absl::StatusCode::kInvalidArgument, "\"10.88.1.300\" is not an IP address"));
  for (const std::string& bad :
       {std::string(), std::string("10.1"), std::string("010.1.1.1"), std::string(" 10.1.1.1"),
        std::string("10.1.1.1 "), std::string("10.0.0.0/8"), std::string("fd00::1%eth0"),
        std::string("::g"), std::string("1:2:3:4:5:6:7:8:9"), std::string("10.1.1.1\0x", 10),
        std::string(200, '1'), std::string("host.example")}) {
    EXPECT_THAT(IpAddress::Parse(bad), StatusIs(absl::StatusCode::kInvalidArgument, "is not an"))
        << bad;
  }
}

TEST(IpAddressTest, LongOrBinaryInputIsQuotedEscapedAndCut) {
  absl::Status s = IpAddress::Parse(std::string(500, 'x') + "\n").status();
  EXPECT_LT(s.message().size(), 120u);
  EXPECT_THAT(std::string(IpAddress::Parse("a\nb").status().message()), HasSubstr("\"a\\nb\""));
}

TEST(IpAddressTest, FromBytesTakesFourOrSixteen) {
  const uint8_t v4[] = {192, 168, 0, 1};
  EXPECT_EQ(*IpAddress::FromBytes(v4), A("192.168.0.1"));
  std::array<uint8_t, 16> v6{};
  v6[0] = 0xfd;
  v6[15] = 7;
  EXPECT_EQ(*IpAddress::FromBytes(v6), A("fd00::7"));
  EXPECT_EQ(IpAddress::V6(v6), A("fd00::7"));
  const uint8_t five[] = {1, 2, 3, 4, 5};
  EXPECT_THAT(IpAddress::FromBytes(five), StatusIs(absl::StatusCode::kInvalidArgument, "not 5"));
}

TEST(IpAddressTest, OrdersNumericallyWithIpv4First) {
  EXPECT_LT(A("10.0.0.2"), A("10.0.0.10"));  // not text order
  EXPECT_LT(A("9.255.255.255"), A("10.0.0.0"));
  EXPECT_LT(A("255.255.255.255"), A("::"));
  EXPECT_LT(A("fd00::2"), A("fd00::10"));
  EXPECT_LT(A("fd00::ffff"), A("fd00::1:0"));
  EXPECT_EQ(A("fd00::1"), A("fd00:0::1"));
}

TEST(IpAddressTest, AddCarriesAndStopsAtTheEndOfTheFamily) {
  EXPECT_EQ(A("10.0.0.255").Add(1), A("10.0.1.0"));
  EXPECT_EQ(A("10.0.0.0").Add(0), A("10.0.0.0"));
  EXPECT_EQ(A("255.255.255.254").Add(1), A("255.255.255.255"));
  EXPECT_EQ(A("255.255.255.255").Add(1), std::nullopt);
  EXPECT_EQ(A("0.0.0.0").Add(uint64_t{1} << 32), std::nullopt);
  EXPECT_EQ(A("0.0.0.0").Add(UINT64_MAX), std::nullopt);
  // IPv6 carries from the low 64 bits into the high 64 bits.
  EXPECT_EQ(A("::ffff:ffff:ffff:ffff").Add(1), A("0:0:0:1::"));
  EXPECT_EQ(A("::1").Add(UINT64_MAX), A("0:0:0:1::"));
  EXPECT_EQ(A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe").Add(1),
            A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  EXPECT_EQ(A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").Add(1), std::nullopt);
  EXPECT_EQ(A("ffff:ffff:ffff:ffff::1").Add(UINT64_MAX), std::nullopt);
}

TEST(IpAddressTest, OffsetFromIsTheInverseOfAdd) {
  EXPECT_EQ(A("10.0.1.0").OffsetFrom(A("10.0.0.0")), 256u);
  EXPECT_EQ(A("10.0.0.0").OffsetFrom(A("10.0.0.0")), 0u);
  EXPECT_EQ(A("10.0.0.0").OffsetFrom(A("10.0.0.1")), std::nullopt);  // before the base
  EXPECT_EQ(A("::1").OffsetFrom(A("0.0.0.0")), std::nullopt);        // other family
  EXPECT_EQ(A("255.255.255.255").OffsetFrom(A("0.0.0.0")), 0xffffffffu);
  EXPECT_EQ(A("0:0:0:1::").OffsetFrom(A("::1")), UINT64_MAX);
  EXPECT_EQ(A("0:0:0:1::1").OffsetFrom(A("::1")), std::nullopt);  // 2^64: too far
  EXPECT_EQ(A("fd00::1:0:0:5").OffsetFrom(A("fd00::ffff:ffff:fff0")), 0x15u);
}

TEST(IpPrefixTest, ParsesIpv4) {
  IpPrefix p = P("10.88.0.0/16");
  EXPECT_EQ(p.family(), Family::kV4);
  EXPECT_EQ(p.network(), A("10.88.0.0"));
  EXPECT_EQ(p.length(), 16);
  EXPECT_EQ(p.host_bits(), 16);
  EXPECT_EQ(p.Last(), A("10.88.255.255"));
  EXPECT_EQ(p.ToString(), "10.88.0.0/16");
  EXPECT_EQ(P("10.88.1.5/32").Last(), A("10.88.1.5"));
  EXPECT_EQ(P("0.0.0.0/0").Last(), A("255.255.255.255"));
  EXPECT_EQ(P("10.88.1.0/30").Last(), A("10.88.1.3"));
  EXPECT_EQ(P("10.88.1.0/27").Last(), A("10.88.1.31"));
}

TEST(IpPrefixTest, ParsesIpv6) {
  IpPrefix p = P("FD00:88::/64");
  EXPECT_EQ(p.family(), Family::kV6);
  EXPECT_EQ(p.ToString(), "fd00:88::/64");
  EXPECT_EQ(p.Last(), A("fd00:88::ffff:ffff:ffff:ffff"));
  EXPECT_EQ(p.host_bits(), 64);
  EXPECT_EQ(P("::/0").Last(), A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  EXPECT_EQ(P("::/0").host_bits(), 128);
  EXPECT_EQ(P("fd00::/125").Last(), A("fd00::7"));
  EXPECT_EQ(P("fd00::1/128").Last(), A("fd00::1"));
}

TEST(IpPrefixTest, RejectsMalformedSubnets) {
  struct Case {
    std::string text;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"10.88.0.0", "subnet \"10.88.0.0\": missing prefix length"},
           {"10.88.0.0/", "prefix length \"\" is not a number from 0 to 32 (IPv4)"},
           {"10.88.0.0/33", "prefix length \"33\" is not a number from 0 to 32 (IPv4)"},
           {"10.88.0.0/+8", "prefix length \"+8\" is not a number"},
           {"10.88.0.0/ 8", "prefix length \" 8\" is not a number"},
           {"10.88.0.0/-1", "prefix length \"-1\" is not a number"},
           {"10.88.0.0/0016", "prefix length \"0016\" is not a number"},
           {"10.88.0.0/16/8", "prefix length \"16/8\" is not a number"},
           {"fd00::/129", "prefix length \"129\" is not a number from 0 to 128 (IPv6)"},
           {"10.88.0.300/24", "subnet \"10.88.0.300/24\": \"10.88.0.300\" is not an IP address"},
           {"/24", "\"\" is not an IP address"},
           {"10.88.1.5/24",
            "subnet \"10.88.1.5/24\" has host bits set; did you mean 10.88.1.0/24?"},
           {"fd00::1/64", "subnet \"fd00::1/64\" has host bits set; did you mean fd00::/64?"},
           {"10.88.0.0/8", "did you mean 10.0.0.0/8?"},
       }) {
    EXPECT_THAT(IpPrefix::Parse(c.text), StatusIs(absl::StatusCode::kInvalidArgument, c.message))
        << c.text;
  }
}

TEST(IpPrefixTest, ContainingClearsHostBits) {
  EXPECT_EQ(*IpPrefix::Containing(A("10.88.1.77"), 24), P("10.88.1.0/24"));
  EXPECT_EQ(*IpPrefix::Containing(A("10.88.1.77"), 0), P("0.0.0.0/0"));
  EXPECT_EQ(*IpPrefix::Containing(A("10.88.1.77"), 32), P("10.88.1.77/32"));
  EXPECT_EQ(*IpPrefix::Containing(A("10.88.1.77"), 27), P("10.88.1.64/27"));
  EXPECT_EQ(*IpPrefix::Containing(A("fd00:1:2:3:4::1"), 60), P("fd00:1:2::/60"));
  EXPECT_THAT(IpPrefix::Containing(A("10.0.0.1"), 33),
              StatusIs(absl::StatusCode::kInvalidArgument, "33 is out of range for IPv4"));
  EXPECT_THAT(IpPrefix::Containing(A("::1"), -1),
              StatusIs(absl::StatusCode::kInvalidArgument, "-1 is out of range for IPv6"));
}

TEST(IpPrefixTest, ContainsAddresses) {
  IpPrefix p = P("10.88.1.0/24");
  EXPECT_TRUE(p.Contains(A("10.88.1.0")));
  EXPECT_TRUE(p.Contains(A("10.88.1.255")));
  EXPECT_FALSE(p.Contains(A("10.88.2.0")));
  EXPECT_FALSE(p.Contains(A("10.88.0.255")));
  EXPECT_FALSE(p.Contains(A("::ffff:10.88.1.1")));  // other family
  EXPECT_TRUE(P("0.0.0.0/0").Contains(A("1.2.3.4")));
  EXPECT_FALSE(P("0.0.0.0/0").Contains(A("::")));
  EXPECT_FALSE(P("::/0").Contains(A("0.0.0.0")));
  IpPrefix v6 = P("fd00:88::/64");
  EXPECT_TRUE(v6.Contains(A("fd00:88::ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(v6.Contains(A("fd00:88:0:1::")));
}

TEST(IpPrefixTest, OverlapsWhenOneHoldsTheOther) {
  IpPrefix wide = P("10.88.0.0/16");
  IpPrefix narrow = P("10.88.1.0/24");
  EXPECT_TRUE(wide.Overlaps(narrow));
  EXPECT_TRUE(narrow.Overlaps(wide));
  EXPECT_TRUE(narrow.Overlaps(narrow));
  EXPECT_TRUE(wide.Contains(narrow));
  EXPECT_FALSE(narrow.Contains(wide));
  EXPECT_FALSE(narrow.Overlaps(P("10.88.2.0/24")));  // adjacent
  EXPECT_FALSE(P("10.88.1.0/25").Overlaps(P("10.88.1.128/25")));
  EXPECT_TRUE(P("0.0.0.0/0").Overlaps(narrow));
  EXPECT_FALSE(P("::/0").Overlaps(narrow));  // families never overlap
  EXPECT_TRUE(P("fd00::/8").Overlaps(P("fd00:88::/64")));
  EXPECT_FALSE(P("fd00:88::/64").Overlaps(P("fd00:88:0:1::/64")));
}

TEST(IpPrefixTest, OrdersByAddressThenLength) {
  EXPECT_LT(P("10.0.0.0/8"), P("10.0.0.0/16"));
  EXPECT_LT(P("10.0.0.0/16"), P("10.1.0.0/16"));
  EXPECT_LT(P("10.0.0.0/8"), P("fd00::/8"));
  EXPECT_EQ(P("fd00:0::/8"), P("fd00::/8"));
}

}  // namespace
}  // namespace mesh::netplane::ipam
