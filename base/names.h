#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mesh {

// What a name names; used in error messages ("network name ...").
enum class NameKind { kContainer, kNetwork, kGroup };

inline constexpr size_t kMaxNameLength = 63;

// Names of containers, networks and groups follow the DNS label rule (RFC 1123), because they
// become host names and DNS names, and appear in paths under the state dir: 1 to 63 characters,
// lowercase ASCII letters, digits and '-', starting and ending with a letter or digit.
// So ".", "..", "/", NUL, spaces and a leading dash are all rejected. Returns InvalidArgument
// with a message that quotes the name (escaped), says what is wrong, where, and how to fix it.
absl::Status ValidateName(NameKind kind, absl::string_view name);

absl::string_view NameKindString(NameKind kind);

}  // namespace mesh
