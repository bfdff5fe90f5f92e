#include "base/wait.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace mesh {

absl::Status WaitFor(const std::function<bool()>& condition, absl::Duration timeout,
                     absl::string_view what, absl::Duration interval) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (condition()) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("timed out after ", absl::FormatDuration(timeout), " waiting for ", what));
    }
    absl::SleepFor(std::min(interval, std::max(deadline - absl::Now(), absl::ZeroDuration())));
    interval = std::min(interval * 2, absl::Milliseconds(100));
  }
}

}  // namespace mesh
