#include "cli/graph.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace mesh::cli {
namespace {

using ::testing::ElementsAre;

template <typename T>
T Parse(const std::string& text) {
  T message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

// A router between two LANs, a client sharing the router's network namespace, a web server
// with a published port that meshd has not made yet, and a link between router and web.
struct Lab {
  v1::Group group = Parse<v1::Group>(R"pb(
    spec {
      name: "lab"
      networks { name: "lan-a" subnet: "10.77.1.0/24" internal: true }
      networks { name: "lan-b" disable_nat: true }
      containers {
        spec {
          name: "router"
          image: "busybox"
          networks { network: "lan-a" ip: "10.77.1.254" }
          networks { network: "lan-b" }
        }
      }
      containers { spec { name: "side" image: "busybox" network_from: "router" } }
      containers {
        spec {
          name: "web"
          image: "web:1"
          networks { network: "lan-b" ip: "10.77.2.80" }
          ports { protocol: PROTOCOL_TCP host_port: 8080 container_port: 80 }
        }
      }
      links {
        endpoints { container: "router" interface: "eth2" addresses: "10.0.12.1/30" }
        endpoints { container: "web" interface: "eth1" addresses: "10.0.12.2/30" }
      }
    }
  )pb");
  std::vector<v1::Network> networks = {
      Parse<v1::Network>(R"pb(spec { name: "lab-lan-a" subnet: "10.77.1.0/24" internal: true }
                              group: "lab")pb"),
      Parse<v1::Network>(R"pb(spec { name: "lab-lan-b" subnet: "10.88.3.0/24" disable_nat: true }
                              group: "lab")pb")};
  std::vector<v1::Container> containers = {Parse<v1::Container>(R"pb(spec { name: "lab-router" }
                                                                     state: CONTAINER_STATE_RUNNING
                                                                     addresses {
                                                                       network: "lab-lan-a"
                                                                       interface: "eth0"
                                                                       ip: "10.77.1.254"
                                                                       prefix_length: 24
                                                                     }
                                                                     addresses {
                                                                       network: "lab-lan-b"
                                                                       interface: "eth1"
                                                                       ip: "10.88.3.2"
                                                                       prefix_length: 24
                                                                     }
                                                                     group: "lab")pb"),
                                           Parse<v1::Container>(R"pb(spec { name: "lab-side" }
                                                                     state: CONTAINER_STATE_STOPPED
                                                                     group: "lab")pb")};
};

TEST(Graph, ModelHasNetworksMembersAttachmentsAndSharedNamespaces) {
  Lab lab;
  Graph graph = BuildGraph(lab.group, lab.networks, lab.containers);
  ASSERT_EQ(graph.nodes.size(), 5u);
  EXPECT_THAT(graph.nodes[0].lines, ElementsAre("lan-a", "10.77.1.0/24", "internal"));
  // The real subnet meshd chose, where the spec left it out.
  EXPECT_THAT(graph.nodes[1].lines, ElementsAre("lan-b", "10.88.3.0/24", "no NAT"));
  EXPECT_THAT(graph.nodes[2].lines, ElementsAre("router", "busybox", "running"));
  EXPECT_THAT(graph.nodes[3].lines, ElementsAre("side", "busybox", "stopped"));
  EXPECT_THAT(graph.nodes[4].lines,
              ElementsAre("web", "web:1", "not created", "0.0.0.0:8080->80/tcp"));
  ASSERT_EQ(graph.edges.size(), 5u);
  EXPECT_EQ(graph.edges[0].label, "eth0 10.77.1.254/24");
  EXPECT_EQ(graph.edges[1].label, "eth1 10.88.3.2/24");
  EXPECT_TRUE(graph.edges[2].dashed);
  EXPECT_EQ(graph.edges[2].from, 3u);
  EXPECT_EQ(graph.edges[2].to, 2u);
  EXPECT_EQ(graph.edges[3].label, "10.77.2.80");  // not made yet: what the spec asks
  EXPECT_TRUE(graph.edges[4].direct);
  EXPECT_EQ(graph.edges[4].label, "eth2 10.0.12.1/30 -- eth1 10.0.12.2/30");
}

TEST(Graph, Dot) {
  Lab lab;
  EXPECT_EQ(ToDot(BuildGraph(lab.group, lab.networks, lab.containers)),
            R"(graph "lab" {
  label="mesh group lab";
  node [fontname="sans-serif"];
  edge [fontname="sans-serif"];
  "network/lan-a" [shape=box, style=rounded, label="lan-a\n10.77.1.0/24\ninternal"];
  "network/lan-b" [shape=box, style=rounded, label="lan-b\n10.88.3.0/24\nno NAT"];
  "member/router" [shape=ellipse, label="router\nbusybox\nrunning"];
  "member/side" [shape=ellipse, label="side\nbusybox\nstopped"];
  "member/web" [shape=ellipse, label="web\nweb:1\nnot created\n0.0.0.0:8080->80/tcp"];
  "member/router" -- "network/lan-a" [label="eth0 10.77.1.254/24"];
  "member/router" -- "network/lan-b" [label="eth1 10.88.3.2/24"];
  "member/side" -- "member/router" [label="shares its network namespace", style=dashed];
  "member/web" -- "network/lan-b" [label="10.77.2.80"];
  "member/router" -- "member/web" [label="eth2 10.0.12.1/30 -- eth1 10.0.12.2/30", style=bold];
}
)");
}

TEST(Graph, Mermaid) {
  Lab lab;
  EXPECT_EQ(ToMermaid(BuildGraph(lab.group, lab.networks, lab.containers)),
            R"(---
title: mesh group lab
---
flowchart LR
  n1[["lan-a<br/>10.77.1.0/24<br/>internal"]]
  n2[["lan-b<br/>10.88.3.0/24<br/>no NAT"]]
  n3(["router<br/>busybox<br/>running"])
  n4(["side<br/>busybox<br/>stopped"])
  n5(["web<br/>web:1<br/>not created<br/>0.0.0.0:8080-#gt;80/tcp"])
  n3 ---|"eth0 10.77.1.254/24"| n1
  n3 ---|"eth1 10.88.3.2/24"| n2
  n4 -.-|"shares its network namespace"| n3
  n5 ---|"10.77.2.80"| n2
  n3 ===|"eth2 10.0.12.1/30 -- eth1 10.0.12.2/30"| n5
)");
}

TEST(Graph, LabelsCannotBreakOutOfTheirQuotes) {
  v1::Group group = Parse<v1::Group>(R"pb(
    spec {
      name: "q"
      containers { spec { name: "x" image: "a\"b\\c<d>" } }
    }
  )pb");
  const Graph graph = BuildGraph(group, {}, {});
  EXPECT_THAT(ToDot(graph), ::testing::HasSubstr(R"(label="x\na\"b\\c<d>\nnot created")"));
  EXPECT_THAT(ToMermaid(graph), ::testing::HasSubstr(R"(n1(["x<br/>a#quot;b\c#lt;d#gt;<br/>)"));
}

}  // namespace
}  // namespace mesh::cli
