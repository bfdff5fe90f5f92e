// meshd's DNS: messages through ldns, and the zone's names and who sees them.
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "agent/dns/ldns.h"
#include "agent/dns/message.h"
#include "agent/dns/resolv_conf.h"
#include "agent/dns/server.h"
#include "agent/dns/zone.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/dns_query.h"

namespace mesh::agent::dns {
namespace {

using netplane::ipam::IpAddress;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::QueryWire;

IpAddress Ip(const char* text) { return *IpAddress::Parse(text); }

struct Parsed {
  uint16_t id = 0;
  uint8_t rcode = 0;
  bool aa = false, tc = false, qr = false;
  std::vector<std::string> answers;  // "web.tiers.\t60\tIN\tA\t10.79.0.10"-like, as ldns prints
};
Parsed ParseResponse(const std::string& wire) {
  ldns_pkt* p = nullptr;
  EXPECT_EQ(ldns_wire2pkt(&p, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()),
            LDNS_STATUS_OK);
  Parsed out;
  if (p == nullptr) return out;
  out.id = ldns_pkt_id(p);
  out.rcode = ldns_pkt_get_rcode(p);
  out.aa = ldns_pkt_aa(p);
  out.tc = ldns_pkt_tc(p);
  out.qr = ldns_pkt_qr(p);
  const ldns_rr_list* answers = ldns_pkt_answer(p);
  for (size_t i = 0; answers != nullptr && i < ldns_rr_list_rr_count(answers); ++i) {
    char* text = ldns_rr2str(ldns_rr_list_rr(answers, i));
    std::string line = text;
    std::free(text);
    while (!line.empty() && line.back() == '\n') line.pop_back();
    out.answers.push_back(line);
  }
  ldns_pkt_free(p);
  return out;
}

TEST(ParseQueryTest, AStubResolversQuery) {
  absl::StatusOr<Query> q = ParseQuery(QueryWire("Web.Tiers.", LDNS_RR_TYPE_A));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->id, 0x1234);
  EXPECT_EQ(q->name, "web.tiers.");
  EXPECT_EQ(q->type, LDNS_RR_TYPE_A);
  EXPECT_EQ(q->klass, LDNS_RR_CLASS_IN);
  EXPECT_TRUE(q->recursion_desired);
  EXPECT_EQ(q->udp_size, 512);
}

TEST(ParseQueryTest, WhatIsNotAQueryIsRefused) {
  const std::string good = QueryWire("web.tiers.", LDNS_RR_TYPE_A);
  std::string response = good;
  response[2] = static_cast<char>(response[2] | 0x80);  // QR
  std::string notify = good;
  notify[2] = static_cast<char>((notify[2] & ~0x78) | (4 << 3));  // opcode NOTIFY
  std::string no_question = good;
  no_question[5] = 0;  // QDCOUNT 0
  for (const auto& [what, wire] : std::vector<std::pair<std::string, std::string>>{
           {"empty", ""},
           {"a header cut short", good.substr(0, 5)},
           {"a question cut short", good.substr(0, good.size() - 3)},
           {"a response", response},
           {"another opcode", notify},
           {"no question", no_question}}) {
    absl::StatusOr<Query> q = ParseQuery(wire);
    EXPECT_TRUE(absl::IsInvalidArgument(q.status())) << what;
    EXPECT_THAT(q.status().message(), HasSubstr("DNS message: ")) << what;
  }
}

// Random bytes, and a good query with random bytes flipped: refused or parsed, never a crash
// (the ASan build runs this too).
TEST(ParseQueryTest, GarbageNeverCrashes) {
  std::mt19937 random(7);
  const std::string good = QueryWire("web.tiers.", LDNS_RR_TYPE_A);
  for (int i = 0; i < 20000; ++i) {
    std::string wire;
    if (i % 2 == 0) {
      wire.resize(random() % 600);
      for (char& c : wire) c = static_cast<char>(random());
    } else {
      wire = good.substr(0, random() % (good.size() + 1));
      for (int k = 0; k < 3 && !wire.empty(); ++k) {
        wire[random() % wire.size()] = static_cast<char>(random());
      }
    }
    absl::StatusOr<Query> q = ParseQuery(wire);
    if (q.ok()) {
      EXPECT_TRUE(BuildResponse(*q, Reply{}).ok());
    }
  }
}

TEST(BuildResponseTest, AnswersOfTheQuestionsType) {
  Query q = *ParseQuery(QueryWire("web.tiers.", LDNS_RR_TYPE_A, 77));
  Reply r{.addresses = {Ip("10.79.0.10"), Ip("10.80.0.10"), Ip("fd00::10")}, .ttl = 60};
  absl::StatusOr<std::string> wire = BuildResponse(q, r);
  ASSERT_TRUE(wire.ok()) << wire.status();
  Parsed p = ParseResponse(*wire);
  EXPECT_EQ(p.id, 77);
  EXPECT_TRUE(p.qr);
  EXPECT_TRUE(p.aa);
  EXPECT_FALSE(p.tc);
  EXPECT_EQ(p.rcode, LDNS_RCODE_NOERROR);
  EXPECT_THAT(p.answers, ElementsAre("web.tiers.\t60\tIN\tA\t10.79.0.10",
                                     "web.tiers.\t60\tIN\tA\t10.80.0.10"));
  // AAAA of a name with IPv4 addresses only: no answer, no error (NODATA).
  q = *ParseQuery(QueryWire("web.tiers.", LDNS_RR_TYPE_AAAA));
  p = ParseResponse(*BuildResponse(q, Reply{.addresses = {Ip("10.79.0.10")}}));
  EXPECT_EQ(p.rcode, LDNS_RCODE_NOERROR);
  EXPECT_THAT(p.answers, IsEmpty());
  q = *ParseQuery(QueryWire("10.0.79.10.in-addr.arpa.", LDNS_RR_TYPE_PTR));
  p = ParseResponse(*BuildResponse(q, Reply{.names = {"tiers-web."}, .ttl = 60}));
  EXPECT_THAT(p.answers, ElementsAre("10.0.79.10.in-addr.arpa.\t60\tIN\tPTR\ttiers-web."));
  p = ParseResponse(*BuildResponse(q, Reply{.rcode = LDNS_RCODE_NXDOMAIN}));
  EXPECT_EQ(p.rcode, LDNS_RCODE_NXDOMAIN);
  EXPECT_THAT(p.answers, IsEmpty());
  p = ParseResponse(*BuildResponse(q, Reply{.rcode = LDNS_RCODE_SERVFAIL}));
  EXPECT_EQ(p.rcode, LDNS_RCODE_SERVFAIL);
  EXPECT_FALSE(p.aa);
}

TEST(BuildResponseTest, WhatDoesNotFitOverUdpIsLeftOutAndSaidSo) {
  Query q = *ParseQuery(QueryWire("web.tiers.", LDNS_RR_TYPE_A));
  Reply r;
  for (uint32_t i = 1; i <= 100; ++i) r.addresses.push_back(IpAddress::V4(0x0a000000 + i));
  absl::StatusOr<std::string> wire = BuildResponse(q, r, 512);
  ASSERT_TRUE(wire.ok()) << wire.status();
  EXPECT_LE(wire->size(), 512u);
  Parsed p = ParseResponse(*wire);
  EXPECT_TRUE(p.tc);
  EXPECT_GT(p.answers.size(), 10u);
  EXPECT_LT(p.answers.size(), 100u);
  EXPECT_EQ(ParseResponse(*BuildResponse(q, r)).answers.size(), 100u);  // TCP: all of them
}

TEST(MessageIdTest, ReadAndReplaced) {
  const std::string wire = QueryWire("web.tiers.", LDNS_RR_TYPE_A, 0xbeef);
  EXPECT_EQ(MessageId(wire), 0xbeef);
  EXPECT_EQ(MessageId(WithId(wire, 7)), 7);
  EXPECT_EQ(WithId(wire, 7).substr(2), wire.substr(2));
  EXPECT_EQ(MessageId("x"), 0);
}

TEST(ReverseNameTest, BothWays) {
  EXPECT_EQ(ReverseName(Ip("10.79.0.20")), "20.0.79.10.in-addr.arpa.");
  EXPECT_EQ(*AddressOfReverseName("20.0.79.10.in-addr.arpa."), Ip("10.79.0.20"));
  EXPECT_EQ(*AddressOfReverseName("20.0.79.10.in-addr.arpa"), Ip("10.79.0.20"));
  for (const char* bad : {"0.79.10.in-addr.arpa.", "256.0.79.10.in-addr.arpa.", "web.tiers.",
                          "a.0.79.10.in-addr.arpa.", "1.2.3.4.5.in-addr.arpa."}) {
    EXPECT_FALSE(AddressOfReverseName(bad).has_value()) << bad;
  }
}

// Two groups' networks and a container on both: who sees whom.
void FillLab(Zone& zone) {
  zone.Put({"tiers-web", "tiers", "web", {{"tiers", Ip("10.79.0.10"), {"www"}}}});
  zone.Put({"tiers-app",
            "tiers",
            "app",
            {{"tiers", Ip("10.79.0.20"), {}}, {"shared", Ip("10.90.0.20"), {"api"}}}});
  zone.Put({"other-db", "other", "db", {{"shared", Ip("10.90.0.30"), {}}}});
  zone.Put({"loner", "", "", {{"elsewhere", Ip("10.91.0.5"), {}}}});
}

TEST(ZoneTest, NamesResolveForClientsThatShareANetwork) {
  Zone zone;
  FillLab(zone);
  const IpAddress web = Ip("10.79.0.10");
  Lookup l = zone.Find("tiers-app.", web);
  EXPECT_EQ(l.kind, Lookup::Kind::kFound);
  EXPECT_THAT(l.addresses, ElementsAre(Ip("10.79.0.20")));  // only where web sees it
  EXPECT_THAT(zone.Find("app.tiers.", web).addresses, ElementsAre(Ip("10.79.0.20")));
  EXPECT_THAT(zone.Find("www.", Ip("10.79.0.20")).addresses, ElementsAre(Ip("10.79.0.10")));
  // db shares "shared" with app only: app sees it, web does not.
  EXPECT_THAT(zone.Find("db.other.", Ip("10.90.0.20")).addresses, ElementsAre(Ip("10.90.0.30")));
  EXPECT_EQ(zone.Find("db.other.", web).kind, Lookup::Kind::kHidden);
  EXPECT_EQ(zone.Find("other-db.", web).kind, Lookup::Kind::kHidden);
  // An alias holds on its own network only.
  EXPECT_THAT(zone.Find("api.", Ip("10.90.0.30")).addresses, ElementsAre(Ip("10.90.0.20")));
  EXPECT_EQ(zone.Find("api.", web).kind, Lookup::Kind::kHidden);
  // Not mesh's: forwarded.
  EXPECT_EQ(zone.Find("example.org.", web).kind, Lookup::Kind::kUnknown);
  EXPECT_EQ(zone.Find("web.", web).kind, Lookup::Kind::kUnknown);  // "web" alone is no name
  // A client mesh does not know sees nobody.
  EXPECT_EQ(zone.Find("tiers-app.", Ip("10.79.0.99")).kind, Lookup::Kind::kHidden);
}

TEST(ZoneTest, TheClientsGroupIsADomainOfTheNamesItSees) {
  Zone zone;
  FillLab(zone);
  const IpAddress web = Ip("10.79.0.10");
  // `search tiers` makes "tiers-app.tiers." of "tiers-app" and "www.tiers." of "www".
  EXPECT_THAT(zone.Find("tiers-app.tiers.", web).addresses, ElementsAre(Ip("10.79.0.20")));
  EXPECT_THAT(zone.Find("www.tiers.", Ip("10.79.0.20")).addresses, ElementsAre(web));
  EXPECT_THAT(zone.Find("app.tiers.tiers.", web).addresses, ElementsAre(Ip("10.79.0.20")));
  // What the client may not see stays hidden under the domain too.
  EXPECT_EQ(zone.Find("other-db.tiers.", web).kind, Lookup::Kind::kHidden);
  // Other names under the group's domain are not mesh's ("google.dev." in a group "dev").
  EXPECT_EQ(zone.Find("google.tiers.", web).kind, Lookup::Kind::kUnknown);
  // Nor is another group's domain, nor any domain for a client outside a group.
  EXPECT_EQ(zone.Find("www.other.", web).kind, Lookup::Kind::kUnknown);
  EXPECT_EQ(zone.Find("www.tiers.", Ip("10.91.0.5")).kind, Lookup::Kind::kUnknown);
}

TEST(ZoneTest, ClientsOnInternalNetworksOnlyAreNotForwarded) {
  Zone zone;
  FillLab(zone);
  zone.Put({"vault", "", "", {{"sealed", Ip("10.92.0.5"), {}, /*internal=*/true}}});
  zone.Put({"guard", "", "", {{"sealed", Ip("10.92.0.6"), {}, true}, {"shared", Ip("10.90.0.6")}}});
  EXPECT_EQ(zone.Find("example.org.", Ip("10.92.0.5")).kind, Lookup::Kind::kRefused);
  EXPECT_THAT(zone.Find("guard.", Ip("10.92.0.5")).addresses, ElementsAre(Ip("10.92.0.6")));
  // One network with a way out is enough to forward, as it is to reach out.
  EXPECT_EQ(zone.Find("example.org.", Ip("10.92.0.6")).kind, Lookup::Kind::kUnknown);
  // So are clients mesh does not know (the host itself).
  EXPECT_EQ(zone.Find("example.org.", Ip("10.92.0.1")).kind, Lookup::Kind::kUnknown);
}

TEST(ZoneTest, ReverseLookupsFollowTheSameRule) {
  Zone zone;
  FillLab(zone);
  Lookup l = zone.Find("20.0.79.10.in-addr.arpa.", Ip("10.79.0.10"));
  EXPECT_EQ(l.kind, Lookup::Kind::kFound);
  EXPECT_THAT(l.names, ElementsAre("tiers-app."));
  EXPECT_EQ(zone.Find("30.0.90.10.in-addr.arpa.", Ip("10.79.0.10")).kind, Lookup::Kind::kHidden);
  EXPECT_EQ(zone.Find("1.1.168.192.in-addr.arpa.", Ip("10.79.0.10")).kind, Lookup::Kind::kUnknown);
}

TEST(ZoneTest, EntriesComeAndGo) {
  Zone zone;
  FillLab(zone);
  EXPECT_EQ(zone.size(), 4u);
  zone.Remove("tiers-app");
  EXPECT_EQ(zone.Find("app.tiers.", Ip("10.79.0.10")).kind, Lookup::Kind::kUnknown);
  zone.Put({"tiers-app", "tiers", "app", {{"tiers", Ip("10.79.0.21"), {}}}});
  EXPECT_THAT(zone.Find("app.tiers.", Ip("10.79.0.10")).addresses, ElementsAre(Ip("10.79.0.21")));
  zone.Remove("nobody");
  EXPECT_EQ(zone.size(), 4u);
  // Put replaces every name: web loses its alias, and its old address is no client any more.
  zone.Put({"tiers-web", "tiers", "web", {{"tiers", Ip("10.79.0.11"), {}}}});
  EXPECT_EQ(zone.Find("www.", Ip("10.79.0.21")).kind, Lookup::Kind::kUnknown);
  EXPECT_EQ(zone.Find("app.tiers.", Ip("10.79.0.10")).kind, Lookup::Kind::kHidden);
  EXPECT_THAT(zone.Find("app.tiers.", Ip("10.79.0.11")).addresses, ElementsAre(Ip("10.79.0.21")));
  EXPECT_THAT(zone.Find("11.0.79.10.in-addr.arpa.", Ip("10.79.0.21")).names,
              ElementsAre("tiers-web."));
  EXPECT_EQ(zone.Find("10.0.79.10.in-addr.arpa.", Ip("10.79.0.21")).kind, Lookup::Kind::kUnknown);
  // On no network: still a name of mesh's, so NXDOMAIN rather than forwarded.
  zone.Put({"tiers-web", "tiers", "web", {}});
  EXPECT_EQ(zone.Find("tiers-web.", Ip("10.79.0.21")).kind, Lookup::Kind::kHidden);
}

TEST(UpstreamsOfResolvConfTest, NameserversButNotTheHostsOwnStub) {
  const std::vector<Upstream> got = UpstreamsOfResolvConf(
      "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2 # the office\n"
      "nameserver\t192.0.2.53\nnameserver ::1\nnameserver fd00::53\nsearch example.org\n"
      "nameserverx 192.0.2.99\noptions edns0\n");
  std::vector<std::string> text;
  for (const Upstream& u : got) text.push_back(u.ToString());
  EXPECT_THAT(text, ElementsAre("10.0.0.2:53", "192.0.2.53:53"));
  EXPECT_THAT(UpstreamsOfResolvConf(""), IsEmpty());
}

TEST(ParseUpstreamsTest, AddressesWithOptionalPorts) {
  absl::StatusOr<std::vector<Upstream>> got =
      ParseUpstreams(" 203.0.113.53,198.51.100.53:5353\t192.0.2.1 ");
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<std::string> text;
  for (const Upstream& u : *got) text.push_back(u.ToString());
  EXPECT_THAT(text, ElementsAre("203.0.113.53:53", "198.51.100.53:5353", "192.0.2.1:53"));
  EXPECT_THAT(*ParseUpstreams(""), IsEmpty());
  EXPECT_EQ(ParseUpstreams("203.0.113.53:x").status().message(),
            "upstream \"203.0.113.53:x\": the port must be a number from 1 to 65535");
  EXPECT_FALSE(ParseUpstreams("fd00::53").ok());
  EXPECT_FALSE(ParseUpstreams("203.0.113.53:70000").ok());
}

TEST(ResolvConfTest, ParsesWhatResolversRead) {
  const ResolvConf conf = ParseResolvConf(
      "# generated\nnameserver 10.0.0.2 # office\nnameserver\t::1\ndomain old.example\n"
      "search corp.example example.org ; comment\noptions ndots:2\noptions edns0\n"
      "nameserver\nsortlist 10.0.0.0\n");
  EXPECT_THAT(conf.nameservers, ElementsAre("10.0.0.2", "::1"));
  EXPECT_THAT(conf.search, ElementsAre("corp.example", "example.org"));  // the last one wins
  EXPECT_THAT(conf.options, ElementsAre("ndots:2", "edns0"));
  EXPECT_THAT(ParseResolvConf("search a.example\ndomain b.example c.example\n").search,
              ElementsAre("b.example"));
  EXPECT_TRUE(IsLoopbackNameserver("127.0.0.53"));
  EXPECT_TRUE(IsLoopbackNameserver("::1"));
  EXPECT_FALSE(IsLoopbackNameserver("10.127.0.1"));
}

TEST(ResolvConfTest, FormatsWhatItParses) {
  ResolvConf conf{
      .nameservers = {"10.88.0.1"}, .search = {"tiers", "example.org"}, .options = {"edns0"}};
  const std::string text = FormatResolvConf(conf, "line one\nline two");
  EXPECT_EQ(text,
            "# line one\n# line two\nnameserver 10.88.0.1\nsearch tiers example.org\n"
            "options edns0\n");
  const ResolvConf again = ParseResolvConf(text);
  EXPECT_EQ(again.nameservers, conf.nameservers);
  EXPECT_EQ(again.search, conf.search);
  EXPECT_EQ(again.options, conf.options);
  EXPECT_EQ(FormatResolvConf({}), "");
}

}  // namespace
}  // namespace mesh::agent::dns
