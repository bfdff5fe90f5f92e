// `meshctl check`: the probe syntax, and how a check and a matrix read.
#include "cli/check.h"

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace mesh::cli {
namespace {

using ::testing::HasSubstr;

template <typename T>
T Parse(const std::string& text) {
  T out;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &out)) << text;
  return out;
}

TEST(ParseProbeTest, EverySpelling) {
  for (const auto& [text, want] :
       std::vector<std::pair<std::string, std::string>>{{"icmp", "icmp"},
                                                        {"ping", "icmp"},
                                                        {"ICMP", "icmp"},
                                                        {"8080/tcp", "8080/tcp"},
                                                        {"tcp/8080", "8080/tcp"},
                                                        {"8080", "8080/tcp"},
                                                        {"53/udp", "53/udp"},
                                                        {"udp/53", "53/udp"},
                                                        {"65535/TCP", "65535/tcp"}}) {
    absl::StatusOr<v1::Probe> p = ParseProbe(text);
    ASSERT_TRUE(p.ok()) << text << ": " << p.status();
    EXPECT_EQ(ProbeText(*p), want) << text;
  }
  for (const char* bad : {"", "0", "65536", "80/sctp", "tcp", "http", "80/", "/80", "1e3/tcp",
                          "+80/tcp", "tcp/8080/udp"}) {
    absl::StatusOr<v1::Probe> p = ParseProbe(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(p.status())) << bad;
    EXPECT_THAT(p.status().message(), HasSubstr("is not a probe; write icmp, PORT/tcp")) << bad;
  }
}

TEST(FormatCheckTest, OutcomeAndTheRuleThatDecided) {
  v1::CheckResult allowed = Parse<v1::CheckResult>(R"pb(
    from: "tiers-web"
    to: "tiers-app"
    source: "10.79.0.10"
    destination: "10.79.0.20"
    probe { protocol: PROTOCOL_TCP port: 8080 }
    outcome: OUTCOME_OPEN
    reachable: true
    detail: "connected"
    decision {
      verdict: VERDICT_ACCEPTED
      table: "inet mesh"
      chain: "forward"
      rule_handle: 25
      rule: "policy tiers rule 1: web calls the app"
      mesh: true
    }
    elapsed { nanos: 380000 }
  )pb");
  EXPECT_EQ(FormatCheck(allowed),
            "tiers-web -> tiers-app (10.79.0.20) 8080/tcp: reachable, connected in 0.38 ms\n"
            "  accepted by rule \"policy tiers rule 1: web calls the app\" (inet mesh forward, "
            "handle 25)\n");

  v1::CheckResult dropped = Parse<v1::CheckResult>(R"pb(
    from: "a"
    to: "10.0.0.9"
    source: "10.0.0.2"
    destination: "10.0.0.9"
    probe { protocol: PROTOCOL_UDP port: 53 }
    outcome: OUTCOME_BLOCKED
    detail: "dropped on the way"
    decision {
      verdict: VERDICT_DROPPED
      table: "ip filter"
      chain: "forward"
      rule: "the policy of chain forward (no rule matched)"
    }
    elapsed { seconds: 0 nanos: 12000000 }
  )pb");
  EXPECT_EQ(FormatCheck(dropped),
            "a -> 10.0.0.9 53/udp: blocked, dropped on the way in 12 ms\n"
            "  dropped by the policy of chain forward (no rule matched) (ip filter forward; not a "
            "table of mesh)\n");

  v1::CheckResult link = Parse<v1::CheckResult>(R"pb(
    from: "ring-r1"
    to: "ring-r2"
    source: "10.78.12.1"
    destination: "10.78.12.2"
    outcome: OUTCOME_NO_ANSWER
    decision { verdict: VERDICT_NOT_TRACED }
    elapsed { seconds: 1 }
  )pb");
  EXPECT_EQ(FormatCheck(link),
            "ring-r1 -> ring-r2 (10.78.12.2) icmp: no answer after 1000 ms\n"
            "  no rule of the host saw it (a link between two containers, or an address of the "
            "sender itself)\n");

  v1::CheckResult unrouted = Parse<v1::CheckResult>(R"pb(
    from: "a"
    to: "b"
    destination: "10.9.9.9"
    outcome: OUTCOME_UNREACHABLE
    detail: "network unreachable"
    decision { verdict: VERDICT_NOT_TRACED }
  )pb");
  EXPECT_EQ(FormatCheck(unrouted), "a -> b (10.9.9.9) icmp: unreachable, network unreachable\n");
}

TEST(FormatMatrixTest, RowsSendColumnsReceive) {
  v1::CheckGroupResponse response = Parse<v1::CheckGroupResponse>(R"pb(
    containers: "tiers-web"
    containers: "tiers-app"
    probes { protocol: PROTOCOL_ICMP }
    probes { protocol: PROTOCOL_TCP port: 8080 }
    results {
      from: "tiers-web"
      to: "tiers-app"
      probe { protocol: PROTOCOL_ICMP }
    }
    results {
      from: "tiers-web"
      to: "tiers-app"
      probe { protocol: PROTOCOL_TCP port: 8080 }
      reachable: true
    }
    results {
      from: "tiers-app"
      to: "tiers-web"
      probe { protocol: PROTOCOL_ICMP }
      reachable: true
    }
    results {
      from: "tiers-app"
      to: "tiers-web"
      probe { protocol: PROTOCOL_TCP port: 8080 }
      reachable: true
    }
  )pb");
  EXPECT_EQ(FormatMatrix(response, "tiers"),
            "FROM \\ TO  web            app\n"
            "web        \\              8080/tcp\n"
            "app        icmp,8080/tcp  \\\n"
            "probes: icmp 8080/tcp; a cell lists those that reached TO (answered or refused), - "
            "none\n");
}

TEST(FormatWhyTest, EachProbeWithWhatDecided) {
  v1::CheckGroupResponse response = Parse<v1::CheckGroupResponse>(R"pb(
    containers: "tiers-web"
    containers: "tiers-db"
    results {
      from: "tiers-web"
      to: "tiers-db"
      probe { protocol: PROTOCOL_TCP port: 5432 }
      outcome: OUTCOME_BLOCKED
      decision {
        verdict: VERDICT_DROPPED
        table: "inet mesh"
        chain: "forward"
        rule_handle: 27
        rule: "policy tiers: default deny inside a network"
        mesh: true
      }
    }
    results {
      from: "tiers-db"
      to: "tiers-web"
      probe { protocol: PROTOCOL_ICMP }
      outcome: OUTCOME_OPEN
      reachable: true
      decision {
        verdict: VERDICT_ACCEPTED
        table: "ip filter"
        chain: "forward"
        rule: "the policy of chain forward (no rule matched)"
      }
    }
    results {
      from: "tiers-db"
      to: "tiers-web"
      probe { protocol: PROTOCOL_UDP port: 53 }
      outcome: OUTCOME_NO_ANSWER
      decision { verdict: VERDICT_NOT_TRACED }
    }
  )pb");
  EXPECT_EQ(FormatWhy(response, "tiers"),
            "web -> db  5432/tcp  blocked    dropped by \"policy tiers: default deny inside a "
            "network\"\n"
            "db -> web  icmp      reachable  accepted by the policy of chain forward (no rule "
            "matched) (ip filter)\n"
            "db -> web  53/udp    no answer  not traced\n");
}

}  // namespace
}  // namespace mesh::cli
