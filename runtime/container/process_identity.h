#pragma once

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace mesh::runtime {

// A process named by its pid and its start time (field 22 of /proc/PID/stat, in clock ticks
// since boot): the pair never repeats, so a recorded identity cannot be mistaken for a new
// process that got the same pid.
struct ProcessIdentity {
  pid_t pid = 0;
  uint64_t start_time = 0;

  static absl::StatusOr<ProcessIdentity> Of(pid_t pid);
  // A pidfd for the process, checked to be this process: NotFound if it is gone (or its pid
  // now belongs to another process).
  absl::StatusOr<UniqueFd> Open() const;
  bool operator==(const ProcessIdentity&) const = default;
};

// Start time of `pid` from /proc/PID/stat; NotFound if there is no such process.
absl::StatusOr<uint64_t> ProcessStartTime(pid_t pid);

}  // namespace mesh::runtime
