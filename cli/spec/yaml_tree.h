#pragma once

// A YAML document as a tree that keeps what the spec loader needs and yaml-cpp's node API
// hides or gets wrong for untrusted input: the line and column of every node, every key of a
// map in order (duplicates included), whether a scalar was quoted, and hard limits on what a
// document may cost to parse.
//
// yaml-cpp is driven through its event API. Two of its behaviours are guarded against:
// - Its parser recurses once per nesting level; the tree refuses a document deeper than
//   `max_depth` while parsing, so the stack stays small.
// - Its scanner keeps every token of a flow collection ("[...]", "{...}") that might be a
//   key in memory until the collection ends: some 100 to 250 bytes per indicator character.
//   A cheap scan of the text bounds the flow collections and indicator characters before
//   yaml-cpp sees it.
// Aliases share the node of their anchor (a tree is a DAG); `max_nodes` bounds the node count
// with every alias expanded, which stops "billion laughs" documents.

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace mesh::cli {

struct YamlNode {
  enum class Kind { kNull, kScalar, kList, kMap };
  using Ptr = std::shared_ptr<const YamlNode>;

  Kind kind = Kind::kNull;
  // 1-based. Where the node starts: its first character, or its anchor or tag.
  int line = 0;
  int column = 0;
  // kScalar: the text after YAML's escapes and folding.
  std::string value;
  // kScalar: written plain (no quotes, no '|' or '>'). A plain `null`, `~` or nothing at all
  // is a kNull node, a quoted "null" a scalar.
  bool plain = true;
  // kList: the items, in order.
  std::vector<Ptr> items;
  // kMap: key and value of each entry, in order, duplicate keys included.
  std::vector<std::pair<Ptr, Ptr>> entries;
  // Nodes in this subtree with every alias expanded (this node included).
  size_t expanded_size = 1;
};

struct YamlLimits {
  // Bytes of YAML text.
  size_t max_bytes = size_t{4} << 20;
  // Nested lists and maps.
  int max_depth = 64;
  // Nodes with every alias expanded.
  size_t max_nodes = 100000;
  // '[' and '{' in the text (whether in a quoted string, a comment or not: the scan does not
  // parse), and of the other indicator characters `] } , : ? & * ! " '`.
  size_t max_flow_starts = 20000;
  size_t max_indicators = 200000;
};

// A problem with the text: 1-based line and column (0 when it is about the whole text).
struct YamlError {
  int line = 0;
  int column = 0;
  std::string message;
};

// The root of the document, or (root null) the first problem found.
struct ParsedYaml {
  YamlNode::Ptr root;
  YamlError error;
};

// Parses one YAML document. Returns its root (a kNull node for an empty document), or the
// first problem: a syntax error (as yaml-cpp reports it, with a hint), a second document, or a
// limit exceeded. Never throws.
ParsedYaml ParseYaml(absl::string_view text, const YamlLimits& limits);

}  // namespace mesh::cli
