#pragma once

#include <functional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mesh {

// Polls `condition` until it returns true or `timeout` passes, sleeping `interval` (growing up
// to 100 ms) between tries. Returns DeadlineExceeded naming `what` on timeout. For tests and
// for waiting on the kernel; never a substitute for a real notification where one exists.
absl::Status WaitFor(const std::function<bool()>& condition, absl::Duration timeout,
                     absl::string_view what, absl::Duration interval = absl::Milliseconds(5));

// Waits until `fd` is readable (or has hung up), up to `timeout` (InfiniteDuration: forever),
// retrying EINTR. False on timeout or a poll error.
bool WaitReadable(int fd, absl::Duration timeout);

}  // namespace mesh
