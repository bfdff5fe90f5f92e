#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mesh::netplane::netlink {

// Reads or writes /proc/sys/<key> ("net/ipv4/ip_forward"). The files under /proc/sys/net belong
// to the network namespace of the thread that opens them, so call these in the namespace meant
// (RunInNetns for another one).
absl::Status WriteSysctl(absl::string_view key, absl::string_view value);
absl::StatusOr<std::string> ReadSysctl(absl::string_view key);

}  // namespace mesh::netplane::netlink
