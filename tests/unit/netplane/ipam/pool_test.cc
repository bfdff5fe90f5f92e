#include "netplane/ipam/pool.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/netplane/ipam/test_util.h"

namespace mesh::netplane::ipam {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

Pool MakePool(absl::string_view subnet, std::optional<IpAddress> gateway = std::nullopt) {
  absl::StatusOr<Pool> pool = Pool::Create(P(subnet), gateway);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return *std::move(pool);
}

TEST(PoolTest, GatewayDefaultsToTheFirstHostAndIsNeverLeased) {
  Pool pool = MakePool("10.88.1.0/24");
  EXPECT_EQ(pool.subnet(), P("10.88.1.0/24"));
  EXPECT_EQ(pool.gateway(), A("10.88.1.1"));
  EXPECT_EQ(pool.first_host(), A("10.88.1.1"));
  EXPECT_EQ(pool.last_host(), A("10.88.1.254"));
  EXPECT_EQ(pool.capacity(), 253u);
  EXPECT_EQ(pool.last(), std::nullopt);
  EXPECT_EQ(*pool.Allocate("web-1/eth0"), A("10.88.1.2"));
  EXPECT_EQ(pool.last(), A("10.88.1.2"));
  EXPECT_THAT(pool.leases(), ElementsAre(Pair(A("10.88.1.2"), "web-1/eth0")));
}

TEST(PoolTest, ExplicitGatewayIsSkippedWhereverItIs) {
  Pool pool = MakePool("10.88.1.0/29", A("10.88.1.4"));
  std::vector<IpAddress> got;
  for (int i = 0; i < 5; ++i) got.push_back(*pool.Allocate(absl::StrCat("c", i)));
  EXPECT_THAT(got, ElementsAre(A("10.88.1.1"), A("10.88.1.2"), A("10.88.1.3"), A("10.88.1.5"),
                               A("10.88.1.6")));
  EXPECT_THAT(pool.Allocate("c9"), StatusIs(absl::StatusCode::kResourceExhausted,
                                            "no free address in 10.88.1.0/29 (5 of 5 leased)"));
}

TEST(PoolTest, GatewayMustBeAHostOfTheSubnet) {
  EXPECT_THAT(Pool::Create(P("10.88.1.0/24"), A("10.89.0.1")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "gateway 10.89.0.1 is outside subnet 10.88.1.0/24"));
  EXPECT_THAT(Pool::Create(P("10.88.1.0/24"), A("fd00::1")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "gateway fd00::1 is outside subnet 10.88.1.0/24"));
  EXPECT_THAT(Pool::Create(P("10.88.1.0/24"), A("10.88.1.0")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "gateway 10.88.1.0 is the network address of subnet 10.88.1.0/24"));
  EXPECT_THAT(Pool::Create(P("10.88.1.0/24"), A("10.88.1.255")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "gateway 10.88.1.255 is the broadcast address of subnet 10.88.1.0/24"));
  EXPECT_TRUE(Pool::Create(P("10.88.1.0/24"), A("10.88.1.254")).ok());
}

TEST(PoolTest, SubnetMustHoldAGatewayAndAContainer) {
  for (absl::string_view subnet : {"10.88.1.0/31", "10.88.1.1/32", "fd00::/127", "fd00::/128"}) {
    EXPECT_THAT(Pool::Create(P(subnet), std::nullopt),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("subnet ", subnet, " is too small")));
  }
  EXPECT_TRUE(Pool::Create(P("10.88.1.0/30"), std::nullopt).ok());
  EXPECT_TRUE(Pool::Create(P("fd00::/126"), std::nullopt).ok());
}

TEST(PoolTest, SlashThirtyHoldsExactlyOneContainer) {
  Pool pool = MakePool("10.88.1.0/30");
  EXPECT_EQ(pool.capacity(), 1u);
  EXPECT_EQ(*pool.Allocate("a"), A("10.88.1.2"));
  EXPECT_THAT(pool.Allocate("b"), StatusIs(absl::StatusCode::kResourceExhausted,
                                           "no free address in 10.88.1.0/30 (1 of 1 leased)"));
  pool.Release("a");
  EXPECT_EQ(*pool.Allocate("b"), A("10.88.1.2"));
}

TEST(PoolTest, SlashTwentyFourHandsOutExactly253Addresses) {
  Pool pool = MakePool("10.88.1.0/24");
  std::set<IpAddress> got;
  for (int i = 0; i < 253; ++i) {
    absl::StatusOr<IpAddress> address = pool.Allocate(absl::StrCat("c", i, "/eth0"));
    ASSERT_TRUE(address.ok()) << i << ": " << address.status();
    EXPECT_TRUE(got.insert(*address).second) << *address;
  }
  EXPECT_EQ(got.size(), 253u);
  EXPECT_EQ(*got.begin(), A("10.88.1.2"));
  EXPECT_EQ(*got.rbegin(), A("10.88.1.254"));
  EXPECT_FALSE(got.contains(A("10.88.1.0")));
  EXPECT_FALSE(got.contains(A("10.88.1.1")));
  EXPECT_FALSE(got.contains(A("10.88.1.255")));
  EXPECT_THAT(pool.Allocate("one-more/eth0"),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       "no free address in 10.88.1.0/24 (253 of 253 leased)"));
  EXPECT_EQ(pool.leases().size(), 253u);
}

TEST(PoolTest, AllocateContinuesAfterTheLastAndWrapsAround) {
  Pool pool = MakePool("10.88.1.0/29");  // hosts .1 (gateway) to .6
  EXPECT_EQ(*pool.Allocate("a"), A("10.88.1.2"));
  EXPECT_EQ(*pool.Allocate("b"), A("10.88.1.3"));
  pool.Release("a");
  // The just-released .2 is not reused at once.
  EXPECT_EQ(*pool.Allocate("c"), A("10.88.1.4"));
  EXPECT_EQ(*pool.Allocate("d"), A("10.88.1.5"));
  pool.Release("b");
  EXPECT_EQ(*pool.Allocate("e"), A("10.88.1.6"));
  // Past the last host: wrap around, skipping the gateway, to the first free address.
  EXPECT_EQ(*pool.Allocate("f"), A("10.88.1.2"));
  EXPECT_EQ(*pool.Allocate("g"), A("10.88.1.3"));
  EXPECT_THAT(pool.Allocate("h"), StatusIs(absl::StatusCode::kResourceExhausted, "(5 of 5"));
}

TEST(PoolTest, AllocateIsIdempotentPerOwner) {
  Pool pool = MakePool("10.88.1.0/24");
  IpAddress first = *pool.Allocate("web-1/eth0");
  EXPECT_EQ(*pool.Allocate("web-1/eth0"), first);
  EXPECT_EQ(pool.leases().size(), 1u);
  EXPECT_EQ(pool.last(), first);
  EXPECT_EQ(pool.Lookup("web-1/eth0"), first);
  EXPECT_EQ(pool.Lookup("web-2/eth0"), std::nullopt);
}

TEST(PoolTest, StaticRequestsAndTheirErrors) {
  Pool pool = MakePool("10.88.1.0/24");
  EXPECT_EQ(*pool.AllocateStatic(A("10.88.1.7"), "web-1/eth0"), A("10.88.1.7"));
  EXPECT_EQ(pool.Lookup("web-1/eth0"), A("10.88.1.7"));
  // The same owner asking again for its own address is fine.
  EXPECT_EQ(*pool.AllocateStatic(A("10.88.1.7"), "web-1/eth0"), A("10.88.1.7"));

  struct Case {
    std::string address;
    absl::StatusCode code;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"10.88.1.7", absl::StatusCode::kAlreadyExists,
            "address 10.88.1.7 is already leased to \"web-1/eth0\""},
           {"10.88.2.7", absl::StatusCode::kInvalidArgument,
            "address 10.88.2.7 is outside subnet 10.88.1.0/24"},
           {"fd00::7", absl::StatusCode::kInvalidArgument,
            "address fd00::7 is outside subnet 10.88.1.0/24"},
           {"10.88.1.1", absl::StatusCode::kInvalidArgument,
            "address 10.88.1.1 is the gateway of subnet 10.88.1.0/24"},
           {"10.88.1.0", absl::StatusCode::kInvalidArgument,
            "address 10.88.1.0 is the network address of subnet 10.88.1.0/24"},
           {"10.88.1.255", absl::StatusCode::kInvalidArgument,
            "address 10.88.1.255 is the broadcast address of subnet 10.88.1.0/24"},
       }) {
    EXPECT_THAT(pool.AllocateStatic(A(c.address), "web-2/eth0"), StatusIs(c.code, c.message));
  }
  // One address per owner and pool.
  EXPECT_THAT(pool.AllocateStatic(A("10.88.1.8"), "web-1/eth0"),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       "\"web-1/eth0\" already holds 10.88.1.7 in subnet 10.88.1.0/24"));
  EXPECT_EQ(pool.leases().size(), 1u);
}

TEST(PoolTest, StaticLeasesAreSkippedAndDoNotMoveTheCursor) {
  Pool pool = MakePool("10.88.1.0/24");
  ASSERT_TRUE(pool.AllocateStatic(A("10.88.1.2"), "s1").ok());
  ASSERT_TRUE(pool.AllocateStatic(A("10.88.1.3"), "s2").ok());
  ASSERT_TRUE(pool.AllocateStatic(A("10.88.1.100"), "s3").ok());
  EXPECT_EQ(pool.last(), std::nullopt);
  EXPECT_EQ(*pool.Allocate("d1"), A("10.88.1.4"));
  EXPECT_EQ(pool.last(), A("10.88.1.4"));
}

TEST(PoolTest, ReleaseIsIdempotent) {
  Pool pool = MakePool("10.88.1.0/24");
  IpAddress a = *pool.Allocate("a");
  EXPECT_EQ(pool.Release("a"), a);
  EXPECT_EQ(pool.Release("a"), std::nullopt);
  EXPECT_EQ(pool.Release("never"), std::nullopt);
  EXPECT_TRUE(pool.leases().empty());
  EXPECT_EQ(pool.Lookup("a"), std::nullopt);
  // A released address can be taken statically by someone else.
  EXPECT_EQ(*pool.AllocateStatic(a, "b"), a);
}

TEST(PoolTest, OwnersArePrintableAsciiWithoutSpaces) {
  Pool pool = MakePool("10.88.1.0/24");
  for (const std::string& bad :
       {std::string(), std::string("a b"), std::string("a\nb"), std::string("caf\xc3\xa9"),
        std::string("a\0b", 3), std::string(256, 'o')}) {
    EXPECT_THAT(pool.Allocate(bad), StatusIs(absl::StatusCode::kInvalidArgument, "lease owner"))
        << bad;
    EXPECT_THAT(pool.AllocateStatic(A("10.88.1.9"), bad),
                StatusIs(absl::StatusCode::kInvalidArgument, "lease owner"));
  }
  EXPECT_TRUE(pool.Allocate(std::string(255, 'o')).ok());
  EXPECT_TRUE(pool.leases().size() == 1);
}

TEST(PoolTest, Ipv6HasNoBroadcastButReservesTheSubnetRouterAddress) {
  Pool pool = MakePool("fd00::/126");
  EXPECT_EQ(pool.gateway(), A("fd00::1"));
  EXPECT_EQ(pool.capacity(), 2u);
  EXPECT_EQ(*pool.Allocate("a"), A("fd00::2"));
  EXPECT_EQ(*pool.Allocate("b"), A("fd00::3"));  // the last address is usable
  EXPECT_THAT(pool.Allocate("c"), StatusIs(absl::StatusCode::kResourceExhausted,
                                           "no free address in fd00::/126 (2 of 2 leased)"));
  EXPECT_THAT(pool.AllocateStatic(A("fd00::"), "c"),
              StatusIs(absl::StatusCode::kInvalidArgument, "is the network address"));
}

TEST(PoolTest, LargeIpv6SubnetsUseTheirFirst2To64Addresses) {
  Pool wide = MakePool("fd00:1::/48");
  EXPECT_EQ(wide.capacity(), UINT64_MAX - 1);  // 2^64 - 1 hosts, minus the gateway
  EXPECT_EQ(wide.last_host(), A("fd00:1::ffff:ffff:ffff:ffff"));
  EXPECT_THAT(wide.AllocateStatic(A("fd00:1:0:1::5"), "a"),
              StatusIs(absl::StatusCode::kInvalidArgument, "is not among the first 2^64"));
  EXPECT_EQ(*wide.AllocateStatic(A("fd00:1::ffff:ffff:ffff:ffff"), "a"),
            A("fd00:1::ffff:ffff:ffff:ffff"));
  // The cursor at the very last host wraps around to the start.
  Pool full_range = MakePool("fd00:2::/64");
  EXPECT_EQ(full_range.capacity(), UINT64_MAX - 1);
  ASSERT_TRUE(full_range.AllocateStatic(A("fd00:2::2"), "s").ok());
  EXPECT_EQ(*full_range.Allocate("x"), A("fd00:2::3"));
  // A gateway outside the first 2^64 addresses takes nothing from the capacity.
  absl::StatusOr<Pool> far_gateway = Pool::Create(P("fd00:3::/48"), A("fd00:3:0:ffff::1"));
  ASSERT_TRUE(far_gateway.ok()) << far_gateway.status();
  EXPECT_EQ(far_gateway->capacity(), UINT64_MAX);
  EXPECT_EQ(*far_gateway->Allocate("x"), A("fd00:3::1"));
}

TEST(PoolTest, AllocatesThousandsWithoutRescanning) {
  // 60000 leases take well under a second (a few with sanitizers). A scan from the subnet
  // start on each call would be ~1.8e9 steps, minutes: give up long before that.
  constexpr auto kBudget = std::chrono::seconds(30);
  const auto start = std::chrono::steady_clock::now();
  Pool pool = MakePool("10.0.0.0/16");
  for (int i = 0; i < 60000; ++i) {
    ASSERT_TRUE(pool.Allocate(absl::StrCat("c", i)).ok()) << i;
    if (i % 1000 == 0) {
      ASSERT_LT(std::chrono::steady_clock::now() - start, kBudget) << "after " << i;
    }
  }
  EXPECT_EQ(pool.leases().size(), 60000u);
  // Release a batch near the start; the cursor keeps going forward and only then wraps.
  for (int i = 0; i < 100; ++i) pool.Release(absl::StrCat("c", i));
  EXPECT_EQ(*pool.Allocate("next"), *IpAddress::V4(0x0a000000).Add(60002));
}

TEST(PoolTest, RestoreChecksEverything) {
  IpPrefix subnet = P("10.88.1.0/24");
  IpAddress gateway = A("10.88.1.1");
  absl::StatusOr<Pool> pool = Pool::Restore(subnet, gateway, A("10.88.1.3"),
                                            {{A("10.88.1.2"), "a"}, {A("10.88.1.3"), "b"}});
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ(pool->last(), A("10.88.1.3"));
  EXPECT_EQ(pool->Lookup("b"), A("10.88.1.3"));
  EXPECT_EQ(*pool->Allocate("c"), A("10.88.1.4"));

  EXPECT_THAT(Pool::Restore(subnet, gateway, std::nullopt, {{A("10.88.1.1"), "a"}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "lease of 10.88.1.1 to \"a\": address 10.88.1.1 is the gateway"));
  EXPECT_THAT(Pool::Restore(subnet, gateway, std::nullopt, {{A("10.88.2.1"), "a"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "is outside subnet"));
  EXPECT_THAT(
      Pool::Restore(subnet, gateway, std::nullopt, {{A("10.88.1.2"), "a"}, {A("10.88.1.3"), "a"}}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "lease of 10.88.1.3 to \"a\": the owner also holds 10.88.1.2"));
  EXPECT_THAT(Pool::Restore(subnet, gateway, std::nullopt, {{A("10.88.1.2"), ""}}),
              StatusIs(absl::StatusCode::kInvalidArgument, "lease owner"));
  EXPECT_THAT(Pool::Restore(subnet, gateway, A("10.88.1.255"), {}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "last allocated address: address 10.88.1.255 is the broadcast"));
  EXPECT_THAT(Pool::Restore(subnet, A("10.88.1.0"), std::nullopt, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "gateway 10.88.1.0 is the network"));
}

TEST(PoolTest, SetLastMovesTheCursorOrChangesNothing) {
  Pool pool = MakePool("10.88.1.0/24");
  ASSERT_TRUE(pool.SetLast(A("10.88.1.9")).ok());
  EXPECT_EQ(*pool.Allocate("a"), A("10.88.1.10"));
  EXPECT_THAT(pool.SetLast(A("10.88.1.255")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "last allocated address: address 10.88.1.255 is the broadcast"));
  EXPECT_THAT(pool.SetLast(A("10.88.1.1")),
              StatusIs(absl::StatusCode::kInvalidArgument, "is the gateway"));
  EXPECT_EQ(pool.last(), A("10.88.1.10"));
  // Undoing an Allocate: release the lease, put the old cursor back.
  pool.Release("a");
  ASSERT_TRUE(pool.SetLast(A("10.88.1.9")).ok());
  EXPECT_EQ(*pool.Allocate("a"), A("10.88.1.10"));
  ASSERT_TRUE(pool.SetLast(std::nullopt).ok());
  EXPECT_EQ(pool.last(), std::nullopt);
  EXPECT_EQ(*pool.Allocate("b"), A("10.88.1.2"));
}

// Property test: a long random sequence of operations, checked step by step against a model
// that is obviously right because it is a plain scan over every address.
struct PropertyCase {
  std::string subnet;
  std::optional<std::string> gateway;
};

void PrintTo(const PropertyCase& c, std::ostream* os) {
  *os << c.subnet << " gateway " << c.gateway.value_or("default");
}

class PoolPropertyTest : public ::testing::TestWithParam<PropertyCase> {};

TEST_P(PoolPropertyTest, MatchesASimpleModel) {
  const IpPrefix subnet = P(GetParam().subnet);
  std::optional<IpAddress> gateway;
  if (GetParam().gateway) gateway = A(*GetParam().gateway);
  Pool pool = MakePool(GetParam().subnet, gateway);
  ASSERT_LE(subnet.host_bits(), 16);  // the model enumerates the subnet

  const IpAddress network = subnet.network();
  const uint64_t size = uint64_t{1} << subnet.host_bits();
  const bool v4 = subnet.family() == Family::kV4;
  // Offsets that may be leased, in order.
  std::vector<uint64_t> hosts;
  for (uint64_t offset = 1; offset < (v4 ? size - 1 : size); ++offset) {
    if (*network.Add(offset) != pool.gateway()) hosts.push_back(offset);
  }
  ASSERT_EQ(pool.capacity(), hosts.size());

  std::map<uint64_t, std::string> model;  // offset -> owner
  std::map<std::string, uint64_t> owner_of;
  std::optional<uint64_t> cursor;
  auto model_next = [&]() -> std::optional<uint64_t> {
    // Next fit: the first free host after the cursor, else the first free host.
    for (uint64_t h : hosts) {
      if (cursor && h <= *cursor) continue;
      if (!model.contains(h)) return h;
    }
    for (uint64_t h : hosts) {
      if (!model.contains(h)) return h;
    }
    return std::nullopt;
  };

  std::mt19937_64 rng(20240611);
  // Twice as many owners as addresses, so the pool fills up and errors happen.
  const int owners = static_cast<int>(2 * hosts.size());
  std::uniform_int_distribution<int> pick_owner(0, owners - 1);
  std::uniform_int_distribution<int> pick_op(0, 99);
  // Static requests also aim at the reserved addresses and just past the subnet.
  std::uniform_int_distribution<uint64_t> pick_offset(0, size + 1);
  std::map<absl::StatusCode, int> outcomes;

  for (int step = 0; step < 6000; ++step) {
    SCOPED_TRACE(absl::StrCat("step ", step));
    // Alternate phases that fill the pool (until it is exhausted) and drain it (so the cursor
    // wraps around through holes).
    const bool filling = (step / 1000) % 2 == 0;
    const int allocate_below = filling ? 60 : 25;
    const int static_below = allocate_below + (filling ? 15 : 10);
    std::string owner = absl::StrCat("c", pick_owner(rng), "/eth0");
    int op = pick_op(rng);
    if (op < allocate_below) {
      absl::StatusOr<IpAddress> got = pool.Allocate(owner);
      outcomes[got.status().code()]++;
      if (auto it = owner_of.find(owner); it != owner_of.end()) {
        ASSERT_TRUE(got.ok()) << got.status();
        EXPECT_EQ(*got, *network.Add(it->second));
      } else if (std::optional<uint64_t> next = model_next()) {
        ASSERT_TRUE(got.ok()) << got.status();
        ASSERT_EQ(*got, *network.Add(*next));
        model[*next] = owner;
        owner_of[owner] = *next;
        cursor = next;
      } else {
        ASSERT_EQ(got.status().code(), absl::StatusCode::kResourceExhausted) << got.status();
      }
    } else if (op < static_below) {
      uint64_t offset = pick_offset(rng);
      std::optional<IpAddress> address = network.Add(offset);
      ASSERT_TRUE(address.has_value());
      absl::StatusOr<IpAddress> got = pool.AllocateStatic(*address, owner);
      outcomes[got.status().code()]++;
      bool leasable = offset < size && std::find(hosts.begin(), hosts.end(), offset) != hosts.end();
      if (!leasable) {
        ASSERT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << *address;
      } else if (auto it = model.find(offset); it != model.end()) {
        ASSERT_EQ(got.ok(), it->second == owner) << got.status();
        if (!got.ok()) {
          ASSERT_EQ(got.status().code(), absl::StatusCode::kAlreadyExists);
        }
      } else if (owner_of.contains(owner)) {
        ASSERT_EQ(got.status().code(), absl::StatusCode::kAlreadyExists) << got.status();
      } else {
        ASSERT_TRUE(got.ok()) << got.status();
        ASSERT_EQ(*got, *address);
        model[offset] = owner;
        owner_of[owner] = offset;
      }
    } else {
      std::optional<IpAddress> released = pool.Release(owner);
      if (auto it = owner_of.find(owner); it != owner_of.end()) {
        ASSERT_EQ(released, network.Add(it->second));
        model.erase(it->second);
        owner_of.erase(it);
      } else {
        ASSERT_EQ(released, std::nullopt);
      }
    }

    // Invariants, whatever the operation did.
    ASSERT_EQ(pool.leases().size(), model.size());
    ASSERT_LE(pool.leases().size(), pool.capacity());
    auto expected = model.begin();
    for (const auto& [address, holder] : pool.leases()) {
      ASSERT_TRUE(subnet.Contains(address)) << address;
      ASSERT_NE(address, network);
      ASSERT_NE(address, pool.gateway());
      if (v4) {
        ASSERT_NE(address, subnet.Last());
      }
      ASSERT_EQ(address, *network.Add(expected->first));
      ASSERT_EQ(holder, expected->second);
      ASSERT_EQ(pool.Lookup(holder), address);
      ++expected;
    }
    ASSERT_EQ(pool.Lookup(owner),
              owner_of.contains(owner) ? network.Add(owner_of[owner]) : std::nullopt);
  }
  // The sequence really exercised every outcome.
  EXPECT_GT(outcomes[absl::StatusCode::kOk], 100);
  EXPECT_GT(outcomes[absl::StatusCode::kResourceExhausted], 10);
  EXPECT_GT(outcomes[absl::StatusCode::kInvalidArgument], 1);
  EXPECT_GT(outcomes[absl::StatusCode::kAlreadyExists], 10);
}

INSTANTIATE_TEST_SUITE_P(Subnets, PoolPropertyTest,
                         ::testing::Values(PropertyCase{"10.88.1.0/24", std::nullopt},
                                           PropertyCase{"10.88.1.32/27", "10.88.1.45"},
                                           PropertyCase{"fd00:88::/120", std::nullopt},
                                           PropertyCase{"fd00:88::/124", "fd00:88::f"}));

}  // namespace
}  // namespace mesh::netplane::ipam
