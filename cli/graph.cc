#include "cli/graph.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "base/atomic_file.h"
#include "base/child_process.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"
#include "cli/output.h"

namespace mesh::cli {
namespace {

// A member's or network's name within the group: "lab-router" of group "lab" is "router".
std::string ShortName(const std::string& group, const std::string& full) {
  absl::string_view name = full;
  return absl::ConsumePrefix(&name, absl::StrCat(group, "-")) ? std::string(name) : full;
}

}  // namespace

Graph BuildGraph(const v1::Group& group, const std::vector<v1::Network>& networks,
                 const std::vector<v1::Container>& containers) {
  const v1::GroupSpec& spec = group.spec();
  Graph graph;
  graph.name = spec.name();
  std::map<std::string, const v1::Network*> network_by_name;
  for (const v1::Network& n : networks) network_by_name[n.spec().name()] = &n;
  std::map<std::string, const v1::Container*> container_by_name;
  for (const v1::Container& c : containers) container_by_name[c.spec().name()] = &c;

  std::map<std::string, size_t> network_node, member_node;
  for (const v1::NetworkSpec& n : spec.networks()) {
    GraphNode node{GraphNode::Kind::kNetwork, n.name(), {n.name()}};
    auto made = network_by_name.find(absl::StrCat(spec.name(), "-", n.name()));
    const v1::NetworkSpec& real = made != network_by_name.end() ? made->second->spec() : n;
    if (!real.subnet().empty()) node.lines.push_back(real.subnet());
    if (real.internal()) {
      node.lines.push_back("internal");
    } else if (real.disable_nat()) {
      node.lines.push_back("no NAT");
    }
    network_node[n.name()] = graph.nodes.size();
    graph.nodes.push_back(std::move(node));
  }
  for (const v1::GroupContainer& member : spec.containers()) {
    const v1::ContainerSpec& s = member.spec();
    GraphNode node{GraphNode::Kind::kMember, s.name(), {s.name(), s.image()}};
    auto made = container_by_name.find(absl::StrCat(spec.name(), "-", s.name()));
    node.lines.push_back(made != container_by_name.end() ? StateName(made->second->state())
                                                         : "not created");
    for (const v1::PortMapping& p : s.ports()) node.lines.push_back(PortText(p));
    member_node[s.name()] = graph.nodes.size();
    graph.nodes.push_back(std::move(node));
  }
  for (const v1::GroupContainer& member : spec.containers()) {
    const v1::ContainerSpec& s = member.spec();
    const size_t from = member_node.at(s.name());
    if (!s.network_from().empty()) {
      if (auto other = member_node.find(s.network_from()); other != member_node.end()) {
        graph.edges.push_back({from, other->second, "shares its network namespace", true});
      }
      continue;
    }
    auto made = container_by_name.find(absl::StrCat(spec.name(), "-", s.name()));
    std::map<std::string, const v1::ContainerAddress*> address_of;
    if (made != container_by_name.end()) {
      for (const v1::ContainerAddress& a : made->second->addresses()) {
        address_of[ShortName(spec.name(), a.network())] = &a;
      }
    }
    for (const v1::NetworkAttachment& attachment : s.networks()) {
      auto network = network_node.find(attachment.network());
      if (network == network_node.end()) continue;  // not the group's (the spec loader refuses)
      std::string label = attachment.ip();
      if (auto a = address_of.find(attachment.network()); a != address_of.end()) {
        label = absl::StrCat(a->second->interface(), " ", a->second->ip(), "/",
                             a->second->prefix_length());
      }
      graph.edges.push_back({from, network->second, label, false});
    }
  }
  for (const v1::Link& link : spec.links()) {
    if (link.endpoints_size() != 2) continue;
    auto a = member_node.find(link.endpoints(0).container());
    auto b = member_node.find(link.endpoints(1).container());
    if (a == member_node.end() || b == member_node.end()) continue;
    std::vector<std::string> ends;
    for (const v1::LinkEndpoint& e : link.endpoints()) {
      std::vector<std::string> words = {e.interface()};
      words.insert(words.end(), e.addresses().begin(), e.addresses().end());
      ends.push_back(absl::StrJoin(words, " "));
    }
    graph.edges.push_back({a->second, b->second, absl::StrJoin(ends, " -- "), false, true});
  }
  return graph;
}

namespace {

std::string DotQuoted(absl::string_view text) {
  return absl::StrCat("\"", absl::StrReplaceAll(text, {{"\\", "\\\\"}, {"\"", "\\\""}}), "\"");
}

std::string DotId(const GraphNode& node) {
  return DotQuoted(
      absl::StrCat(node.kind == GraphNode::Kind::kNetwork ? "network/" : "member/", node.name));
}

// Mermaid's own escapes (entity codes) for what would end a label or start markup.
std::string MermaidText(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"\"", "#quot;"}, {"<", "#lt;"}, {">", "#gt;"}});
}

}  // namespace

std::string ToDot(const Graph& graph) {
  std::string out = absl::StrCat("graph ", DotQuoted(graph.name), " {\n");
  absl::StrAppend(&out, "  label=", DotQuoted(absl::StrCat("mesh group ", graph.name)), ";\n",
                  "  node [fontname=\"sans-serif\"];\n  edge [fontname=\"sans-serif\"];\n");
  for (const GraphNode& node : graph.nodes) {
    const char* shape = node.kind == GraphNode::Kind::kNetwork ? "box, style=rounded" : "ellipse";
    std::vector<std::string> lines;
    for (const std::string& line : node.lines) {
      lines.push_back(absl::StrReplaceAll(line, {{"\\", "\\\\"}, {"\"", "\\\""}}));
    }
    absl::StrAppend(&out, "  ", DotId(node), " [shape=", shape, ", label=\"",
                    absl::StrJoin(lines, "\\n"), "\"];\n");
  }
  for (const GraphEdge& edge : graph.edges) {
    absl::StrAppend(&out, "  ", DotId(graph.nodes[edge.from]), " -- ", DotId(graph.nodes[edge.to]),
                    " [label=", DotQuoted(edge.label), edge.dashed ? ", style=dashed" : "",
                    edge.direct ? ", style=bold" : "", "];\n");
  }
  return out + "}\n";
}

std::string ToMermaid(const Graph& graph) {
  std::string out =
      absl::StrCat("---\ntitle: ", MermaidText(absl::StrCat("mesh group ", graph.name)),
                   "\n---\nflowchart LR\n");
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const GraphNode& node = graph.nodes[i];
    std::vector<std::string> lines;
    for (const std::string& line : node.lines) lines.push_back(MermaidText(line));
    const std::string label = absl::StrCat("\"", absl::StrJoin(lines, "<br/>"), "\"");
    // A network is a subroutine box [[...]], a member a stadium ([...]).
    absl::StrAppend(&out, "  n", i + 1,
                    node.kind == GraphNode::Kind::kNetwork ? absl::StrCat("[[", label, "]]")
                                                           : absl::StrCat("([", label, "])"),
                    "\n");
  }
  for (const GraphEdge& edge : graph.edges) {
    absl::StrAppend(&out, "  n", edge.from + 1,
                    edge.dashed ? " -.-" : (edge.direct ? " ===" : " ---"));
    if (!edge.label.empty()) absl::StrAppend(&out, "|\"", MermaidText(edge.label), "\"|");
    absl::StrAppend(&out, " n", edge.to + 1, "\n");
  }
  return out;
}

absl::StatusOr<std::string> RenderSvg(const std::string& dot) {
  char path[] = "/tmp/meshctl-graph-XXXXXX";
  UniqueFd fd(mkstemp(path));
  if (!fd.valid()) return ErrnoToStatus(errno, "graph: make a temporary file");
  absl::Status written = WriteAll(fd.get(), dot, path);
  absl::StatusOr<CommandResult> run =
      written.ok() ? RunCommand({.argv = {"dot", "-Tsvg", path}}, absl::Seconds(60))
                   : absl::StatusOr<CommandResult>(written);
  unlink(path);
  if (absl::IsNotFound(run.status()) || (run.ok() && run->status.code == 127)) {
    return absl::FailedPreconditionError(
        "graph -o svg needs Graphviz's dot (apt install graphviz); -o dot prints the source");
  }
  if (!run.ok()) return run.status();
  if (!run->status.ok()) {
    return absl::InternalError(absl::StrCat("graph: dot ", run->status.ToString(), ": ", run->err));
  }
  return run->out;
}

}  // namespace mesh::cli
