#include "runtime/cgroups/layout.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mesh::runtime {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo octal.
std::string Unescape(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int value = 0;
      bool octal = true;
      for (size_t j = 1; j <= 3; ++j) {
        char c = s[i + j];
        if (c < '0' || c > '7') octal = false;
        value = value * 8 + (c - '0');
      }
      if (octal) {
        out += static_cast<char>(value);
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace

absl::StatusOr<CgroupLayout> ParseCgroupLayout(absl::string_view mountinfo) {
  CgroupLayout layout;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
    ++line_number;
    if (line.empty()) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    size_t dash = 0;
    for (size_t i = 6; i < fields.size(); ++i) {
      if (fields[i] == "-") {
        dash = i;
        break;
      }
    }
    if (dash == 0 || dash + 3 >= fields.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("mountinfo line ", line_number, ": malformed: \"", line, "\""));
    }
    absl::string_view fstype = fields[dash + 1];
    std::string mount_point = Unescape(fields[4]);
    if (fstype == "cgroup2") {
      if (!layout.v2) layout.v2 = mount_point;
    } else if (fstype == "cgroup") {
      for (absl::string_view option : absl::StrSplit(fields[dash + 3], ',')) {
        if (option == "rw" || option == "ro" || option.empty() || option == "xattr" ||
            option == "noprefix" || option == "clone_children" ||
            absl::StartsWith(option, "release_agent=")) {
          continue;
        }
        layout.v1.emplace(std::string(option), mount_point);
      }
    }
  }
  return layout;
}

}  // namespace mesh::runtime
