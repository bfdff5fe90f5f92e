#pragma once

// Resource limits (OCI process.rlimits): names to resource ids and validation. Applied by
// PreparedSecurity::ApplyInChild (process_security.h).

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/spec/spec.h"

namespace mesh::runtime::security {

// RLIM_INFINITY: "unlimited".
inline constexpr uint64_t kRlimitInfinity = ~uint64_t{0};

// Parses a limit name with the same rule as capabilities: case-insensitive, the "RLIMIT_"
// prefix optional ("RLIMIT_NOFILE", "nofile"). Returns the resource id (RLIMIT_NOFILE).
// InvalidArgument quoting `name` otherwise.
absl::StatusOr<int> ParseRlimitType(absl::string_view name);

// "RLIMIT_NOFILE"; "" for an unknown id.
absl::string_view RlimitName(int resource);

struct ResolvedRlimit {
  int resource = 0;
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// Resolves and checks every limit: InvalidArgument for an unknown name, soft > hard, or the
// same limit given twice. Order is kept.
absl::StatusOr<std::vector<ResolvedRlimit>> ResolveRlimits(const std::vector<Rlimit>& rlimits);

// Checks that the calling process may set `limits` on a child: raising a hard limit above its
// own needs CAP_SYS_RESOURCE (`can_raise` says whether the caller holds it). PermissionDenied
// naming the limit, both values and the fix otherwise. (These machines run without
// CAP_SYS_RESOURCE, see NOTES.md: there a hard limit can only be lowered.)
absl::Status CheckRlimitsAllowed(const std::vector<ResolvedRlimit>& limits, bool can_raise);

}  // namespace mesh::runtime::security
