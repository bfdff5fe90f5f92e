#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace mesh::netplane::netfilter {

// A transport protocol (IPPROTO_TCP/UDP) and a port.
struct ProtoPort {
  int proto = 0;
  uint16_t port = 0;
};

// Flushes stale conntrack entries of host ports in the namespace it was opened in.
//
// Flush deletes the IPv4 conntrack entries whose protocol and ORIGINAL destination port match
// one of `ports`, in one walk, and returns how many it deleted. Why: a UDP client that sent to
// host:port before the port was published has a conntrack entry without DNAT; as long as it
// keeps sending, the entry never expires and its datagrams never reach the container.
// Matching on the original (host) port, not the container port, catches exactly those flows.
// Entries that vanish during the sweep count as deleted.
//
// It costs one read of nf_conntrack_count when the namespace tracks nothing, else a walk of
// the whole conntrack hash. The count file stays open and is re-read with pread: opening a
// /proc/sys file walks the namespace's sysctl tree, which grows with its interfaces (20 us
// next to 1 bridge port, 35 us next to 1000 here). Thread-safe.
class ConntrackFlusher {
 public:
  // Without the file (conntrack not loaded yet), each Flush tries to open it.
  static ConntrackFlusher Open();
  absl::StatusOr<int> Flush(const std::vector<ProtoPort>& ports) const;

 private:
  explicit ConntrackFlusher(UniqueFd count) : count_(std::move(count)) {}
  UniqueFd count_;  // /proc/sys/net/netfilter/nf_conntrack_count
};

}  // namespace mesh::netplane::netfilter
