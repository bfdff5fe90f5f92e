#pragma once

// Containers through the API: the runtime container (under its mesh-shim), a pinned network
// namespace attached to its networks through netplane, its published ports and /etc files,
// restart policies, and the record that says all of it (DESIGN.md decisions 3 and 4).
//
// Locking: `mu_` guards the registry (name -> entry) and is held only to look up or insert.
// Each entry has `op_mu`, held for the whole of one operation on that container (create,
// start, stop, remove, connect, a restart), and `mu`, held briefly to read or change its
// record. So calls on different containers run in parallel, and Get/List never wait for a
// Stop's grace period.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/controller/networks.h"
#include "agent/controller/scheduler.h"
#include "agent/controller/shim_watcher.h"
#include "agent/dns/zone.h"
#include "agent/events/event_bus.h"
#include "agent/store/store.h"
#include "base/unique_fd.h"
#include "mesh/v1/containers.pb.h"
#include "netplane/network/network_manager.h"
#include "runtime/container/runtime.h"
#include "runtime/image/image_store.h"

namespace mesh::agent {

struct ContainerControllerOptions {
  std::string netns_dir;  // <run_dir>/netns
  std::string cgroup_parent = "mesh";
  // The host's resolver configuration: containers inherit its search domains and options,
  // and, with meshd's DNS off, its nameservers (loopback ones skipped, as Docker does).
  std::string host_resolv_conf = "/etc/resolv.conf";
};

class ContainerController {
 public:
  ContainerController(ContainerControllerOptions options, Store& store, runtime::Runtime& runtime,
                      runtime::image::ImageStore& images, netplane::NetworkManager& netplane,
                      NetworkController& networks, EventBus& events, dns::Zone* zone = nullptr);
  ~ContainerController();

  // Recovery, step 1: rolls back records that were CREATING, finishes those REMOVING, adopts
  // the READY ones, and makes sure each of their network namespaces is pinned (a fresh one
  // after a reboot). Returns what netplane must hold for them.
  std::vector<netplane::AttachResult> Restore(
      const std::map<std::string, storev1::ContainerRecord>& records);
  // Recovery, step 2 (after netplane's Reconcile): re-attaches to the runtime containers that
  // live, records the exits that happened while meshd was down and applies restart policies,
  // makes runtime containers that are missing (after a reboot), and removes runtime
  // containers, network namespaces and cgroups that no record owns.
  void Resume();

  absl::StatusOr<v1::Container> Create(const v1::CreateContainerRequest& request,
                                       const std::string& group = "",
                                       const std::string& spec_digest = "");
  absl::StatusOr<v1::Container> Start(const std::string& name);
  absl::StatusOr<v1::Container> Stop(const std::string& name,
                                     std::optional<absl::Duration> timeout);
  absl::StatusOr<v1::Container> Kill(const std::string& name, const std::string& signal);
  absl::Status Remove(const std::string& name, bool force);
  absl::StatusOr<v1::Container> Get(const std::string& name) const;
  std::vector<v1::Container> List(const v1::ListContainersRequest& request) const;
  // Blocks until the container is not running (or gone, with `until_removed`), or until
  // `cancelled` returns true (Cancelled).
  absl::StatusOr<v1::Exit> Wait(const std::string& name, bool until_removed,
                                const std::function<bool()>& cancelled);
  absl::StatusOr<v1::ContainerStats> Stats(const std::string& name) const;
  // The live log file of the container.
  absl::StatusOr<std::string> LogPath(const std::string& name) const;
  // The pinned network namespace the container's network is in (its own, or network_from's).
  absl::StatusOr<std::string> NetworkNamespace(const std::string& name) const;
  absl::StatusOr<ExitStatus> Exec(const v1::ExecStart& start, const runtime::Runtime::ExecIo& io);
  absl::StatusOr<v1::ContainerAddress> Connect(const std::string& name, const std::string& network,
                                               const std::string& ip,
                                               const std::vector<std::string>& aliases);
  absl::Status Disconnect(const std::string& name, const std::string& network);

  // The stored record (for groups); NotFound if there is none.
  absl::StatusOr<storev1::ContainerRecord> Record(const std::string& name) const;
  struct Counts {
    uint32_t running = 0;
    uint32_t stopped = 0;
  };
  Counts Count() const;

 private:
  // A thread running a container's health check every interval until stopped (destruction
  // stops it at once, also in the middle of a check).
  struct HealthMonitor {
    UniqueFd stop;  // eventfd
    std::thread thread;
    ~HealthMonitor();
  };
  struct Entry {
    absl::Mutex op_mu;  // one operation at a time (see the file comment)
    mutable absl::Mutex mu ABSL_ACQUIRED_AFTER(op_mu);
    storev1::ContainerRecord record ABSL_GUARDED_BY(mu);
    bool removed ABSL_GUARDED_BY(mu) = false;
    // A restart is scheduled; `generation` changes whenever a pending restart must not run.
    bool restart_pending ABSL_GUARDED_BY(mu) = false;
    uint64_t generation ABSL_GUARDED_BY(mu) = 0;
    int backoff_step ABSL_GUARDED_BY(mu) = 0;
    v1::Health health ABSL_GUARDED_BY(mu) = v1::HEALTH_UNSPECIFIED;
    // Runs the health check while the command runs (with one only).
    std::unique_ptr<HealthMonitor> health_monitor ABSL_GUARDED_BY(op_mu);
  };
  using EntryPtr = std::shared_ptr<Entry>;

  absl::StatusOr<EntryPtr> Find(const std::string& name) const;
  void Save(Entry& entry, const storev1::ContainerRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.op_mu);
  v1::Container ToApi(const Entry& entry) const;
  // The runtime's spec for a record: ToRuntimeSpec plus the netns and /etc files.
  absl::StatusOr<runtime::ContainerSpec> RuntimeSpecOf(
      const storev1::ContainerRecord& record) const;
  // The pinned netns a container's network comes from (its own, or network_from's).
  absl::StatusOr<std::string> NetnsOf(const storev1::ContainerRecord& record) const;
  // The record of the container whose namespace that is (itself, or the end of the
  // network_from chain).
  absl::StatusOr<storev1::ContainerRecord> NetworkOwner(
      const storev1::ContainerRecord& record) const;
  std::string NetnsPath(const std::string& name) const { return options_.netns_dir + "/" + name; }
  std::string HostsFile(const storev1::ContainerRecord& record) const;
  // With meshd's DNS: the gateway of the first network the container's namespace is on, and
  // its group as the first search domain. Without (or with no network): the host's resolvers.
  std::string ResolvConf(const storev1::ContainerRecord& record) const;
  // After a connect or disconnect: names, /etc/hosts and /etc/resolv.conf as the record says
  // now, the container's and those of the containers in its namespace (network_from).
  void NetworkChanged(const std::string& name, const storev1::ContainerRecord& record);
  // The zone's entry for the container as the record says it is (no-op with DNS off).
  void PutNames(const storev1::ContainerRecord& record);
  // Makes the runtime container (created, not started) and watches its shim. `again`: one
  // that ran before (Runtime::Recreate: its writable layer and log are kept).
  absl::Status CreateRuntime(const storev1::ContainerRecord& record, bool again = false);
  // Starts a READY container whatever its runtime state (making it again if it ended).
  absl::Status StartLocked(Entry& entry, const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.op_mu);
  // Takes apart what a record says exists (runtime container, attachments, netns, record).
  absl::Status Teardown(const std::string& name, const storev1::ContainerRecord& record);
  void Watch(const std::string& name);
  // Starts (or restarts) the health check of a running container, if it has one.
  void StartHealthMonitor(Entry& entry, const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.op_mu);
  void RunHealthChecks(std::shared_ptr<Entry> entry, std::string name, int stop_fd);
  // The shim of `name` ended: record the exit and apply the restart policy.
  void HandleExit(const std::string& name);
  // Records the end of a stopped container's run once: last_exit saved into `record` and the
  // store, the died event published. False when this run's end was recorded already.
  bool RecordExit(Entry& entry, const std::string& name, storev1::ContainerRecord& record,
                  const runtime::ContainerState& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.op_mu);
  void Restart(const std::string& name, uint64_t generation);
  // Posts a Restart after the back-off (entry.op_mu held); `state`: the run that ended.
  void ScheduleRestart(Entry& entry, const std::string& name,
                       const storev1::ContainerRecord& record, const runtime::ContainerState& state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.op_mu);
  void Publish(v1::Event::Kind kind, const std::string& name,
               const storev1::ContainerRecord& record,
               std::map<std::string, std::string> attributes = {});

  const ContainerControllerOptions options_;
  Store& store_;
  runtime::Runtime& runtime_;
  runtime::image::ImageStore& images_;
  netplane::NetworkManager& netplane_;
  NetworkController& networks_;
  EventBus& events_;
  dns::Zone* const zone_;  // null: meshd's DNS is off

  mutable absl::Mutex mu_;
  std::map<std::string, EntryPtr> entries_ ABSL_GUARDED_BY(mu_);

  Scheduler scheduler_;  // exits and delayed restarts, one at a time
  ShimWatcher watcher_;  // last: stopped first
};

// NotFound for an unknown container, with what to do.
absl::Status ContainerNotFound(const std::string& name);
// The restart back-off before restart number `step` (0-based): 100 ms doubling, at most 1 min.
absl::Duration RestartBackoff(int step);
// Whether a container that ended with `exit` restarts under `policy`, having restarted
// `restarts` times already, unless it was stopped through the API.
bool ShouldRestart(const v1::RestartPolicy& policy, const v1::Exit& exit, uint32_t restarts,
                   bool stopped_by_user);

}  // namespace mesh::agent
