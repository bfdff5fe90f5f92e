#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace mesh {

// Takes an exclusive flock(2) on `path` (created 0600 if missing; a symlink is refused) without
// waiting; the lock is held as long as the returned descriptor is open, and goes with the
// process whatever way it ends. flock locks an open file description, so a second TryLockFile
// of the same path fails even within one process.
// FailedPrecondition when another holder has it (the message names the path; callers say who
// that is likely to be); other errors as errno statuses.
absl::StatusOr<UniqueFd> TryLockFile(const std::string& path);

}  // namespace mesh
