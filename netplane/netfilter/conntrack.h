#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace mesh::netplane::netfilter {

// Deletes the IPv4 conntrack entries of protocol `proto` (IPPROTO_TCP/UDP) whose ORIGINAL
// destination port is `port`, in the caller's network namespace. Returns how many it deleted.
//
// Why: a UDP client that sent to host:port before the port was published has a conntrack entry
// without DNAT; as long as it keeps sending, the entry never expires and its datagrams never
// reach the container. Matching on the original (host) port, not the container port, catches
// exactly those flows. Entries that vanish during the sweep count as deleted.
absl::StatusOr<int> FlushConntrackByDestinationPort(int proto, uint16_t port);

}  // namespace mesh::netplane::netfilter
