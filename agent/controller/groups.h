#pragma once

// Groups (DESIGN.md decision 8): Apply makes the group's networks and containers match its
// spec: creates what is missing, removes what is gone, recreates what changed, starts members
// in dependency order, and leaves the rest running. Members are ordinary containers and
// networks named "<group>-<name>", with `group` in their records; the group's record holds
// the spec last applied. Every member change is atomic on its own (its own record), so an
// Apply interrupted at any point converges with the next one.

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/controller/containers.h"
#include "agent/controller/networks.h"
#include "agent/events/event_bus.h"
#include "agent/store/store.h"
#include "mesh/v1/groups.pb.h"
#include "netplane/network/link_manager.h"

namespace mesh::agent {

class GroupController {
 public:
  GroupController(Store& store, ContainerController& containers, NetworkController& networks,
                  netplane::LinkManager& links, netplane::NetworkManager& netplane,
                  EventBus& events)
      : store_(store),
        containers_(containers),
        networks_(networks),
        links_(links),
        netplane_(netplane),
        events_(events) {}

  void Restore(const std::map<std::string, storev1::GroupRecord>& records);
  // Recovery, before netplane's reconcile: every group's policy as its members' addresses
  // are now (netplane's DesiredState.policies).
  std::vector<netplane::nft::PolicyEntry> Policies() const;
  // Recovery, after the containers' namespaces are back: makes every group's links match its
  // spec (a link that went missing is made again, one nothing wants goes). Errors are logged.
  void ReconcileLinks();

  using Progress = std::function<void(const v1::MemberStatus&)>;
  // `progress` is called for every member change as it happens. `cancelled` is polled while
  // waiting for dependencies.
  absl::StatusOr<v1::Group> Apply(const v1::GroupSpec& spec, const Progress& progress,
                                  const std::function<bool()>& cancelled);
  absl::StatusOr<std::vector<v1::MemberStatus>> Delete(const std::string& name);
  absl::StatusOr<v1::Group> Get(const std::string& name) const;
  std::vector<v1::Group> List(const v1::LabelSelector& selector) const;
  size_t size() const;

  // How long Apply waits for a dependency's condition.
  static constexpr absl::Duration kDependencyTimeout = absl::Minutes(5);

 private:
  // One Apply or Delete per group at a time.
  absl::Mutex* GroupLock(const std::string& name);
  v1::Group ToApi(const storev1::GroupRecord& record) const;
  // NotFound naming the group if there is none.
  absl::StatusOr<storev1::GroupRecord> Record(const std::string& name) const;
  // Makes the group's links match `spec`, for the links whose two members exist: a link whose
  // configuration changed, or that the spec no longer has, is removed; a missing one is made.
  // With `member` (a short name): only that member's links are made, and nothing is removed.
  // Each change goes to `report`; the first error stops it.
  absl::Status SyncLinks(const v1::GroupSpec& spec, const Progress& report,
                         const std::string& member = "");
  // The group's policy for its members' addresses now, and those of the other groups it names
  // (ToPolicy); group `gone` counts as having no members (it is being deleted).
  absl::StatusOr<netplane::nft::PolicyEntry> PolicyOf(const v1::GroupSpec& spec,
                                                      const std::string& gone = "") const;
  // Puts the group's policy in force for the members that exist (none: removes it).
  // `refresh`: another group's change asks; nothing is done for a group being deleted.
  absl::Status ApplyPolicy(const v1::GroupSpec& spec, const std::string& gone = "",
                           bool refresh = false);
  // The policies of the other groups that name `group` ("group:NAME"), again: its members
  // changed (`deleted`: it is going, its addresses leave them). Failures are logged: the
  // group's own change stands.
  void RefreshPoliciesNaming(const std::string& group, bool deleted = false);
  // The pinned network namespace of a container ("" if it has none, or does not exist).
  std::string NetnsOf(const std::string& container) const;

  Store& store_;
  ContainerController& containers_;
  NetworkController& networks_;
  netplane::LinkManager& links_;
  netplane::NetworkManager& netplane_;
  EventBus& events_;
  mutable absl::Mutex mu_;
  std::map<std::string, storev1::GroupRecord> groups_ ABSL_GUARDED_BY(mu_);
  // Held from computing a policy to putting it in force, so that of two computations of one
  // group's policy the later one is always the one in force (a group's Apply and another
  // group's refresh of it may run at once). A leaf: nothing else is locked under it but mu_
  // and the controllers' own locks.
  absl::Mutex policy_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // Groups whose Delete has begun: their policy is not put back by a refresh.
  std::set<std::string> deleting_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<absl::Mutex>> locks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mesh::agent
