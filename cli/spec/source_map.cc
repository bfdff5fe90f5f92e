#include "cli/spec/source_map.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace mesh::cli {
namespace {

bool IsPathChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == '.'; }

// The field path that starts at `start` of `text`: names joined by '.', indexes "[3]" and
// map keys `["key"]` (with C escapes inside the quotes).
absl::string_view PathAt(absl::string_view text, size_t start) {
  size_t i = start;
  while (i < text.size()) {
    const char c = text[i];
    if (IsPathChar(c)) {
      ++i;
    } else if (c == '[') {
      size_t j = i + 1;
      if (j < text.size() && text[j] == '"') {
        for (++j; j < text.size() && text[j] != '"'; ++j) {
          if (text[j] == '\\') ++j;
        }
        if (j >= text.size()) break;
        ++j;  // the closing quote
      } else {
        while (j < text.size() && absl::ascii_isdigit(text[j])) ++j;
      }
      if (j >= text.size() || text[j] != ']') break;
      i = j + 1;
    } else {
      break;
    }
  }
  absl::string_view path = text.substr(start, i - start);
  while (!path.empty() && path.back() == '.') path.remove_suffix(1);
  return path;
}

// Where a path of a message starts: the first "spec" at or after `from` that begins a word, or
// npos.
size_t FindPathStart(absl::string_view message, size_t from) {
  for (size_t at = message.find("spec", from); at != message.npos;
       at = message.find("spec", at + 1)) {
    if (at > 0 && (IsPathChar(message[at - 1]) || message[at - 1] == ']')) continue;
    const size_t end = at + 4;
    if (end == message.size() || message[end] == '.' || message[end] == ':' ||
        message[end] == '[' || message[end] == ' ') {
      return at;
    }
  }
  return message.npos;
}

// The path without its last component: "a.b[2]" -> "a.b", "a.b" -> "a", "a" -> "". A '.' or
// '[' inside a quoted key is passed over.
absl::string_view Parent(absl::string_view path) {
  size_t cut = 0;
  bool quoted = false;
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '.' || c == '[') {
      cut = i;
    }
  }
  return path.substr(0, cut);
}

}  // namespace

void SourceMap::Add(std::string path, SourcePosition position) {
  positions_.emplace(std::move(path), std::move(position));
}

std::optional<SourcePosition> SourceMap::Find(absl::string_view path) const {
  auto it = positions_.find(path);
  if (it == positions_.end()) return std::nullopt;
  return it->second;
}

std::optional<SourcePosition> SourceMap::FindNearest(absl::string_view path) const {
  for (; !path.empty(); path = Parent(path)) {
    if (std::optional<SourcePosition> found = Find(path)) return found;
  }
  return std::nullopt;
}

std::string SourceMap::Locate(absl::string_view message) const {
  for (size_t start = FindPathStart(message, 0); start != message.npos;
       start = FindPathStart(message, start + 1)) {
    if (std::optional<SourcePosition> at = FindNearest(PathAt(message, start))) {
      return absl::StrCat(at->file, ":", at->line, ":", at->column, ": ", message);
    }
  }
  return std::string(message);
}

}  // namespace mesh::cli
