#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace mesh::testing {

// The network state of a host that a test must leave as it found it: links (with details),
// addresses, routes and rules of every table for IPv4 and IPv6, the whole nftables ruleset,
// the named network namespaces and the forwarding sysctls. Taken with iproute2 and nft, so
// it is independent of mesh's own netlink code. Byte-for-byte comparable.
//
// `netns_fd` and `mntns_fd` select the namespaces to read (-1: the caller's own).
absl::StatusOr<std::string> TakeHostSnapshot(int netns_fd = -1, int mntns_fd = -1);

// Lines only in `before` ("- ...") and only in `after` ("+ ..."), for a readable failure.
std::string DiffLines(const std::string& before, const std::string& after);

}  // namespace mesh::testing
