#pragma once

// NetworkService.Check and CheckGroup (`meshctl check`): a real probe from a container's
// network namespace, and the kernel's trace of it naming the rule that decided.
//
// One check: Probe::Prepare (socket and source address, nothing sent) -> the probe's packet
// into mesh's trace set (NetworkManager::StartTrace) -> a TraceListener on NFNLGRP_NFTRACE ->
// Probe::Send -> poll the probe and the trace until an answer, a drop in the trace, or the
// timeout -> the decision (netfilter::DecideFromTrace) with the rule's comment
// (ListRuleComments) -> StopTrace.

#include <netinet/in.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/check/probe.h"
#include "agent/controller/containers.h"
#include "agent/controller/groups.h"
#include "mesh/v1/groups.pb.h"
#include "mesh/v1/networks.pb.h"
#include "netplane/network/network_manager.h"

namespace mesh::agent {

inline constexpr absl::Duration kDefaultCheckTimeout = absl::Seconds(1);
inline constexpr absl::Duration kMaxCheckTimeout = absl::Seconds(30);

// ---- Pure parts (unit-tested) ----

// A probe of a request: ICMP with port 0, or TCP/UDP with a port of 1-65535. InvalidArgument
// starting with `field`.
absl::StatusOr<ProbeTarget> ToProbeTarget(const v1::Probe& probe, in_addr destination,
                                          absl::string_view field);
// A request's timeout: unset -> kDefaultCheckTimeout; more than 0 and at most kMaxCheckTimeout.
absl::StatusOr<absl::Duration> CheckTimeout(bool has_timeout,
                                            const google::protobuf::Duration& timeout,
                                            absl::string_view field);

// The probes of a matrix when the request names none: an ICMP echo, then every TCP and UDP
// port the group's policy rules name and every container port it publishes, each once, TCP
// before UDP, by port.
std::vector<v1::Probe> DefaultProbes(const v1::GroupSpec& spec);

// Where to send a probe from `from` to container `to`: its address on a network both are on
// (the first in `to`'s order), else its end of a link between the two (`group`: their group's
// spec, when they are in one), else its first network address, else its first link address.
// FailedPrecondition naming `to` when it has none.
absl::StatusOr<in_addr> ChooseDestination(const v1::Container& from, const v1::Container& to,
                                          const v1::GroupSpec* group);

// The result's words for a decision and the rules' comments.
v1::RuleDecision ToApiDecision(const netplane::netfilter::TraceDecision& decision,
                               const netplane::netfilter::RuleComments& comments,
                               absl::string_view mesh_table);

// ---- The checker ----

class Checker {
 public:
  Checker(ContainerController& containers, GroupController& groups,
          netplane::NetworkManager& netplane)
      : containers_(containers), groups_(groups), netplane_(netplane) {}

  absl::StatusOr<v1::CheckResult> Check(const v1::CheckRequest& request);
  absl::StatusOr<v1::CheckGroupResponse> CheckGroup(const v1::CheckGroupRequest& request);

 private:
  // A running container and its namespace.
  struct Source {
    v1::Container container;
    NamespaceHandle netns;
  };
  absl::StatusOr<Source> SourceOf(const std::string& name) const;
  // The group spec of a container in a group, if any.
  std::optional<v1::GroupSpec> GroupOf(const v1::Container& container) const;
  // One probe, traced. Failures of the trace itself do not fail the check: the decision is
  // then "not traced".
  // The rules' comments of each table a decision named, listed once per request.
  using CommentCache = std::map<std::pair<uint8_t, std::string>, netplane::netfilter::RuleComments>;
  absl::StatusOr<v1::CheckResult> Run(const Source& from, const ProbeTarget& target,
                                      absl::Duration timeout, CommentCache& comments);

  ContainerController& containers_;
  GroupController& groups_;
  netplane::NetworkManager& netplane_;
};

}  // namespace mesh::agent
