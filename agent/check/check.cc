#include "agent/check/check.h"

#include <linux/netfilter.h>
#include <poll.h>
#include <sched.h>

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/api/convert.h"
#include "base/log.h"
#include "base/quote.h"
#include "base/status_macros.h"
#include "netplane/ipam/ip.h"
#include "netplane/nft/ruleset.h"

namespace mesh::agent {
namespace {

using netplane::netfilter::TraceDecision;

// "10.0.12.1", or a link's "10.0.12.1/30".
std::optional<in_addr> ParseIpv4(absl::string_view text) {
  absl::StatusOr<netplane::ipam::IpAddress> a =
      netplane::ipam::IpAddress::Parse(text.substr(0, text.find('/')));
  if (!a.ok() || !a->is_v4()) return std::nullopt;
  return netplane::ipam::ToInAddr(*a);
}

std::string AddressText(in_addr a) { return netplane::ipam::FromInAddr(a).ToString(); }

v1::CheckResult::Outcome ToApiOutcome(ProbeOutcome::Kind kind) {
  switch (kind) {
    case ProbeOutcome::Kind::kOpen:
      return v1::CheckResult::OUTCOME_OPEN;
    case ProbeOutcome::Kind::kClosed:
      return v1::CheckResult::OUTCOME_CLOSED;
    case ProbeOutcome::Kind::kUnreachable:
      return v1::CheckResult::OUTCOME_UNREACHABLE;
    case ProbeOutcome::Kind::kNoAnswer:
      break;
  }
  return v1::CheckResult::OUTCOME_NO_ANSWER;
}

v1::Probe ToApiProbe(const ProbeTarget& target) {
  v1::Probe p;
  switch (target.protocol) {
    case ProbeProtocol::kTcp:
      p.set_protocol(v1::Probe::PROTOCOL_TCP);
      p.set_port(target.port);
      break;
    case ProbeProtocol::kUdp:
      p.set_protocol(v1::Probe::PROTOCOL_UDP);
      p.set_port(target.port);
      break;
    case ProbeProtocol::kIcmp:
      p.set_protocol(v1::Probe::PROTOCOL_ICMP);
      break;
  }
  return p;
}

// The short names of a group's links' ends, per member: (peer, address) of each end.
struct LinkEnd {
  std::string member, peer;
  std::vector<std::string> addresses;
};
std::vector<LinkEnd> LinkEnds(const v1::GroupSpec& spec) {
  std::vector<LinkEnd> out;
  for (const v1::Link& link : spec.links()) {
    if (link.endpoints_size() != 2) continue;
    for (int i = 0; i < 2; ++i) {
      const v1::LinkEndpoint& end = link.endpoints(i);
      out.push_back(LinkEnd{end.container(),
                            link.endpoints(1 - i).container(),
                            {end.addresses().begin(), end.addresses().end()}});
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<ProbeTarget> ToProbeTarget(const v1::Probe& probe, in_addr destination,
                                          absl::string_view field) {
  ProbeTarget t;
  t.destination = destination;
  switch (probe.protocol()) {
    case v1::Probe::PROTOCOL_UNSPECIFIED:
    case v1::Probe::PROTOCOL_ICMP:
      if (probe.port() != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, ".port: ", probe.port(), " given for ICMP, which has no ports; give 0"));
      }
      t.protocol = ProbeProtocol::kIcmp;
      return t;
    case v1::Probe::PROTOCOL_TCP:
    case v1::Probe::PROTOCOL_UDP:
      if (probe.port() == 0 || probe.port() > 65535) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ".port: ", probe.port(), " is not a port (1-65535)"));
      }
      t.protocol =
          probe.protocol() == v1::Probe::PROTOCOL_TCP ? ProbeProtocol::kTcp : ProbeProtocol::kUdp;
      t.port = static_cast<uint16_t>(probe.port());
      return t;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".protocol: ", probe.protocol(), " is not ICMP, TCP or UDP"));
  }
}

absl::StatusOr<absl::Duration> CheckTimeout(bool has_timeout,
                                            const google::protobuf::Duration& timeout,
                                            absl::string_view field) {
  if (!has_timeout) return kDefaultCheckTimeout;
  MESH_RETURN_IF_ERROR(ValidateDuration(timeout, field));
  const absl::Duration d = FromProtoDuration(timeout);
  if (d <= absl::ZeroDuration() || d > kMaxCheckTimeout) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", absl::FormatDuration(d),
                                                   " is not more than 0 and at most ",
                                                   absl::FormatDuration(kMaxCheckTimeout)));
  }
  return d;
}

std::vector<v1::Probe> DefaultProbes(const v1::GroupSpec& spec) {
  std::set<std::pair<uint8_t, uint16_t>> ports;  // TCP (6) sorts before UDP (17)
  for (const v1::PolicyRule& rule : spec.policy().rules()) {
    for (const std::string& text : rule.ports()) {
      absl::StatusOr<std::pair<uint8_t, std::optional<uint16_t>>> p = ParsePolicyPort(text, "");
      if (p.ok() && p->second) ports.insert({p->first, *p->second});
    }
  }
  for (const v1::GroupContainer& c : spec.containers()) {
    for (const v1::PortMapping& m : c.spec().ports()) {
      if (m.container_port() == 0 || m.container_port() > 65535) continue;
      ports.insert({m.protocol() == v1::PROTOCOL_UDP ? IPPROTO_UDP : IPPROTO_TCP,
                    static_cast<uint16_t>(m.container_port())});
    }
  }
  std::vector<v1::Probe> out(1);
  out[0].set_protocol(v1::Probe::PROTOCOL_ICMP);
  for (const auto& [proto, port] : ports) {
    v1::Probe& p = out.emplace_back();
    p.set_protocol(proto == IPPROTO_UDP ? v1::Probe::PROTOCOL_UDP : v1::Probe::PROTOCOL_TCP);
    p.set_port(port);
  }
  return out;
}

absl::StatusOr<in_addr> ChooseDestination(const v1::Container& from, const v1::Container& to,
                                          const v1::GroupSpec* group) {
  std::set<std::string> from_networks;
  for (const v1::ContainerAddress& a : from.addresses()) from_networks.insert(a.network());
  for (const v1::ContainerAddress& a : to.addresses()) {
    if (!from_networks.contains(a.network())) continue;
    if (std::optional<in_addr> ip = ParseIpv4(a.ip())) return *ip;
  }
  std::vector<LinkEnd> ends;
  std::string from_member, to_member;
  if (group != nullptr && from.group() == group->name() && to.group() == group->name()) {
    ends = LinkEnds(*group);
    const std::string prefix = MemberName(group->name(), "");
    from_member = std::string(absl::StripPrefix(from.spec().name(), prefix));
    to_member = std::string(absl::StripPrefix(to.spec().name(), prefix));
  }
  for (const LinkEnd& end : ends) {
    if (end.member != to_member || end.peer != from_member) continue;
    for (const std::string& a : end.addresses) {
      if (std::optional<in_addr> ip = ParseIpv4(a)) return *ip;
    }
  }
  for (const v1::ContainerAddress& a : to.addresses()) {
    if (std::optional<in_addr> ip = ParseIpv4(a.ip())) return *ip;
  }
  for (const LinkEnd& end : ends) {
    if (end.member != to_member) continue;
    for (const std::string& a : end.addresses) {
      if (std::optional<in_addr> ip = ParseIpv4(a)) return *ip;
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("container ", Quote(to.spec().name()),
                   " has no IPv4 address to probe (no network, no link address); give an "
                   "address instead"));
}

v1::RuleDecision ToApiDecision(const TraceDecision& decision,
                               const netplane::netfilter::RuleComments& comments,
                               absl::string_view mesh_table) {
  v1::RuleDecision out;
  switch (decision.verdict) {
    case TraceDecision::Verdict::kNotTraced:
      out.set_verdict(v1::RuleDecision::VERDICT_NOT_TRACED);
      return out;
    case TraceDecision::Verdict::kNoFilter:
      out.set_verdict(v1::RuleDecision::VERDICT_NO_FILTER);
      return out;
    case TraceDecision::Verdict::kAccepted:
      out.set_verdict(v1::RuleDecision::VERDICT_ACCEPTED);
      break;
    case TraceDecision::Verdict::kDropped:
      out.set_verdict(v1::RuleDecision::VERDICT_DROPPED);
      break;
  }
  out.set_table(
      absl::StrCat(netplane::nft::FamilyName(static_cast<netplane::nft::Family>(decision.family)),
                   " ", decision.table));
  out.set_chain(decision.chain);
  out.set_rule_handle(decision.rule_handle);
  out.set_mesh(decision.table == mesh_table &&
               (decision.family == NFPROTO_INET || decision.family == NFPROTO_BRIDGE));
  if (decision.by_policy) {
    out.set_rule(absl::StrCat("the policy of chain ", decision.chain, " (no rule matched)"));
  } else if (auto it = comments.find({decision.chain, decision.rule_handle});
             it != comments.end() && !it->second.empty()) {
    out.set_rule(it->second);
  } else {
    out.set_rule(absl::StrCat("rule handle ", decision.rule_handle));
  }
  return out;
}

absl::StatusOr<Checker::Source> Checker::SourceOf(const std::string& name) const {
  MESH_ASSIGN_OR_RETURN(v1::Container c, containers_.Get(name));
  if (c.state() != v1::CONTAINER_STATE_RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", Quote(name),
                     " is not running; a probe leaves from a running container's "
                     "network namespace (meshctl start ",
                     name, ")"));
  }
  MESH_ASSIGN_OR_RETURN(std::string path, containers_.NetworkNamespace(name));
  MESH_ASSIGN_OR_RETURN(NamespaceHandle netns, NamespaceHandle::Open(path, CLONE_NEWNET));
  return Source{std::move(c), std::move(netns)};
}

std::optional<v1::GroupSpec> Checker::GroupOf(const v1::Container& container) const {
  if (container.group().empty()) return std::nullopt;
  absl::StatusOr<v1::Group> g = groups_.Get(container.group());
  if (!g.ok()) return std::nullopt;
  return g->spec();
}

absl::StatusOr<v1::CheckResult> Checker::Check(const v1::CheckRequest& request) {
  if (request.from().empty()) return absl::InvalidArgumentError("from: name a container");
  if (request.to().empty()) return absl::InvalidArgumentError("to: name a container or address");
  MESH_ASSIGN_OR_RETURN(absl::Duration timeout,
                        CheckTimeout(request.has_timeout(), request.timeout(), "timeout"));
  MESH_ASSIGN_OR_RETURN(ProbeTarget target, ToProbeTarget(request.probe(), in_addr{}, "probe"));
  MESH_ASSIGN_OR_RETURN(Source from, SourceOf(request.from()));
  in_addr destination{};
  if (std::optional<in_addr> ip = ParseIpv4(request.to());
      ip && request.to().find('/') == std::string::npos) {
    destination = *ip;
  } else {
    MESH_ASSIGN_OR_RETURN(v1::Container to, containers_.Get(request.to()));
    std::optional<v1::GroupSpec> group = GroupOf(from.container);
    MESH_ASSIGN_OR_RETURN(destination,
                          ChooseDestination(from.container, to, group ? &*group : nullptr));
  }
  target.destination = destination;
  CommentCache comments;
  MESH_ASSIGN_OR_RETURN(v1::CheckResult result, Run(from, target, timeout, comments));
  result.set_to(request.to());
  return result;
}

absl::StatusOr<v1::CheckGroupResponse> Checker::CheckGroup(const v1::CheckGroupRequest& request) {
  MESH_ASSIGN_OR_RETURN(absl::Duration timeout,
                        CheckTimeout(request.has_timeout(), request.timeout(), "timeout"));
  std::vector<ProbeTarget> targets;
  for (int i = 0; i < request.probes_size(); ++i) {
    MESH_ASSIGN_OR_RETURN(ProbeTarget target, ToProbeTarget(request.probes(i), in_addr{},
                                                            absl::StrCat("probes[", i, "]")));
    targets.push_back(target);
  }
  MESH_ASSIGN_OR_RETURN(v1::Group group, groups_.Get(request.group()));
  v1::CheckGroupResponse response;
  std::vector<Source> members;
  for (const v1::GroupContainer& c : group.spec().containers()) {
    const std::string name = MemberName(group.spec().name(), c.spec().name());
    absl::StatusOr<Source> s = SourceOf(name);
    if (!s.ok()) continue;  // not running: not in the matrix
    response.add_containers(name);
    members.push_back(*std::move(s));
  }
  if (request.probes().empty()) {
    for (v1::Probe& p : DefaultProbes(group.spec())) {
      MESH_ASSIGN_OR_RETURN(ProbeTarget target, ToProbeTarget(p, in_addr{}, "probe"));
      targets.push_back(target);
      *response.add_probes() = std::move(p);
    }
  } else {
    *response.mutable_probes() = request.probes();
  }
  CommentCache comments;
  for (const Source& from : members) {
    for (const Source& to : members) {
      if (&from == &to) continue;
      absl::StatusOr<in_addr> destination =
          ChooseDestination(from.container, to.container, &group.spec());
      for (int i = 0; i < response.probes_size(); ++i) {
        v1::CheckResult result;
        if (!destination.ok()) {
          result.set_from(from.container.spec().name());
          *result.mutable_probe() = response.probes(i);
          result.set_outcome(v1::CheckResult::OUTCOME_UNREACHABLE);
          result.set_detail(std::string(destination.status().message()));
          result.mutable_decision()->set_verdict(v1::RuleDecision::VERDICT_NOT_TRACED);
        } else {
          ProbeTarget target = targets[static_cast<size_t>(i)];
          target.destination = *destination;
          MESH_ASSIGN_OR_RETURN(result, Run(from, target, timeout, comments));
        }
        result.set_to(to.container.spec().name());
        *response.add_results() = std::move(result);
      }
    }
  }
  return response;
}

absl::StatusOr<v1::CheckResult> Checker::Run(const Source& from, const ProbeTarget& target,
                                             absl::Duration timeout, CommentCache& comments) {
  v1::CheckResult result;
  result.set_from(from.container.spec().name());
  result.set_destination(AddressText(target.destination));
  *result.mutable_probe() = ToApiProbe(target);

  MESH_ASSIGN_OR_RETURN(std::unique_ptr<Probe> probe, Probe::Prepare(from.netns, target));
  const netplane::netfilter::ProbePacket packet = probe->packet();
  if (probe->outcome()) {  // no route: nothing was sent
    result.set_outcome(ToApiOutcome(probe->outcome()->kind));
    result.set_detail(probe->outcome()->detail);
    result.mutable_decision()->set_verdict(v1::RuleDecision::VERDICT_NOT_TRACED);
    return result;
  }
  result.set_source(AddressText(packet.source));

  // Tracing first, then the packet. Either failing leaves the probe untraced, not failed.
  const netplane::nft::TraceEntry entry{packet.source, packet.destination, packet.proto};
  const absl::Status traced = netplane_.StartTrace(entry);
  absl::Cleanup stop_trace = [&] {
    if (traced.ok()) netplane_.StopTrace(entry);
  };
  std::unique_ptr<netplane::netfilter::TraceListener> listener;
  if (traced.ok()) {
    absl::StatusOr<std::unique_ptr<netplane::netfilter::TraceListener>> l =
        netplane::netfilter::TraceListener::Open();
    if (l.ok()) {
      listener = *std::move(l);
    } else {
      MESH_LOG(Warning) << "check: " << l.status();
    }
  }
  std::vector<netplane::netfilter::TraceEvent> events;
  auto drain = [&] {
    if (listener == nullptr) return;
    absl::StatusOr<std::vector<netplane::netfilter::TraceEvent>> more = listener->Drain();
    if (!more.ok()) {
      MESH_LOG(Warning) << "check: " << more.status();
      return;
    }
    events.insert(events.end(), more->begin(), more->end());
  };

  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  probe->Send();
  bool dropped = false;
  while (!probe->outcome() && !dropped) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) {
      probe->TimeOut();
      break;
    }
    pollfd fds[2] = {probe->PollFd(), {listener ? listener->fd() : -1, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(left));
    if (n < 0 && errno != EINTR) {
      probe->TimeOut();
      break;
    }
    if (fds[1].revents != 0) {
      drain();
      dropped =
          netplane::netfilter::DecideFromTrace(events, packet, netplane::nft::kTableName).verdict ==
          TraceDecision::Verdict::kDropped;
    }
    if (fds[0].revents != 0) probe->OnReady();
  }
  const absl::Duration elapsed = absl::Now() - start;
  // The events of the packet's path were queued while it passed, before any answer came.
  drain();
  std::move(stop_trace).Invoke();

  const TraceDecision decision = DecideFromTrace(events, packet, netplane::nft::kTableName);
  // A drop in the trace is the answer unless something did come back (a retransmission that
  // a changed rule let through).
  if (decision.verdict == TraceDecision::Verdict::kDropped &&
      (!probe->outcome() || probe->outcome()->kind == ProbeOutcome::Kind::kNoAnswer)) {
    result.set_outcome(v1::CheckResult::OUTCOME_BLOCKED);
    result.set_detail("dropped on the way");
  } else {
    result.set_outcome(ToApiOutcome(probe->outcome()->kind));
    result.set_detail(probe->outcome()->detail);
  }
  result.set_reachable(result.outcome() == v1::CheckResult::OUTCOME_OPEN ||
                       result.outcome() == v1::CheckResult::OUTCOME_CLOSED);
  const std::pair<uint8_t, std::string> table{decision.family, decision.table};
  if (!decision.table.empty() && !decision.by_policy && !comments.contains(table)) {
    absl::StatusOr<netplane::netfilter::RuleComments> listed =
        netplane::netfilter::ListRuleComments(decision.family, decision.table);
    if (listed.ok()) {
      comments[table] = *std::move(listed);
    } else {
      MESH_LOG(Warning) << "check: " << listed.status();
    }
  }
  *result.mutable_decision() = ToApiDecision(decision, comments[table], netplane::nft::kTableName);
  *result.mutable_elapsed() = ToProtoDuration(elapsed);
  return result;
}

}  // namespace mesh::agent
