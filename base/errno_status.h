#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mesh {

// Maps an errno value to the absl::Status code a caller can act on:
// EEXIST -> AlreadyExists; ENOENT, ENODEV, ESRCH, ENXIO -> NotFound; EPERM, EACCES ->
// PermissionDenied; EINVAL, ERANGE, ENAMETOOLONG -> InvalidArgument; EBUSY, ENOTEMPTY ->
// FailedPrecondition; ENOSPC, ENOMEM, EMFILE, ENFILE, EAGAIN -> ResourceExhausted;
// ETIMEDOUT -> DeadlineExceeded; EOPNOTSUPP, ENOSYS -> Unimplemented; anything else -> Internal.
absl::StatusCode ErrnoToCode(int err);

// "what: File exists (EEXIST)". `what` names the operation and object, e.g.
// `create veth "mv-1a2b3c4d"`. Call it right at the failing syscall so errno is fresh.
absl::Status ErrnoToStatus(int err, absl::string_view what);

// Returns `status` with "context: " put before its message, keeping the code and payloads.
// OK stays OK.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace mesh
