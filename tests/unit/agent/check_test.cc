// The pure parts of `meshctl check` on meshd's side: probes and timeouts of a request, the
// matrix's default probes, which address of the receiver is probed, and how a trace decision
// reads. The probe itself joins a container's namespace: tested as root in
// MeshctlTest.UpThreeTierExampleReachesExactlyWhatThePolicyAllows and the lab and ring tests.
#include "agent/check/check.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace mesh::agent {
namespace {

using netplane::netfilter::TraceDecision;
using ::testing::HasSubstr;

std::string Text(in_addr a) {
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, text, sizeof(text));
  return text;
}

template <typename T>
T Parse(const std::string& text) {
  T out;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &out)) << text;
  return out;
}

TEST(ToProbeTargetTest, IcmpHasNoPortTcpAndUdpNeedOne) {
  in_addr dst{};
  absl::StatusOr<ProbeTarget> t = ToProbeTarget(v1::Probe(), dst, "probe");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->protocol, ProbeProtocol::kIcmp);
  t = ToProbeTarget(Parse<v1::Probe>("protocol: PROTOCOL_UDP port: 53"), dst, "probe");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->protocol, ProbeProtocol::kUdp);
  EXPECT_EQ(t->port, 53);
  absl::Status s =
      ToProbeTarget(Parse<v1::Probe>("protocol: PROTOCOL_TCP"), dst, "probes[1]").status();
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(s.message(), HasSubstr("probes[1].port: 0 is not a port (1-65535)"));
  s = ToProbeTarget(Parse<v1::Probe>("protocol: PROTOCOL_TCP port: 70000"), dst, "probe").status();
  EXPECT_THAT(s.message(), HasSubstr("70000 is not a port"));
  s = ToProbeTarget(Parse<v1::Probe>("protocol: PROTOCOL_ICMP port: 80"), dst, "probe").status();
  EXPECT_THAT(s.message(), HasSubstr("probe.port: 80 given for ICMP"));
  v1::Probe bad;
  bad.set_protocol(static_cast<v1::Probe::Protocol>(9));
  EXPECT_THAT(ToProbeTarget(bad, dst, "probe").status().message(),
              HasSubstr("probe.protocol: 9 is not ICMP, TCP or UDP"));
}

TEST(CheckTimeoutTest, DefaultBoundsAndErrors) {
  google::protobuf::Duration d;
  EXPECT_EQ(*CheckTimeout(false, d, "timeout"), absl::Seconds(1));
  d.set_nanos(300'000'000);
  EXPECT_EQ(*CheckTimeout(true, d, "timeout"), absl::Milliseconds(300));
  d.set_nanos(0);
  EXPECT_THAT(CheckTimeout(true, d, "timeout").status().message(),
              HasSubstr("timeout: 0 is not more than 0 and at most 30s"));
  d.set_seconds(31);
  EXPECT_TRUE(absl::IsInvalidArgument(CheckTimeout(true, d, "timeout").status()));
}

TEST(DefaultProbesTest, IcmpThenThePolicysPortsAndThePublishedOnes) {
  const v1::GroupSpec spec = Parse<v1::GroupSpec>(R"pb(
    name: "tiers"
    containers {
      spec {
        name: "web"
        ports { host_port: 8080 container_port: 80 }
      }
    }
    containers {
      spec {
        name: "dns"
        ports { protocol: PROTOCOL_UDP host_port: 53 container_port: 53 }
      }
    }
    policy {
      rules { action: ACTION_ALLOW from: "web" to: "app" ports: "tcp/8080" ports: "icmp" }
      rules {
        action: ACTION_ALLOW
        from: "app"
        to: "db"
        ports: "tcp/5432"
        ports: "tcp/80"
        ports: "udp"
      }
    }
  )pb");
  std::vector<std::string> got;
  for (const v1::Probe& p : DefaultProbes(spec)) {
    got.push_back(absl::StrCat(v1::Probe::Protocol_Name(p.protocol()), ":", p.port()));
  }
  EXPECT_THAT(got, ::testing::ElementsAre("PROTOCOL_ICMP:0", "PROTOCOL_TCP:80", "PROTOCOL_TCP:5432",
                                          "PROTOCOL_TCP:8080", "PROTOCOL_UDP:53"));
  EXPECT_EQ(DefaultProbes(v1::GroupSpec()).size(), 1u);
}

v1::Container Member(const std::string& name, const std::string& group,
                     std::vector<std::pair<std::string, std::string>> addresses) {
  v1::Container c;
  c.mutable_spec()->set_name(name);
  c.set_group(group);
  for (const auto& [network, ip] : addresses) {
    v1::ContainerAddress* a = c.add_addresses();
    a->set_network(network);
    a->set_ip(ip);
  }
  return c;
}

TEST(ChooseDestinationTest, SharedNetworkThenLinkThenFirstAddress) {
  const v1::GroupSpec lab = Parse<v1::GroupSpec>(R"pb(
    name: "lab"
    links {
      endpoints { container: "r1" interface: "eth1" addresses: "10.0.12.1/30" }
      endpoints { container: "r2" interface: "eth1" addresses: "10.0.12.2/30" }
    }
    links {
      endpoints { container: "r2" interface: "eth2" addresses: "10.0.23.1/30" }
      endpoints { container: "r3" interface: "eth2" addresses: "10.0.23.2/30" }
    }
  )pb");
  const v1::Container r1 = Member("lab-r1", "lab", {{"a", "10.77.1.2"}});
  const v1::Container r2 = Member("lab-r2", "lab", {{"b", "10.77.2.2"}, {"a", "10.77.1.3"}});
  const v1::Container r3 = Member("lab-r3", "lab", {});
  // A network both are on, even when it is not the receiver's first.
  EXPECT_EQ(Text(*ChooseDestination(r1, r2, &lab)), "10.77.1.3");
  // No shared network: the receiver's end of a link between them.
  EXPECT_EQ(Text(*ChooseDestination(r3, r2, &lab)), "10.0.23.1");
  // Neither: the receiver's first network address, then its first link address.
  EXPECT_EQ(Text(*ChooseDestination(r3, r1, &lab)), "10.77.1.2");
  EXPECT_EQ(Text(*ChooseDestination(r1, r3, &lab)), "10.0.23.2");
  // Without the group, links are unknown.
  absl::Status s = ChooseDestination(r1, r3, nullptr).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(s));
  EXPECT_THAT(s.message(), HasSubstr("container \"lab-r3\" has no IPv4 address to probe"));
}

TEST(ToApiDecisionTest, NamesTheRuleByItsComment) {
  TraceDecision d;
  d.verdict = TraceDecision::Verdict::kDropped;
  d.family = NFPROTO_INET;
  d.table = "mesh";
  d.chain = "forward";
  d.rule_handle = 27;
  const netplane::netfilter::RuleComments comments = {
      {{"forward", 27}, "policy tiers: default deny inside a network"}, {{"forward", 28}, ""}};
  v1::RuleDecision r = ToApiDecision(d, comments, "mesh");
  EXPECT_EQ(r.verdict(), v1::RuleDecision::VERDICT_DROPPED);
  EXPECT_EQ(r.table(), "inet mesh");
  EXPECT_EQ(r.chain(), "forward");
  EXPECT_EQ(r.rule_handle(), 27u);
  EXPECT_EQ(r.rule(), "policy tiers: default deny inside a network");
  EXPECT_TRUE(r.mesh());
  // Without a comment, the handle; another program's table is not mesh's.
  d.rule_handle = 28;
  d.family = NFPROTO_IPV4;
  d.table = "filter";
  r = ToApiDecision(d, comments, "mesh");
  EXPECT_EQ(r.table(), "ip filter");
  EXPECT_EQ(r.rule(), "rule handle 28");
  EXPECT_FALSE(r.mesh());
  // A chain's policy.
  d.verdict = TraceDecision::Verdict::kAccepted;
  d.by_policy = true;
  d.rule_handle = 0;
  EXPECT_EQ(ToApiDecision(d, comments, "mesh").rule(),
            "the policy of chain forward (no rule matched)");
  d.verdict = TraceDecision::Verdict::kNotTraced;
  EXPECT_EQ(ToApiDecision(d, comments, "mesh").verdict(), v1::RuleDecision::VERDICT_NOT_TRACED);
  EXPECT_TRUE(ToApiDecision(d, comments, "mesh").table().empty());
  d.verdict = TraceDecision::Verdict::kNoFilter;
  EXPECT_EQ(ToApiDecision(d, comments, "mesh").verdict(), v1::RuleDecision::VERDICT_NO_FILTER);
}

}  // namespace
}  // namespace mesh::agent
