#pragma once

// Sysctls a container may set (OCI linux.sysctl): only those of its own namespaces, as Docker
// allows them, so that no container changes the host: net.* (its network namespace) and the
// IPC ones (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*: its IPC namespace).

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mesh::runtime {

enum class SysctlNamespace { kNetwork, kIpc };

// `name` in dot form ("net.ipv4.ip_forward") and `value`: InvalidArgument saying what is wrong
// and what to write. Which namespace the sysctl belongs to otherwise.
absl::StatusOr<SysctlNamespace> ValidateSysctl(absl::string_view name, absl::string_view value);

// "/proc/sys/net/ipv4/ip_forward" for "net.ipv4.ip_forward" (of a validated name).
std::string SysctlPath(absl::string_view name);

}  // namespace mesh::runtime
