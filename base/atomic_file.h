#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mesh {

// Replaces `path` with `contents` so that after a crash at any moment the file holds either the
// old or the new contents, never a mix: writes a temp file in the same directory, fsyncs it,
// renames it over `path`, then fsyncs the directory so the rename itself is durable.
// The directory must exist. On error nothing is left behind (the temp file is removed) and
// `path` is unchanged. Not safe against two writers of the same path at once: callers lock.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents,
                                 mode_t mode = 0644);

// Writes all of `data` to `fd`, retrying short writes and EINTR; `what` names the target in
// the error. Allocates only on error, so a forked child may call it.
absl::Status WriteAll(int fd, absl::string_view data, absl::string_view what);

// Reads a whole file. NotFound if it does not exist.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace mesh
