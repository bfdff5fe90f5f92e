#include "runtime/image/reference.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mesh::runtime::image {
namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("image reference \"", absl::CHexEscape(text.substr(0, 300)), "\" ", why,
                   " (expected NAME[:TAG], e.g. \"busybox\" or \"registry.local:5000/app:1.2\")"));
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// component = alnum+ (separator alnum+)*, separator = "." | "_" | "__" | "-"+
bool ValidPathComponent(absl::string_view s) {
  if (s.empty() || !IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  for (size_t i = 0; i < s.size();) {
    if (IsLowerAlnum(s[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && !IsLowerAlnum(s[j])) ++j;
    absl::string_view sep = s.substr(i, j - i);
    bool dashes = sep.find_first_not_of('-') == absl::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
    i = j;
  }
  return true;
}

// domain = label ("." label)* [":" port]
bool ValidDomain(absl::string_view s) {
  absl::string_view host = s;
  if (size_t colon = s.find(':'); colon != absl::string_view::npos) {
    host = s.substr(0, colon);
    absl::string_view port = s.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    for (char c : port) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
    }
  }
  if (host.empty()) return false;
  for (absl::string_view label : absl::StrSplit(host, '.')) {
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
  }
  return true;
}

bool ValidTag(absl::string_view s) {
  if (s.empty() || s.size() > kMaxTagLength || s.front() == '.' || s.front() == '-') {
    return false;
  }
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<Reference> ParseReference(absl::string_view text) {
  if (text.empty()) return Bad(text, "is empty");
  if (text.find('@') != absl::string_view::npos) {
    return Bad(text, "is a digest reference; refer to an image by name or by its id instead");
  }
  Reference ref;
  absl::string_view name = text;
  size_t slash = text.rfind('/');
  size_t colon = text.rfind(':');
  if (colon != absl::string_view::npos && (slash == absl::string_view::npos || colon > slash)) {
    name = text.substr(0, colon);
    absl::string_view tag = text.substr(colon + 1);
    if (!ValidTag(tag)) {
      return Bad(text, absl::StrCat("has an invalid tag: a tag is 1 to ", kMaxTagLength,
                                    " of [A-Za-z0-9_.-], not starting with '.' or '-'"));
    }
    ref.tag = std::string(tag);
  } else {
    ref.tag = "latest";
  }
  if (name.empty()) return Bad(text, "has no name");
  if (name.size() > kMaxNameLength) {
    return Bad(text, absl::StrCat("has a name longer than ", kMaxNameLength, " characters"));
  }
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  size_t first = 0;
  if (parts.size() > 1 &&
      (parts[0].find_first_of(".:") != absl::string_view::npos || parts[0] == "localhost" ||
       parts[0] != absl::AsciiStrToLower(parts[0]))) {
    if (!ValidDomain(parts[0])) return Bad(text, "has an invalid registry host");
    first = 1;
  }
  for (size_t i = first; i < parts.size(); ++i) {
    if (!ValidPathComponent(parts[i])) {
      return Bad(text, absl::StrCat("has an invalid name component \"",
                                    absl::CHexEscape(parts[i].substr(0, 100)),
                                    "\": use lowercase letters and digits, joined by '.', '_', "
                                    "'__' or '-'"));
    }
  }
  ref.name = std::string(name);
  return ref;
}

}  // namespace mesh::runtime::image
