#pragma once

// meshd's embedded DNS server: UDP and TCP on port 53 of each network's gateway address, one
// event-loop thread for every socket (epoll). Names of the zone are answered at once (a client
// sees only the containers it shares a network with); other names are forwarded to the
// upstream resolvers in order, each given `upstream_timeout`, and the answer relayed; when
// every upstream failed or timed out the client gets SERVFAIL, never silence. Malformed
// packets are dropped and counted.

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/dns/message.h"
#include "agent/dns/zone.h"
#include "base/unique_fd.h"
#include "netplane/ipam/ip.h"

namespace mesh::agent::dns {

struct Upstream {
  netplane::ipam::IpAddress address;
  uint16_t port = 53;
  std::string ToString() const;  // "203.0.113.254:53"
};

struct ServerOptions {
  std::vector<Upstream> upstreams;  // none: names mesh does not know get SERVFAIL
  absl::Duration upstream_timeout = absl::Seconds(2);
  uint32_t ttl = 5;  // of mesh's own answers: members come and go
  uint16_t port = 53;
  size_t max_tcp_connections = 256;
  absl::Duration tcp_idle = absl::Seconds(10);
};

struct ServerStats {
  uint64_t queries = 0;    // well-formed queries received
  uint64_t answered = 0;   // answered from the zone: names found, NXDOMAIN for hidden ones,
                           // REFUSED for clients on internal networks only
  uint64_t forwarded = 0;  // answers relayed from an upstream
  uint64_t servfail = 0;   // SERVFAIL sent: no upstream, or every upstream failed
  uint64_t malformed = 0;  // packets dropped: not a query, or not DNS at all
};

class DnsServer {
 public:
  // The event loop runs on a thread of its own in the calling thread's network namespace
  // (upstream queries leave from there).
  static absl::StatusOr<std::unique_ptr<DnsServer>> Start(const Zone* zone, ServerOptions options);
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // Answers on `address`, UDP and TCP port `options.port`, in the calling thread's namespace.
  // The address need not be configured yet (IP_FREEBIND): a network's gateway is listened on
  // before its bridge comes back after a reboot. AlreadyExists if listening there already.
  absl::Status Listen(const netplane::ipam::IpAddress& address);
  // Stops answering there; returns once the loop has closed the sockets.
  void Unlisten(const netplane::ipam::IpAddress& address);
  std::vector<netplane::ipam::IpAddress> Listening() const;

  ServerStats Stats() const;
  const ServerOptions& options() const { return options_; }

 private:
  struct Listener;
  struct Connection;
  struct Forward;
  class Loop;

  DnsServer(const Zone* zone, ServerOptions options, UniqueFd epoll, UniqueFd wake);
  void Run();
  // Wakes the loop for the changes queued and waits until it took them.
  void AwaitLoopLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Zone* const zone_;
  const ServerOptions options_;
  const UniqueFd epoll_;
  const UniqueFd wake_;  // eventfd: listener changes and stop

  mutable absl::Mutex mu_;
  // Handed from Listen/Unlisten to the loop; `applied_` counts the changes it took.
  std::vector<std::unique_ptr<Listener>> to_add_ ABSL_GUARDED_BY(mu_);
  std::vector<netplane::ipam::IpAddress> to_remove_ ABSL_GUARDED_BY(mu_);
  std::vector<netplane::ipam::IpAddress> listening_ ABSL_GUARDED_BY(mu_);
  uint64_t requested_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t applied_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  std::atomic<uint64_t> queries_{0}, answered_{0}, forwarded_{0}, servfail_{0}, malformed_{0};
  std::thread thread_;
};

// The upstreams of a resolv.conf's text: its `nameserver` lines, IPv4, not loopback (those
// would be the host's own stub resolver, which a container's query through meshd cannot mean).
std::vector<Upstream> UpstreamsOfResolvConf(absl::string_view text);

// A list of upstreams as the config gives it: "ADDRESS[:PORT]" separated by commas or blanks
// ("203.0.113.254, 198.51.100.53:5353"), IPv4. Empty text: none. InvalidArgument naming the
// first bad entry.
absl::StatusOr<std::vector<Upstream>> ParseUpstreams(absl::string_view text);

}  // namespace mesh::agent::dns
