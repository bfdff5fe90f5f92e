#pragma once

// `meshctl graph`: a group's topology (its networks, members, the interfaces and addresses
// joining them, published ports, shared network namespaces) as Graphviz DOT or Mermaid. One
// model, two renderings; pure functions, so the text is tested without meshd.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mesh/v1/containers.pb.h"
#include "mesh/v1/groups.pb.h"
#include "mesh/v1/networks.pb.h"

namespace mesh::cli {

struct GraphNode {
  enum class Kind { kNetwork, kMember };
  Kind kind = Kind::kMember;
  std::string name;                // short name within the group
  std::vector<std::string> lines;  // label lines, the name first
};

struct GraphEdge {
  size_t from = 0;  // node indices
  size_t to = 0;
  std::string label;
  bool dashed = false;  // not a link: a member living in another's network namespace
  bool direct = false;  // a point-to-point link between two members (bold / thick)
};

struct Graph {
  std::string name;
  std::vector<GraphNode> nodes;  // networks first, then members, each in spec order
  std::vector<GraphEdge> edges;
};

// The model: `group` as meshd returns it, with its networks and containers as meshd lists
// them (their real subnets, interfaces and addresses; members not made yet keep what the spec
// says).
Graph BuildGraph(const v1::Group& group, const std::vector<v1::Network>& networks,
                 const std::vector<v1::Container>& containers);

// `graph "NAME" { ... }`: networks as boxes, members as ellipses, attachments as edges
// labelled with the interface and address, links as bold edges between members labelled with
// both ends.
std::string ToDot(const Graph& graph);
// `flowchart LR` with the same nodes and edges (n1, n2, ... as ids; labels escaped).
std::string ToMermaid(const Graph& graph);

// DOT rendered to SVG by Graphviz's `dot` (FailedPrecondition saying how to get it when it is
// not installed).
absl::StatusOr<std::string> RenderSvg(const std::string& dot);

}  // namespace mesh::cli
