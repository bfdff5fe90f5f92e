#pragma once

// A value a user gave, quoted for a message: escaped (NUL, control bytes and invalid UTF-8
// show as \x.. escapes) and cut after `max` bytes, so a hostile 4 KiB name cannot flood a
// message or a log.

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace mesh {

inline std::string Quote(absl::string_view s, size_t max = 80) {
  std::string out = absl::StrCat("\"", absl::CHexEscape(s.substr(0, max)), "\"");
  if (s.size() > max) absl::StrAppend(&out, "... (", s.size(), " bytes)");
  return out;
}

}  // namespace mesh
