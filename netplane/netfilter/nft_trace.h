#pragma once

// nftables tracing (`nft monitor trace` without nft): the kernel reports every rule a packet
// with nftrace set meets, as NFT_MSG_TRACE messages to the NFNLGRP_NFTRACE netlink group of
// its network namespace. mesh sets nftrace on the probes of `meshctl check` (nft::TraceEntry)
// and reads the events back to say which rule let a probe through or dropped it: the kernel's
// own answer, not a re-implementation of the rules.

#include <netinet/in.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct mnl_socket;
struct nlmsghdr;

namespace mesh::netplane::netfilter {

// One NFT_MSG_TRACE message.
struct TraceEvent {
  uint32_t id = 0;     // the packet (NFTA_TRACE_ID): every event of one packet's path shares it
  uint32_t type = 0;   // NFT_TRACETYPE_RULE, NFT_TRACETYPE_RETURN or NFT_TRACETYPE_POLICY
  uint8_t family = 0;  // the table's NFPROTO_*
  std::string table;
  std::string chain;
  uint64_t rule_handle = 0;  // RULE and RETURN
  int32_t verdict = -1;      // RULE and RETURN: NF_ACCEPT, NF_DROP, NFT_CONTINUE (-1), NFT_JUMP..
  std::string jump_target;   // the chain of a jump or goto
  uint32_t policy = 0;       // POLICY: the chain's policy, NF_ACCEPT or NF_DROP
  uint32_t iif = 0;          // interface indexes; 0 when the hook has none
  uint32_t oif = 0;
  // The packet as the hook saw it: the first event of each chain carries it, the others not.
  std::string network_header;    // IPv4: the IP header
  std::string transport_header;  // the first bytes of the TCP/UDP/ICMP header
};

// NFT_MSG_TRACE -> TraceEvent; InvalidArgument for another message or one libnftnl refuses.
absl::StatusOr<TraceEvent> ParseTraceEvent(const nlmsghdr* message);

// The packet a probe sends, to pick its events out of all traced traffic.
struct ProbePacket {
  in_addr source{};
  in_addr destination{};
  uint8_t proto = IPPROTO_ICMP;
  uint16_t source_port = 0;       // TCP and UDP, host order
  uint16_t destination_port = 0;  // TCP and UDP, host order
  uint16_t icmp_id = 0;           // ICMP echo identifier, host order
};

// Whether `event` carries headers of `probe`'s packet (events without headers never do): for
// TCP the SYN, for ICMP the echo request, for UDP the datagram.
bool IsProbePacket(const TraceEvent& event, const ProbePacket& probe);

// What the trace says happened to a probe's first packet.
struct TraceDecision {
  enum class Verdict {
    kNotTraced,  // no event: the packet never met a traced hook of this namespace
    kAccepted,   // a rule accepted it (or the chains' policies did: `by_policy`)
    kDropped,    // a rule or a chain's policy dropped it
    kNoFilter,   // traced, but no filter chain met it (the host had no route for it, say)
  };
  Verdict verdict = Verdict::kNotTraced;
  bool by_policy = false;  // decided by the chain's policy, not by a rule
  uint8_t family = 0;      // where: the table's family and name, the chain, the rule
  std::string table;
  std::string chain;
  uint64_t rule_handle = 0;
  int events = 0;  // events of the packet
};

// The decision for `probe`, from the events of the packets that are the probe's (the probe,
// its retransmissions, the probe again each time a router container sends it through the
// host; an event without headers belongs to the last event with headers of its id): the first drop
// on their path (a drop is final), else the last accept by a rule of a filter chain of `table`
// (mesh's, where a policy rule or an isolation rule decides), else the last accept by any rule,
// else the last policy of a filter chain met, else kNoFilter. Other packets are ignored. Pure.
TraceDecision DecideFromTrace(const std::vector<TraceEvent>& events, const ProbePacket& probe,
                              absl::string_view table);

// A listening socket on NFNLGRP_NFTRACE of the calling thread's network namespace. Needs
// CAP_NET_ADMIN (PermissionDenied otherwise). Events queue in the socket until read.
class TraceListener {
 public:
  static absl::StatusOr<std::unique_ptr<TraceListener>> Open();
  ~TraceListener();
  TraceListener(const TraceListener&) = delete;
  TraceListener& operator=(const TraceListener&) = delete;

  int fd() const;  // readable when events wait
  // Every event queued now, without blocking. DataLoss when the queue overflowed and events
  // were lost (a busy namespace with tracing on elsewhere too).
  absl::StatusOr<std::vector<TraceEvent>> Drain();

 private:
  explicit TraceListener(mnl_socket* socket) : socket_(socket) {}
  mnl_socket* const socket_;  // owned
};

// The comments of a table's rules, by chain and handle (NFT_MSG_GETRULE dump in the calling
// thread's namespace): what a trace's rule handle means to a person. Rules without a comment
// map to "".
using RuleComments = std::map<std::pair<std::string, uint64_t>, std::string>;
absl::StatusOr<RuleComments> ListRuleComments(uint8_t family, const std::string& table);

}  // namespace mesh::netplane::netfilter
