#pragma once

// mesh's nftables ruleset as a function of desired state (DESIGN.md decision 5, NOTES.md's
// verified reference). Two tables, `inet mesh` and `bridge mesh` (below), owned by mesh alone:
// their chains and rules are static, and everything per network, per published port or per
// detached container is a set or map element, so the rule count never depends on how many
// networks, containers or ports exist, and the hot path only adds and removes elements.
//
//   table inet mesh {
//     set bridges          { type ifname; }                 every mesh bridge
//     set same_network     { type ifname . ifname; }        "br" . "br" for every bridge
//     set internal         { type ifname; }                 bridges of internal networks
//     set nat_subnets4     { type ipv4_addr; flags interval; }   subnets with nat
//     map published4       { type inet_proto . inet_service : ipv4_addr . inet_service; }
//     map published4_bound { type ipv4_addr . inet_proto . inet_service
//                            : ipv4_addr . inet_service; }  ports bound to one host address
//     set trace4           { type ipv4_addr . ipv4_addr . inet_proto; }  probes being traced
//     chain trace       (filter, priority raw)       nftrace on the probes of `meshctl check`
//     chain forward     (filter, priority filter)  isolation between networks, policies
//     chain input       (filter, priority filter)  internal networks reach only their gateway
//     chain prerouting  (nat, priority dstnat)     published ports, from outside
//     chain output      (nat, priority -100)       published ports, from the host itself
//     chain postrouting (nat, priority srcnat)     outbound NAT and hairpin
//   }
//
// And a second table, `bridge mesh`, that cuts a detached container off at once: Detach only
// marks the veth pair for the LinkReaper (setting the host end down would make the kernel
// re-run the bridge's port state selection and flush its forwarding database, work that grows
// with the number of ports), and names the host end here until the pair is deleted.
//
//   table bridge mesh {
//     set retired { type ifname; }                  host ends of detached pairs
//     chain prerouting (filter, priority -200)      iifname @retired drop
//     chain forward    (filter, priority -200)      oifname @retired drop
//     chain output     (filter, priority -200)      oifname @retired drop
//   }
//
// Policies (GroupSpec.policy) are the one part whose rule count is not fixed: each policy rule
// is one or two rules of `forward` (its addresses and ports in sets of its own), and a group
// with a default of deny adds one. They come after the accept of established flows (so a
// policy change never cuts a flow that was allowed when it began, and replies always pass) and
// before "inside one network" and the isolation between networks (so an allow can open a path
// between two networks, and a deny or the default can close one inside a network). A policy
// change is a FullRebuild: one atomic transaction.
//
// Every function here is pure: it returns a Transaction for an NftTable to Apply.

#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "netplane/nft/transaction.h"

namespace mesh::netplane::nft {

// ---- Names ----
inline constexpr Family kFamily = Family::kInet;
inline constexpr char kTableName[] = "mesh";

inline constexpr char kForwardChain[] = "forward";
inline constexpr char kInputChain[] = "input";
inline constexpr char kPreroutingChain[] = "prerouting";
inline constexpr char kOutputChain[] = "output";
inline constexpr char kPostroutingChain[] = "postrouting";
inline constexpr char kTraceChain[] = "trace";

inline constexpr char kBridgesSet[] = "bridges";
inline constexpr char kSameNetworkSet[] = "same_network";
inline constexpr char kInternalSet[] = "internal";
inline constexpr char kNatSubnetsSet[] = "nat_subnets4";
inline constexpr char kPublishedMap[] = "published4";
inline constexpr char kPublishedBoundMap[] = "published4_bound";
inline constexpr char kTraceSet[] = "trace4";

// The bridge family table (same name, other family) and its set.
inline constexpr Family kBridgeFamily = Family::kBridge;
inline constexpr char kRetiredSet[] = "retired";

// ---- Hook priorities (what nft calls them) ----
// forward and input, "priority filter": NF_IP_PRI_FILTER. Other tables' filter chains at the same
// priority run in registration order; a drop in any base chain is final, an accept is not.
inline constexpr int32_t kForwardPriority = 0;
// prerouting and output, "priority dstnat": NF_IP_PRI_NAT_DST, where the kernel expects DNAT.
inline constexpr int32_t kDstNatPriority = -100;
// postrouting, "priority srcnat": NF_IP_PRI_NAT_SRC, where the kernel expects SNAT/masquerade.
inline constexpr int32_t kSrcNatPriority = 100;
// trace, "priority raw": NF_IP_PRI_RAW, before conntrack and every other mesh chain, so the
// trace covers all of them (br_netfilter runs the inet prerouting hooks for bridged frames too).
inline constexpr int32_t kTracePriority = -300;
// The bridge table's chains, "priority filter" of the bridge family (NF_BR_PRI_FILTER_BRIDGED):
// before br_netfilter hands IPv4 frames to the inet hooks.
inline constexpr int32_t kBridgeFilterPriority = -200;

// ---- Desired state ----
struct NetworkEntry {
  std::string name;    // network name: element comments
  std::string bridge;  // bridge interface name, at most 15 bytes
  in_addr subnet{};    // host bits are ignored
  int prefix_length = 24;
  bool nat = true;        // masquerade traffic from the subnet to the outside
  bool internal = false;  // no traffic in or out, except to published ports
};

struct PortEntry {
  int proto = IPPROTO_TCP;              // IPPROTO_TCP or IPPROTO_UDP
  std::optional<in_addr> host_address;  // unset: every local address of the host
  uint16_t host_port = 0;
  in_addr container_address{};
  uint16_t container_port = 0;
  std::string owner;  // element comment, e.g. "web-1/front"; truncated to 128 bytes
};

// One rule of a group's policy: IPv4 traffic from an address of `from` to one of `to`, of
// one of `ports` (protocol . destination port) or `protocols` (any port), or of anything
// when both are empty; accepted (allow) or dropped.
struct PolicyRuleEntry {
  bool allow = true;
  std::vector<in_addr> from;
  std::vector<in_addr> to;
  std::vector<std::pair<uint8_t, uint16_t>> ports;  // IPPROTO_TCP/UDP . port
  std::vector<uint8_t> protocols;                   // IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP
  std::string comment;  // the rule's comment: what `check` names; at most 128 bytes
};

// A group's policy (GroupSpec.policy): its rules in order, the first that matches decides;
// then, with `default_deny`, traffic inside one network to one of `members` is dropped.
struct PolicyEntry {
  std::string group;
  std::vector<PolicyRuleEntry> rules;
  bool default_deny = false;
  std::vector<in_addr> members;  // every address of the group's members
};

// Packets of one probe (`meshctl check`): IPv4 from `source` to `destination` with protocol
// `proto` get `meta nftrace set 1` in the trace chain, so the kernel reports every rule they
// meet (NFNLGRP_NFTRACE). Elements live only while a check runs.
struct TraceEntry {
  in_addr source{};
  in_addr destination{};
  uint8_t proto = IPPROTO_ICMP;  // IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP
  std::string ToString() const;  // "10.79.0.10 . 10.79.0.20 . tcp"
  friend bool operator<(const TraceEntry& a, const TraceEntry& b) {
    return std::tie(a.source.s_addr, a.destination.s_addr, a.proto) <
           std::tie(b.source.s_addr, b.destination.s_addr, b.proto);
  }
};

struct DesiredState {
  std::vector<NetworkEntry> networks;
  std::vector<PortEntry> ports;
  std::vector<std::string> retired_ports;  // host ends of detached pairs not deleted yet
  std::vector<PolicyEntry> policies;       // in group order
  std::vector<TraceEntry> traces;          // probes being traced, each once
};

// The sets of one group's policy: "policy/<group>/<rule>/from", ".../to", ".../ports",
// ".../protocols", and "policy/<group>/members".
std::string PolicySetName(absl::string_view group, int rule, absl::string_view what);

// ---- Transactions ----

// Both tables in one transaction, whether or not they exist: ensure each table, delete it
// (with everything in it), then create it again with its sets, chains, rules and every element
// of `state`. The kernel applies it atomically, so packets see either the old or the new
// tables, never none. Other tables are not touched. Duplicate entries in `state` make the
// kernel refuse it (AlreadyExists naming the element), leaving the old table in place.
Transaction FullRebuild(const DesiredState& state);

// Deletes both tables if they exist (ensure, then delete): for the last network going away.
Transaction DeleteTable();

// Hot path, elements only; the table must exist (FullRebuild first).
// AddNetwork: `bridges`, `same_network`, `internal` if internal, `nat_subnets4` if nat.
// AlreadyExists if any of them is present.
Transaction AddNetwork(const NetworkEntry& network);
// The same elements, removed. Idempotent: each element is ensured, then deleted, in one
// transaction, so elements already gone are not an error (a DELSETELEM of an absent element
// fails with ENOENT and would abort the rest).
Transaction RemoveNetwork(const NetworkEntry& network);

// One map element: `published4_bound` when the port is bound to a host address, `published4`
// otherwise. AlreadyExists if the host address/protocol/port is already published.
Transaction AddPort(const PortEntry& port);
// Removes it; idempotent like RemoveNetwork. It never removes someone else's mapping: if the
// map holds the same host port for another container address or port, the kernel refuses the
// ensure step with AlreadyExists and nothing changes.
Transaction RemovePort(const PortEntry& port);

// Host ends of detached veth pairs into / out of `retired` (frames from and to them dropped).
// ReleasePorts is idempotent like RemoveNetwork; both do nothing for an empty list.
Transaction RetirePorts(const std::vector<std::string>& host_ends);
Transaction ReleasePorts(const std::vector<std::string>& host_ends);

// A probe's element into / out of `trace4`; RemoveTrace is idempotent like RemoveNetwork.
Transaction AddTrace(const TraceEntry& trace);
Transaction RemoveTrace(const TraceEntry& trace);

}  // namespace mesh::netplane::nft
