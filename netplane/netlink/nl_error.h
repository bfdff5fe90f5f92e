#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mesh::netplane::netlink {

// libnl returns its own negative NLE_* codes, not errno. Maps them back to the errno the kernel
// gave (NLE_EXIST -> EEXIST, NLE_NODEV -> ENODEV, ...) so the status code is the one
// ErrnoToStatus would give, and the message reads like one:
//   `create bridge "mbr-0a1b2c3d4e5": File exists (EEXIST)`.
// `nl_error` may be given positive or negative; 0 is OK.
absl::Status NlErrorToStatus(int nl_error, absl::string_view what);

int NlErrorToErrno(int nl_error);

}  // namespace mesh::netplane::netlink
