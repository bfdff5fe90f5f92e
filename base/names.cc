#include "base/names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace mesh {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

std::string Describe(char c) {
  if (c == '\0') return "a NUL byte";
  if (c == ' ') return "a space";
  if (absl::ascii_isprint(static_cast<unsigned char>(c)))
    return absl::StrCat("'", std::string(1, c), "'");
  return absl::StrCat("byte 0x", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
}

}  // namespace

absl::string_view NameKindString(NameKind kind) {
  switch (kind) {
    case NameKind::kContainer:
      return "container";
    case NameKind::kNetwork:
      return "network";
    case NameKind::kGroup:
      return "group";
  }
  return "object";
}

absl::Status ValidateName(NameKind kind, absl::string_view name) {
  // Quote what the user gave, escaped, and cut so a 4 KiB name does not flood the message.
  std::string shown = absl::CEscape(name.substr(0, 80));
  if (name.size() > 80) shown += "...";
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat(NameKindString(kind), " name \"", shown, "\": ", what));
  };
  constexpr absl::string_view kRule =
      "use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit";

  if (name.empty()) return error(absl::StrCat("must not be empty; ", kRule));
  if (name.size() > kMaxNameLength) {
    return error(
        absl::StrCat("is ", name.size(), " characters long, the limit is ", kMaxNameLength));
  }
  if (name == "." || name == "..") {
    return error("is a path component, not a name; " + std::string(kRule));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (IsLowerAlnum(c) || c == '-') continue;
    std::string position = absl::StrCat(" at position ", i + 1);
    if (c >= 'A' && c <= 'Z') {
      return error(absl::StrCat("uppercase ", Describe(c), position, " is not allowed; use \"",
                                absl::CEscape(absl::AsciiStrToLower(name)), "\""));
    }
    if (c == '/')
      return error(absl::StrCat("'/'", position, " is not allowed (names are not paths)"));
    if (c == '.')
      return error(absl::StrCat("'.'", position,
                                " is not allowed (names are DNS labels, not domains); use '-'"));
    if (c == '_')
      return error(absl::StrCat("'_'", position, " is not allowed in a DNS label; use '-'"));
    return error(absl::StrCat(Describe(c), position, " is not allowed; ", kRule));
  }
  if (name.front() == '-') return error("must not start with '-' (it would read as a flag)");
  if (name.back() == '-') return error("must not end with '-'");
  return absl::OkStatus();
}

}  // namespace mesh
