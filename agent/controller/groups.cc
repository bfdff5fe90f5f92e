#include "agent/controller/groups.h"

#include <algorithm>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/api/convert.h"
#include "agent/api/selector.h"
#include "agent/controller/faults.h"
#include "base/log.h"
#include "base/quote.h"
#include "base/rollback.h"
#include "base/status_macros.h"
#include "google/protobuf/util/message_differencer.h"
#include "netplane/ipam/ip.h"

namespace mesh::agent {
namespace {

using google::protobuf::util::MessageDifferencer;

std::string Q(absl::string_view name) { return Quote(name); }

v1::MemberStatus Member(v1::MemberStatus::Kind kind, const std::string& name,
                        v1::MemberAction action, const std::string& message = "") {
  v1::MemberStatus status;
  status.set_kind(kind);
  status.set_name(name);
  status.set_action(action);
  status.set_message(message);
  return status;
}

// The spec as it runs: member names prefixed, references between members translated.
struct Translated {
  std::vector<v1::NetworkSpec> networks;
  std::vector<v1::ContainerSpec> containers;  // in spec order
};

Translated Translate(const v1::GroupSpec& spec) {
  Translated out;
  std::set<std::string> own_networks;
  for (const v1::NetworkSpec& n : spec.networks()) {
    own_networks.insert(n.name());
    v1::NetworkSpec network = n;
    network.set_name(MemberName(spec.name(), n.name()));
    out.networks.push_back(std::move(network));
  }
  for (const v1::GroupContainer& member : spec.containers()) {
    // Routes through a link's peer go with the link (SyncLinks), not with the container.
    v1::ContainerSpec c = WithoutLinkRoutes(spec, member.spec());
    c.set_name(MemberName(spec.name(), member.spec().name()));
    // Inside the group a member is known by its short name.
    if (c.hostname().empty()) c.set_hostname(member.spec().name());
    for (v1::NetworkAttachment& n : *c.mutable_networks()) {
      // A network of the group; any other name is a network made outside it.
      if (own_networks.contains(n.network())) n.set_network(MemberName(spec.name(), n.network()));
    }
    if (!c.network_from().empty()) c.set_network_from(MemberName(spec.name(), c.network_from()));
    out.containers.push_back(std::move(c));
  }
  return out;
}

// A network as applied still matches the spec: what the spec leaves unset was filled in.
bool NetworkMatches(const v1::NetworkSpec& want, const v1::NetworkSpec& have) {
  return (want.subnet().empty() || want.subnet() == have.subnet()) &&
         (want.gateway().empty() || want.gateway() == have.gateway()) &&
         (want.mtu() == 0 ? have.mtu() == 1500 : want.mtu() == have.mtu()) &&
         want.internal() == have.internal() && want.disable_nat() == have.disable_nat() &&
         MessageDifferencer::Equals(want.labels(), have.labels());
}

}  // namespace

void GroupController::Restore(const std::map<std::string, storev1::GroupRecord>& records) {
  absl::MutexLock lock(&mu_);
  for (const auto& [name, record] : records) groups_[name] = record;
}

void GroupController::ReconcileLinks() {
  std::vector<storev1::GroupRecord> records;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, record] : groups_) records.push_back(record);
  }
  for (const storev1::GroupRecord& record : records) {
    if (record.spec().links().empty()) continue;
    absl::MutexLock group_lock(GroupLock(record.spec().name()));
    auto log = [&](const v1::MemberStatus& status) {
      MESH_LOG(Info) << "group " << Q(record.spec().name()) << ": link " << status.name() << " "
                     << (status.action() == v1::MEMBER_ACTION_REMOVED ? "removed" : "made again");
    };
    if (absl::Status s = SyncLinks(record.spec(), log); !s.ok()) {
      MESH_LOG(Error) << "reconcile: " << s;
    }
  }
}

absl::StatusOr<netplane::nft::PolicyEntry> GroupController::PolicyOf(
    const v1::GroupSpec& spec, const std::string& gone) const {
  // The records, not Get: the addresses are in memory, and Get reads each runtime state.
  auto for_each_attachment = [this](const v1::GroupSpec& of, const auto& fn) {
    for (const v1::GroupContainer& member : of.containers()) {
      absl::StatusOr<storev1::ContainerRecord> record =
          containers_.Record(MemberName(of.name(), member.spec().name()));
      if (!record.ok()) continue;  // not made (yet): no addresses
      for (const storev1::Attachment& a : record->attachments()) fn(member.spec().name(), a);
    }
  };
  const std::string prefix = absl::StrCat(spec.name(), "-");
  MemberAddresses addresses;
  for_each_attachment(spec, [&](const std::string& member, const storev1::Attachment& a) {
    absl::string_view network = a.network();
    // The group's own networks by their short names; others keep their full names.
    absl::ConsumePrefix(&network, prefix);
    addresses[member].emplace_back(std::string(network), a.ip());
  });
  GroupAddresses others;
  for (const std::string& name : PolicyGroups(spec)) {
    std::vector<std::string>& list = others[name];
    absl::StatusOr<storev1::GroupRecord> other = Record(name);
    if (name == gone || !other.ok()) continue;  // none (yet, or any more): no addresses
    for_each_attachment(other->spec(), [&list](const std::string&, const storev1::Attachment& a) {
      list.push_back(a.ip());
    });
  }
  return ToPolicy(spec, addresses, others);
}

absl::Status GroupController::ApplyPolicy(const v1::GroupSpec& spec, const std::string& gone,
                                          bool refresh) {
  absl::MutexLock lock(&policy_mu_);
  if (refresh) {
    absl::MutexLock groups_lock(&mu_);
    if (deleting_.contains(spec.name()) || !groups_.contains(spec.name())) return absl::OkStatus();
  }
  if (spec.policy().rules().empty() && spec.policy().default_action() != v1::Policy::DEFAULT_DENY) {
    return netplane_.RemovePolicy(spec.name());  // none (any more): nothing to look up
  }
  MESH_ASSIGN_OR_RETURN(netplane::nft::PolicyEntry policy, PolicyOf(spec, gone));
  absl::Status s = netplane_.SetPolicy(policy);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("group ", Q(spec.name()), ": ", s.message()));
  }
  return s;
}

void GroupController::RefreshPoliciesNaming(const std::string& group, bool deleted) {
  std::vector<v1::GroupSpec> naming;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, record] : groups_) {
      if (name != group && PolicyGroups(record.spec()).contains(group)) {
        naming.push_back(record.spec());
      }
    }
  }
  for (const v1::GroupSpec& spec : naming) {
    if (absl::Status s = ApplyPolicy(spec, deleted ? group : "", /*refresh=*/true); !s.ok()) {
      MESH_LOG(Warning) << "the members of group " << Q(group) << " changed, but the policy of "
                        << "group " << Q(spec.name()) << " that names them was not updated: " << s;
    }
  }
}

std::vector<netplane::nft::PolicyEntry> GroupController::Policies() const {
  std::vector<storev1::GroupRecord> records;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, record] : groups_) records.push_back(record);
  }
  std::vector<netplane::nft::PolicyEntry> out;
  for (const storev1::GroupRecord& record : records) {
    const v1::Policy& p = record.spec().policy();
    if (p.rules().empty() && p.default_action() != v1::Policy::DEFAULT_DENY) continue;
    absl::StatusOr<netplane::nft::PolicyEntry> policy = PolicyOf(record.spec());
    if (!policy.ok()) {
      MESH_LOG(Error) << "group " << Q(record.spec().name()) << ": policy: " << policy.status();
      continue;
    }
    out.push_back(*std::move(policy));
  }
  return out;
}

std::string GroupController::NetnsOf(const std::string& container) const {
  absl::StatusOr<storev1::ContainerRecord> record = containers_.Record(container);
  return record.ok() ? record->netns() : "";
}

absl::Status GroupController::SyncLinks(const v1::GroupSpec& spec, const Progress& report,
                                        const std::string& member) {
  const std::string& group = spec.name();
  const std::string prefix = group + "/";
  auto netns_of = [this](const std::string& c) { return NetnsOf(c); };
  auto touches = [&](const v1::Link& link) {
    for (const v1::LinkEndpoint& e : link.endpoints()) {
      if (e.container() == member) return true;
    }
    return false;
  };
  // What the spec wants, by alias, of the links whose two members have a namespace.
  std::map<std::string, netplane::LinkConfig> want;
  std::set<std::string> wanted_ids;
  for (int i = 0; i < spec.links_size(); ++i) {
    if (!member.empty() && !touches(spec.links(i))) continue;
    MESH_ASSIGN_OR_RETURN(netplane::LinkConfig config, ToLinkConfig(spec, i, netns_of));
    wanted_ids.insert(config.id);
    if (config.ends[0].netns_path.empty() || config.ends[1].netns_path.empty()) continue;
    std::string alias = netplane::LinkAlias(config);
    want.emplace(std::move(alias), std::move(config));
  }
  // What is there.
  std::set<std::string> present;
  std::set<std::string> removed_ids;
  if (member.empty()) {
    // Every member's namespace: the first ends of this group's links.
    v1::ListContainersRequest mine;
    mine.set_all(true);
    mine.set_group(group);
    for (const v1::Container& c : containers_.List(mine)) {
      const std::string netns = NetnsOf(c.spec().name());
      if (netns.empty()) continue;
      absl::StatusOr<std::vector<netplane::PlumbedLink>> listed = links_.List(netns);
      if (!listed.ok()) {
        return absl::Status(listed.status().code(),
                            absl::StrCat("group ", Q(group), ": links of container ",
                                         Q(c.spec().name()), ": ", listed.status().message()));
      }
      for (const netplane::PlumbedLink& l : *listed) {
        const std::string id = netplane::LinkIdOfAlias(l.alias);
        if (!absl::StartsWith(id, prefix)) continue;
        if (want.contains(l.alias)) {
          present.insert(l.alias);
          continue;
        }
        MESH_RETURN_IF_ERROR(links_.Remove(netns, l.ifname));
        FaultPoint("group.apply.member");
        if (wanted_ids.contains(id)) {
          removed_ids.insert(id);  // changed: made again below
        } else {
          report(Member(v1::MemberStatus::KIND_LINK, id.substr(prefix.size()),
                        v1::MEMBER_ACTION_REMOVED));
        }
      }
    }
  } else {
    for (const auto& [alias, config] : want) {
      MESH_ASSIGN_OR_RETURN(bool there, links_.Present(config));
      if (there) present.insert(alias);
    }
  }
  for (const auto& [alias, config] : want) {
    if (present.contains(alias)) continue;
    const std::string name = config.id.substr(prefix.size());
    v1::MemberStatus status = Member(
        v1::MemberStatus::KIND_LINK, name,
        removed_ids.contains(config.id) ? v1::MEMBER_ACTION_RECREATED : v1::MEMBER_ACTION_CREATED);
    if (absl::Status s = links_.Create(config); !s.ok()) {
      status.set_action(v1::MEMBER_ACTION_FAILED);
      status.set_message(std::string(s.message()));
      report(status);
      return absl::Status(s.code(), absl::StrCat("group ", Q(group), ": ", s.message()));
    }
    FaultPoint("group.apply.member");
    report(status);
  }
  return absl::OkStatus();
}

absl::Mutex* GroupController::GroupLock(const std::string& name) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<absl::Mutex>& m = locks_[name];
  if (m == nullptr) m = std::make_unique<absl::Mutex>();
  return m.get();
}

absl::StatusOr<v1::Group> GroupController::Apply(const v1::GroupSpec& spec,
                                                 const Progress& progress,
                                                 const std::function<bool()>& cancelled) {
  MESH_RETURN_IF_ERROR(ValidateGroupSpec(spec));
  const std::string& group = spec.name();
  absl::MutexLock group_lock(GroupLock(group));
  const Translated want = Translate(spec);

  // Names the group would take must not belong to anything else.
  for (const v1::ContainerSpec& c : want.containers) {
    absl::StatusOr<storev1::ContainerRecord> existing = containers_.Record(c.name());
    if (existing.ok() && existing->group() != group) {
      return absl::AlreadyExistsError(absl::StrCat("container ", Q(c.name()),
                                                   " exists and is not a member of group ",
                                                   Q(group), "; remove it or rename the group"));
    }
  }
  for (const v1::NetworkSpec& n : want.networks) {
    absl::StatusOr<storev1::NetworkRecord> existing = networks_.Record(n.name());
    if (existing.ok() && existing->group() != group) {
      return absl::AlreadyExistsError(absl::StrCat("network ", Q(n.name()),
                                                   " exists and is not a member of group ",
                                                   Q(group), "; remove it or rename the group"));
    }
  }
  // A subnet that overlaps a network outside the group is refused here, at its field and before
  // anything changes (netplane would refuse it only when the network is made, mid-apply).
  // The group's own networks are either kept, made again or removed by this Apply.
  const std::vector<v1::Network> others = networks_.List(v1::LabelSelector());
  for (int i = 0; i < spec.networks_size(); ++i) {
    absl::StatusOr<netplane::ipam::IpPrefix> mine =
        netplane::ipam::IpPrefix::Parse(spec.networks(i).subnet());
    if (!mine.ok()) continue;  // none given (ValidateGroupSpec checked the form)
    for (const v1::Network& other : others) {
      if (other.group() == group) continue;
      absl::StatusOr<netplane::ipam::IpPrefix> theirs =
          netplane::ipam::IpPrefix::Parse(other.spec().subnet());
      if (theirs.ok() && mine->Overlaps(*theirs)) {
        return absl::InvalidArgumentError(
            absl::StrCat("spec.networks[", i, "].subnet: ", spec.networks(i).subnet(),
                         " overlaps network ", Q(other.spec().name()), " (", other.spec().subnet(),
                         "); pick a subnet outside it, or leave subnet out for a free one"));
      }
    }
  }

  // An Apply of the spec already applied writes nothing unless a member had to change.
  storev1::GroupRecord record;
  bool same_spec = false;
  bool existed = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = groups_.find(group);
    if (it != groups_.end()) {
      existed = true;
      record = it->second;
      same_spec =
          record.phase() == storev1::PHASE_READY && MessageDifferencer::Equals(record.spec(), spec);
    }
  }
  bool changed = false;
  bool made = false;  // a member was created, started or removed
  // A new group whose Apply fails before any member was made leaves no record behind.
  Rollback forget;
  if (!same_spec) {
    record.set_phase(storev1::PHASE_CREATING);
    *record.mutable_spec() = spec;
    MESH_RETURN_IF_ERROR(store_.Put(group, record));
    {
      absl::MutexLock lock(&mu_);
      groups_[group] = record;
    }
    if (!existed) {
      forget.Push([this, &made, &group] {
        if (made) return;
        // Best effort: a record left behind is dropped by Delete, or by the next Apply.
        store_.DeleteGroup(group).IgnoreError();
        {
          absl::MutexLock lock(&mu_);
          groups_.erase(group);
        }
        // Its policy went in before the first member; with no record, no refresh puts it back.
        absl::MutexLock policy_lock(&policy_mu_);
        netplane_.RemovePolicy(group).IgnoreError();
      });
    }
    FaultPoint("group.apply.recorded");
  }
  auto report = [&](const v1::MemberStatus& status) {
    if (status.action() != v1::MEMBER_ACTION_UNSPECIFIED &&
        status.action() != v1::MEMBER_ACTION_UNCHANGED) {
      changed = true;
      made = made || status.action() != v1::MEMBER_ACTION_FAILED;
    }
    progress(status);
  };

  // What runs now.
  v1::ListContainersRequest mine;
  mine.set_all(true);
  mine.set_group(group);
  std::map<std::string, v1::Container> have_containers;
  for (v1::Container& c : containers_.List(mine)) have_containers[c.spec().name()] = std::move(c);
  std::map<std::string, v1::Network> have_networks;
  for (v1::Network& n : networks_.List(v1::LabelSelector())) {
    if (n.group() == group) have_networks[n.spec().name()] = std::move(n);
  }
  auto short_name = [&](const std::string& full) { return full.substr(group.size() + 1); };

  // Networks that go (gone from the spec, or changed: made again).
  std::set<std::string> networks_out;
  std::map<std::string, const v1::NetworkSpec*> want_networks;
  for (const v1::NetworkSpec& n : want.networks) want_networks[n.name()] = &n;
  for (const auto& [name, network] : have_networks) {
    auto it = want_networks.find(name);
    if (it == want_networks.end() || !NetworkMatches(*it->second, network.spec())) {
      networks_out.insert(name);
    }
  }
  // Containers that go: gone, changed, or on a network that goes.
  std::map<std::string, const v1::ContainerSpec*> want_containers;
  for (const v1::ContainerSpec& c : want.containers) want_containers[c.name()] = &c;
  std::vector<std::string> containers_out;
  std::set<std::string> recreated;
  for (const auto& [name, container] : have_containers) {
    auto it = want_containers.find(name);
    bool out = it == want_containers.end();
    if (!out && !MessageDifferencer::Equals(*it->second, container.spec())) {
      out = true;
    }
    for (const v1::NetworkAttachment& n : container.spec().networks()) {
      if (networks_out.contains(n.network())) out = true;
    }
    if (out) {
      containers_out.push_back(name);
      if (it != want_containers.end()) recreated.insert(name);
    }
  }
  // Those sharing another's network namespace go first.
  std::stable_partition(containers_out.begin(), containers_out.end(), [&](const std::string& n) {
    return !have_containers[n].spec().network_from().empty();
  });
  for (const std::string& name : containers_out) {
    MESH_RETURN_IF_ERROR(containers_.Remove(name, /*force=*/true));
    made = true;
    FaultPoint("group.apply.member");
    if (!recreated.contains(name)) {
      report(Member(v1::MemberStatus::KIND_CONTAINER, short_name(name), v1::MEMBER_ACTION_REMOVED));
    }
    have_containers.erase(name);
  }
  for (const std::string& name : networks_out) {
    MESH_RETURN_IF_ERROR(networks_.Remove(name));
    made = true;
    FaultPoint("group.apply.member");
    if (!want_networks.contains(name)) {
      report(Member(v1::MemberStatus::KIND_NETWORK, short_name(name), v1::MEMBER_ACTION_REMOVED));
    }
    have_networks.erase(name);
  }
  for (const v1::NetworkSpec& n : want.networks) {
    if (have_networks.contains(n.name())) continue;
    v1::MemberStatus status = Member(
        v1::MemberStatus::KIND_NETWORK, short_name(n.name()),
        networks_out.contains(n.name()) ? v1::MEMBER_ACTION_RECREATED : v1::MEMBER_ACTION_CREATED);
    absl::StatusOr<v1::Network> created = networks_.Create(n, group);
    if (!created.ok()) {
      status.set_action(v1::MEMBER_ACTION_FAILED);
      status.set_message(std::string(created.status().message()));
      report(status);
      return absl::Status(created.status().code(),
                          absl::StrCat("group ", Q(group), ": network ", Q(short_name(n.name())),
                                       ": ", created.status().message()));
    }
    FaultPoint("group.apply.member");
    report(status);
  }

  // A member's links are reported after the member itself.
  auto collect = [](std::vector<v1::MemberStatus>& into) -> Progress {
    return [&into](const v1::MemberStatus& status) { into.push_back(status); };
  };
  // Links between the members that stay (those of members made again died with them), and
  // the policy (a changed one applies to the members that stay at once).
  MESH_RETURN_IF_ERROR(SyncLinks(spec, report));
  MESH_RETURN_IF_ERROR(ApplyPolicy(spec));

  // Containers in dependency order, each once its dependencies meet their conditions.
  for (int index : DependencyOrder(spec)) {
    const v1::GroupContainer& member = spec.containers(index);
    const v1::ContainerSpec& c = want.containers[static_cast<size_t>(index)];
    const std::string& short_member = member.spec().name();
    for (const v1::Dependency& dep : member.depends_on()) {
      const std::string dep_name = MemberName(group, dep.container());
      const absl::Time deadline = absl::Now() + kDependencyTimeout;
      const char* what = dep.condition() == v1::Dependency::CONDITION_HEALTHY ? "healthy"
                         : dep.condition() == v1::Dependency::CONDITION_EXITED_OK
                             ? "done (exit code 0)"
                             : "started";
      bool announced = false;
      while (true) {
        absl::StatusOr<v1::Container> d = containers_.Get(dep_name);
        if (!d.ok()) return d.status();
        bool met = false;
        std::string failed;
        switch (dep.condition()) {
          case v1::Dependency::CONDITION_HEALTHY:
            met = d->health() == v1::HEALTH_HEALTHY;
            if (d->state() == v1::CONTAINER_STATE_STOPPED) failed = "it ended";
            break;
          case v1::Dependency::CONDITION_EXITED_OK:
            met = d->state() == v1::CONTAINER_STATE_STOPPED && d->last_exit().code() == 0 &&
                  d->last_exit().error().empty();
            if (d->state() == v1::CONTAINER_STATE_STOPPED && !met) {
              failed = absl::StrCat("it ended with code ", d->last_exit().code());
            }
            break;
          default:
            met = d->state() == v1::CONTAINER_STATE_RUNNING || d->has_last_exit();
            break;
        }
        if (met) break;
        if (!failed.empty() || absl::Now() > deadline || cancelled()) {
          const std::string why =
              !failed.empty()
                  ? failed
                  : (cancelled()
                         ? "the client went away"
                         : absl::StrCat("not within ", absl::FormatDuration(kDependencyTimeout)));
          report(Member(v1::MemberStatus::KIND_CONTAINER, short_member, v1::MEMBER_ACTION_FAILED,
                        absl::StrCat("waited for ", dep.container(), " to be ", what, ": ", why)));
          return absl::FailedPreconditionError(
              absl::StrCat("group ", Q(group), ": container ", Q(short_member), " waited for ",
                           Q(dep.container()), " to be ", what, ": ", why));
        }
        if (!announced) {
          announced = true;
          v1::MemberStatus waiting =
              Member(v1::MemberStatus::KIND_CONTAINER, short_member, v1::MEMBER_ACTION_UNSPECIFIED,
                     absl::StrCat("waiting for ", dep.container(), " to be ", what));
          report(waiting);
        }
        absl::SleepFor(absl::Milliseconds(100));
      }
    }
    auto it = have_containers.find(c.name());
    if (it != have_containers.end()) {
      if (it->second.state() == v1::CONTAINER_STATE_CREATED) {
        std::vector<v1::MemberStatus> linked;
        MESH_RETURN_IF_ERROR(SyncLinks(spec, collect(linked), short_member));
        absl::StatusOr<v1::Container> started = containers_.Start(c.name());
        if (!started.ok()) return started.status();
        v1::MemberStatus status =
            Member(v1::MemberStatus::KIND_CONTAINER, short_member, v1::MEMBER_ACTION_STARTED);
        status.set_state(started->state());
        report(status);
        for (const v1::MemberStatus& l : linked) report(l);
      }
      continue;
    }
    // Created, then its links (so it starts with all its interfaces), then started.
    v1::CreateContainerRequest create;
    *create.mutable_spec() = c;
    v1::MemberStatus status = Member(
        v1::MemberStatus::KIND_CONTAINER, short_member,
        recreated.contains(c.name()) ? v1::MEMBER_ACTION_RECREATED : v1::MEMBER_ACTION_CREATED);
    absl::StatusOr<v1::Container> created = containers_.Create(create, group);
    std::vector<v1::MemberStatus> linked;  // reported after the member
    if (created.ok()) {
      // Its links and its addresses in the policy, before its command runs.
      absl::Status s = SyncLinks(spec, collect(linked), short_member);
      if (s.ok()) s = ApplyPolicy(spec);
      if (!s.ok()) {
        created = s;
      } else {
        RefreshPoliciesNaming(group);  // other groups' rules about this one see it, too
        created = containers_.Start(c.name());
      }
    }
    if (!created.ok()) {
      // Created but not started: the failed member goes (the others stay as applied).
      containers_.Remove(c.name(), /*force=*/true).IgnoreError();
      status.set_action(v1::MEMBER_ACTION_FAILED);
      status.set_message(std::string(created.status().message()));
      report(status);
      return absl::Status(created.status().code(),
                          absl::StrCat("group ", Q(group), ": container ", Q(short_member), ": ",
                                       created.status().message()));
    }
    FaultPoint("group.apply.member");
    status.set_state(created->state());
    status.set_health(created->health());
    report(status);
    for (const v1::MemberStatus& l : linked) report(l);
  }

  if (!same_spec || changed) {
    record.set_phase(storev1::PHASE_READY);
    *record.mutable_applied_at() = ToProtoTimestamp(absl::Now());
    MESH_RETURN_IF_ERROR(store_.Put(group, record));
    absl::MutexLock lock(&mu_);
    groups_[group] = record;
  }
  forget.Commit();
  // Members may have gone or changed addresses: other groups' rules about this one follow.
  RefreshPoliciesNaming(group);
  v1::Event event;
  event.set_kind(v1::Event::KIND_GROUP_APPLIED);
  event.set_object(group);
  events_.Publish(std::move(event), spec.labels().labels());
  return ToApi(record);
}

absl::StatusOr<storev1::GroupRecord> GroupController::Record(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(name);
  if (it == groups_.end()) {
    return absl::NotFoundError(
        absl::StrCat("group ", Q(name), " not found; `meshctl group ls` lists the groups"));
  }
  return it->second;
}

absl::StatusOr<std::vector<v1::MemberStatus>> GroupController::Delete(const std::string& name) {
  absl::MutexLock group_lock(GroupLock(name));
  MESH_ASSIGN_OR_RETURN(storev1::GroupRecord record, Record(name));
  absl::Cleanup not_deleting = [this, &name] {
    absl::MutexLock lock(&mu_);
    deleting_.erase(name);
  };
  std::vector<v1::MemberStatus> removed;
  v1::ListContainersRequest mine;
  mine.set_all(true);
  mine.set_group(name);
  std::vector<v1::Container> containers = containers_.List(mine);
  // Reverse dependency order: those sharing a namespace first, then the spec's order reversed.
  std::map<std::string, int> rank;
  const std::vector<int> order = DependencyOrder(record.spec());
  for (size_t i = 0; i < order.size(); ++i) {
    rank[MemberName(name, record.spec().containers(order[i]).spec().name())] = static_cast<int>(i);
  }
  std::stable_sort(containers.begin(), containers.end(),
                   [&](const v1::Container& a, const v1::Container& b) {
                     const bool a_shares = !a.spec().network_from().empty();
                     const bool b_shares = !b.spec().network_from().empty();
                     if (a_shares != b_shares) return a_shares;
                     return rank[a.spec().name()] > rank[b.spec().name()];
                   });
  // The policy first (its addresses are about to be free), then the links: they are the
  // members' interfaces, and each says what went.
  {
    // Marked first, under policy_mu_: no refresh puts the policy back once it is removed.
    absl::MutexLock policy_lock(&policy_mu_);
    {
      absl::MutexLock lock(&mu_);
      deleting_.insert(name);
    }
    MESH_RETURN_IF_ERROR(netplane_.RemovePolicy(name));
  }
  RefreshPoliciesNaming(name, /*deleted=*/true);
  v1::GroupSpec without_links = record.spec();
  without_links.clear_links();
  MESH_RETURN_IF_ERROR(SyncLinks(
      without_links, [&removed](const v1::MemberStatus& status) { removed.push_back(status); }));
  const size_t prefix = name.size() + 1;
  for (const v1::Container& c : containers) {
    MESH_RETURN_IF_ERROR(containers_.Remove(c.spec().name(), /*force=*/true));
    removed.push_back(Member(v1::MemberStatus::KIND_CONTAINER, c.spec().name().substr(prefix),
                             v1::MEMBER_ACTION_REMOVED));
  }
  for (const v1::Network& n : networks_.List(v1::LabelSelector())) {
    if (n.group() != name) continue;
    MESH_RETURN_IF_ERROR(networks_.Remove(n.spec().name()));
    removed.push_back(Member(v1::MemberStatus::KIND_NETWORK, n.spec().name().substr(prefix),
                             v1::MEMBER_ACTION_REMOVED));
  }
  MESH_RETURN_IF_ERROR(store_.DeleteGroup(name));
  {
    absl::MutexLock lock(&mu_);
    groups_.erase(name);
  }
  v1::Event event;
  event.set_kind(v1::Event::KIND_GROUP_DELETED);
  event.set_object(name);
  events_.Publish(std::move(event), record.spec().labels().labels());
  return removed;
}

v1::Group GroupController::ToApi(const storev1::GroupRecord& record) const {
  v1::Group group;
  *group.mutable_spec() = record.spec();
  *group.mutable_applied_at() = record.applied_at();
  const std::string& name = record.spec().name();
  for (const v1::NetworkSpec& n : record.spec().networks()) {
    v1::MemberStatus* status = group.add_members();
    status->set_kind(v1::MemberStatus::KIND_NETWORK);
    status->set_name(n.name());
    const bool exists = networks_.Record(MemberName(name, n.name())).ok();
    status->set_action(exists ? v1::MEMBER_ACTION_UNCHANGED : v1::MEMBER_ACTION_UNSPECIFIED);
    if (!exists) status->set_message("missing; apply the group again");
  }
  for (const v1::GroupContainer& member : record.spec().containers()) {
    v1::MemberStatus* status = group.add_members();
    status->set_kind(v1::MemberStatus::KIND_CONTAINER);
    status->set_name(member.spec().name());
    absl::StatusOr<v1::Container> c = containers_.Get(MemberName(name, member.spec().name()));
    if (!c.ok()) {
      status->set_message("missing; apply the group again");
      continue;
    }
    status->set_action(v1::MEMBER_ACTION_UNCHANGED);
    status->set_state(c->state());
    status->set_health(c->health());
  }
  auto netns_of = [this](const std::string& c) { return NetnsOf(c); };
  for (int i = 0; i < record.spec().links_size(); ++i) {
    v1::MemberStatus* status = group.add_members();
    status->set_kind(v1::MemberStatus::KIND_LINK);
    status->set_name(LinkName(record.spec().links(i)));
    absl::StatusOr<netplane::LinkConfig> config = ToLinkConfig(record.spec(), i, netns_of);
    bool there = false;
    if (config.ok() && !config->ends[0].netns_path.empty() && !config->ends[1].netns_path.empty()) {
      there = links_.Present(*config).value_or(false);
    }
    status->set_action(there ? v1::MEMBER_ACTION_UNCHANGED : v1::MEMBER_ACTION_UNSPECIFIED);
    if (!there) status->set_message("missing; apply the group again");
  }
  return group;
}

absl::StatusOr<v1::Group> GroupController::Get(const std::string& name) const {
  MESH_ASSIGN_OR_RETURN(storev1::GroupRecord record, Record(name));
  return ToApi(record);
}

std::vector<v1::Group> GroupController::List(const v1::LabelSelector& selector) const {
  std::vector<storev1::GroupRecord> records;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, record] : groups_) {
      if (MatchesSelector(selector, record.spec().labels().labels())) records.push_back(record);
    }
  }
  std::vector<v1::Group> out;
  for (const auto& record : records) out.push_back(ToApi(record));
  return out;
}

size_t GroupController::size() const {
  absl::MutexLock lock(&mu_);
  return groups_.size();
}

}  // namespace mesh::agent
