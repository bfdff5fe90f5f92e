#pragma once

// One probe of `meshctl check`: a socket made in a container's network namespace (RunInNetns:
// no meshd thread but a short-lived one ever switches), then an ICMP echo request, a TCP
// connect or a UDP datagram, and what comes back. Prepare() picks the source address and port
// without sending anything, so the caller can start tracing that exact packet first.

#include <netinet/in.h>
#include <poll.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/ns/namespace_handle.h"
#include "base/unique_fd.h"
#include "netplane/netfilter/nft_trace.h"

namespace mesh::agent {

enum class ProbeProtocol { kIcmp, kTcp, kUdp };

struct ProbeTarget {
  ProbeProtocol protocol = ProbeProtocol::kIcmp;
  in_addr destination{};
  uint16_t port = 0;  // TCP and UDP
};

struct ProbeOutcome {
  enum class Kind {
    kOpen,         // answered: connected, echo reply, a UDP reply
    kClosed,       // reached, nothing listens: reset, port unreachable
    kUnreachable,  // no route, ICMP unreachable or time exceeded from the way
    kNoAnswer,     // nothing before the timeout
  };
  Kind kind = Kind::kNoAnswer;
  std::string detail;  // "connected", "connection refused", "no route to host"
};

class Probe {
 public:
  // Makes the socket in `netns` and binds it to the source address the namespace's routes
  // choose for the destination (and, TCP and UDP, to a free port). Nothing is sent. When there
  // is no route, the probe is already over: outcome() says so.
  static absl::StatusOr<std::unique_ptr<Probe>> Prepare(const NamespaceHandle& netns,
                                                        const ProbeTarget& target);
  ~Probe() = default;

  // The packet Send() sends: source and destination, protocol, ports or echo identifier.
  const netplane::netfilter::ProbePacket& packet() const { return packet_; }
  // Set once the probe is over.
  const std::optional<ProbeOutcome>& outcome() const { return outcome_; }

  // Sends: the SYN (a non-blocking connect), the datagram or the echo request. An error the
  // kernel gives at once (no route) ends the probe.
  void Send();
  // For poll(): the socket and what to wait for; valid while the probe is not over.
  pollfd PollFd() const;
  // After poll() reported the socket: reads what came and ends the probe when it answers.
  void OnReady();
  // Ends a probe still waiting: no answer.
  void TimeOut();

 private:
  Probe(ProbeTarget target, UniqueFd socket) : target_(target), socket_(std::move(socket)) {}
  void Finish(ProbeOutcome::Kind kind, std::string detail);
  void FinishWithErrno(int err);
  void ReadIcmp();

  const ProbeTarget target_;
  UniqueFd socket_;
  netplane::netfilter::ProbePacket packet_;
  std::optional<ProbeOutcome> outcome_;
};

// "icmp", "8080/tcp", "53/udp".
std::string ProbeTargetName(ProbeProtocol protocol, uint16_t port);

}  // namespace mesh::agent
