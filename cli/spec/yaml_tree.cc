#include "cli/spec/yaml_tree.h"

#include <exception>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/exceptions.h"
#include "yaml-cpp/mark.h"
#include "yaml-cpp/parser.h"

namespace mesh::cli {
namespace {

// Thrown out of the event handler to stop yaml-cpp's parser at once (it unwinds cleanly: it
// throws its own exceptions the same way).
struct Refused : std::exception {
  Refused(const YAML::Mark& mark, std::string text) : line(mark.line + 1), column(mark.column + 1) {
    message = std::move(text);
  }
  const char* what() const noexcept override { return message.c_str(); }
  int line;
  int column;
  std::string message;
};

// The scan before yaml-cpp: counts characters, knows nothing of YAML's context.
bool PreScan(absl::string_view text, const YamlLimits& limits, YamlError& error) {
  size_t flow_starts = 0;
  size_t indicators = 0;
  int line = 1;
  int column = 1;
  for (char c : text) {
    switch (c) {
      case '[':
      case '{':
        if (++flow_starts > limits.max_flow_starts) {
          error = {line, column,
                   absl::StrCat("the document has more than ", limits.max_flow_starts,
                                " '[' and '{' characters (flow collections), more than a spec "
                                "may have; write long lists and maps in block style, one "
                                "item per line")};
          return false;
        }
        break;
      case ']':
      case '}':
      case ',':
      case ':':
      case '?':
      case '&':
      case '*':
      case '!':
      case '"':
      case '\'':
        if (++indicators > limits.max_indicators) {
          error = {line, column,
                   absl::StrCat("the document has more than ", limits.max_indicators,
                                " of the characters ] } , : ? & * ! \" ' (YAML's indicators), "
                                "more than a spec may have; split it, or move long text into "
                                "files")};
          return false;
        }
        break;
      default:
        break;
    }
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return true;
}

class TreeBuilder : public YAML::EventHandler {
 public:
  explicit TreeBuilder(const YamlLimits& limits) : limits_(limits) {}

  YamlNode::Ptr root() const { return root_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto node = NewNode(mark, YamlNode::Kind::kNull);
    Anchor(anchor, node);
    Add(node);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    // yaml-cpp refuses an alias of an anchor not yet seen; an anchor still open is an alias
    // inside the node it names.
    if (it == anchors_.end() || !it->second.done) {
      throw Refused(mark,
                    "this alias refers to a node that contains it (a cycle); YAML data cannot "
                    "contain itself");
    }
    Count(mark, it->second.node->expanded_size);
    Add(it->second.node);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    auto node = NewNode(mark, YamlNode::Kind::kScalar);
    node->value = value;
    // yaml-cpp tags a plain scalar "?" (non-specific) and a quoted or block one "!".
    node->plain = tag != "!";
    Anchor(anchor, node);
    Add(node);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, YamlNode::Kind::kList, anchor);
  }
  void OnSequenceEnd() override { Close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, YamlNode::Kind::kMap, anchor);
  }
  void OnMapEnd() override { Close(); }

 private:
  // A list or map being read.
  struct Frame {
    std::shared_ptr<YamlNode> node;
    YAML::anchor_t anchor = YAML::NullAnchor;
    YamlNode::Ptr pending_key;  // maps: the key whose value comes next
  };
  struct AnchorEntry {
    std::shared_ptr<YamlNode> node;
    bool done = false;
  };

  std::shared_ptr<YamlNode> NewNode(const YAML::Mark& mark, YamlNode::Kind kind) {
    Count(mark, 1);
    auto node = std::make_shared<YamlNode>();
    node->kind = kind;
    node->line = mark.line + 1;
    node->column = mark.column + 1;
    return node;
  }

  void Count(const YAML::Mark& mark, size_t n) {
    nodes_ += n;
    if (nodes_ > limits_.max_nodes) {
      throw Refused(mark, absl::StrCat("the document has more than ", limits_.max_nodes,
                                       " nodes (aliases expanded), more than a spec may have; "
                                       "if it uses aliases (*name), use fewer of them"));
    }
  }

  void Anchor(YAML::anchor_t anchor, const std::shared_ptr<YamlNode>& node) {
    if (anchor != YAML::NullAnchor) anchors_[anchor] = AnchorEntry{node, true};
  }

  void Open(const YAML::Mark& mark, YamlNode::Kind kind, YAML::anchor_t anchor) {
    if (static_cast<int>(open_.size()) >= limits_.max_depth) {
      throw Refused(mark, absl::StrCat("lists and maps are nested more than ", limits_.max_depth,
                                       " levels deep here, more than a spec may have"));
    }
    auto node = NewNode(mark, kind);
    if (anchor != YAML::NullAnchor) anchors_[anchor] = AnchorEntry{node, false};
    open_.push_back(Frame{node, anchor, nullptr});
  }

  void Close() {
    std::shared_ptr<YamlNode> node = std::move(open_.back().node);
    const YAML::anchor_t anchor = open_.back().anchor;
    open_.pop_back();
    for (const auto& item : node->items) node->expanded_size += item->expanded_size;
    for (const auto& [key, value] : node->entries) {
      node->expanded_size += key->expanded_size + value->expanded_size;
    }
    if (anchor != YAML::NullAnchor) anchors_[anchor].done = true;
    Add(node);
  }

  void Add(YamlNode::Ptr node) {
    if (open_.empty()) {
      root_ = std::move(node);
      return;
    }
    Frame& top = open_.back();
    if (top.node->kind == YamlNode::Kind::kList) {
      top.node->items.push_back(std::move(node));
    } else if (top.pending_key == nullptr) {
      top.pending_key = std::move(node);
    } else {
      top.node->entries.emplace_back(std::move(top.pending_key), std::move(node));
      top.pending_key = nullptr;
    }
  }

  const YamlLimits& limits_;
  YamlNode::Ptr root_;
  std::vector<Frame> open_;
  std::map<YAML::anchor_t, AnchorEntry> anchors_;
  size_t nodes_ = 0;
};

// yaml-cpp's messages say what it expected; the hint says what usually causes it. `line` is
// 0-based.
std::string SyntaxMessage(absl::string_view text, int line, const std::string& message) {
  absl::string_view hint = "check the indentation and the quoting here and on the lines above";
  size_t start = 0;
  for (int k = 0; k < line && start != absl::string_view::npos; ++k) {
    start = text.find('\n', start);
    if (start != absl::string_view::npos) ++start;
  }
  if (line >= 0 && start != absl::string_view::npos) {
    const absl::string_view rest = text.substr(start);
    const size_t indent = rest.find_first_not_of(" \t");
    if (rest.substr(0, indent).find('\t') != absl::string_view::npos) {
      hint = "indent with spaces, not tabs (YAML forbids tabs in indentation)";
    }
  }
  return absl::StrCat("YAML syntax error: ", message, "; ", hint);
}

}  // namespace

ParsedYaml ParseYaml(absl::string_view text, const YamlLimits& limits) {
  ParsedYaml result;
  if (text.size() > limits.max_bytes) {
    result.error.message =
        absl::StrCat("the document is ", text.size(), " bytes long, more than the ",
                     limits.max_bytes, " a spec may have; split it into smaller groups");
    return result;
  }
  if (!PreScan(text, limits, result.error)) return result;
  std::istringstream in{std::string(text)};
  try {
    YAML::Parser parser(in);
    TreeBuilder builder(limits);
    if (!parser.HandleNextDocument(builder) || builder.root() == nullptr) {
      // No document at all (empty text, or comments only).
      auto empty = std::make_shared<YamlNode>();
      empty->line = 1;
      empty->column = 1;
      result.root = std::move(empty);
      return result;
    }
    TreeBuilder second(limits);
    if (parser.HandleNextDocument(second)) {
      YamlNode::Ptr next = second.root();
      result.error = {next ? next->line : 0, next ? next->column : 0,
                      "a second YAML document starts here; a spec file holds one document "
                      "(remove the '---' line, or split the file)"};
      return result;
    }
    result.root = builder.root();
  } catch (const Refused& e) {
    result.error = {e.line, e.column, e.message};
  } catch (const YAML::Exception& e) {
    result.error = {e.mark.is_null() ? 0 : e.mark.line + 1,
                    e.mark.is_null() ? 0 : e.mark.column + 1,
                    SyntaxMessage(text, e.mark.is_null() ? -1 : e.mark.line, e.msg)};
  } catch (const std::exception& e) {
    result.error = {0, 0, absl::StrCat("cannot parse the YAML: ", e.what())};
  }
  return result;
}

}  // namespace mesh::cli
