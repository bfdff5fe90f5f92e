#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "netplane/netfilter/conntrack.h"
#include "netplane/netlink/rtnl_ops.h"

namespace mesh::netplane {

// Deletes links that mesh has taken out of service, in the background and many per kernel
// call. Deleting a veth pair costs the caller about 15 ms here, nearly all of it waiting for
// RCU grace periods in the kernel; one group delete of 50 pairs costs about 30 ms. So a detach
// only retires the host end (into kRetiredLinkGroup, after cutting it off in nftables: one
// fast request each) and the reaper deletes the whole group soon after.
//
// A retired link still holds its names until it is reaped: the host end's name in the host
// namespace and the peer's name (eth0, ...) in the container's. A caller about to create a
// link that could clash calls AwaitReaped first.
//
// Batching: the reaper starts a batch once no link was retired for kQuiet, or the oldest one
// waited kMaxDelay, or kMaxBatch are pending, or somebody waits for one; so a burst of
// detaches becomes one kernel call, and its RCU waits (taken under the kernel's rtnl lock)
// seldom stall a concurrent attach.
//
// Its thread is created in the constructor and stays in the caller's network namespace.
class LinkReaper {
 public:
  // `ops`: its own rtnetlink handle on the namespace of the retired links (the reaper's
  // thread must not queue behind the caller's calls on a shared socket).
  // `after_delete`: runs once per batch, after its links are gone and before any entry's
  // `then`, with the batch's link names and the stale flows of all its entries (to undo the
  // cut-off and drop conntrack entries of host ports in one go).
  using AfterDelete = std::function<void(const std::vector<std::string>& names,
                                         const std::vector<netfilter::ProtoPort>& stale_flows)>;
  LinkReaper(std::unique_ptr<netlink::RtnlOps> ops, AfterDelete after_delete);
  // Reaps what is pending, then stops.
  ~LinkReaper();
  LinkReaper(const LinkReaper&) = delete;
  LinkReaper& operator=(const LinkReaper&) = delete;

  // `name` has been retired (RtnlOps::RetireLink with kRetiredLinkGroup); its peer, if any,
  // lives in the network namespace with inode `peer_netns` (0: none). Once the link is gone,
  // the reaper's thread passes `stale_flows` to `after_delete` and then runs `then` (what must
  // follow: freeing its address). The entry is pending until `then` has returned.
  void Schedule(std::string name, uint64_t peer_netns,
                std::vector<netfilter::ProtoPort> stale_flows, std::function<void()> then);
  // Blocks until no retired link named `name`, and none with a peer in `peer_netns` (unless
  // 0), is left.
  void AwaitReaped(absl::string_view name, uint64_t peer_netns);
  // Blocks until every link retired so far is gone (and its `then` has run).
  void AwaitAll();
  // Whether anything is scheduled and not finished.
  bool Busy() const;
  // How many retired links are not deleted yet.
  size_t Pending() const;

 private:
  struct Entry {
    std::string name;
    uint64_t peer_netns = 0;
    std::vector<netfilter::ProtoPort> stale_flows;
    std::function<void()> then;
  };
  static constexpr absl::Duration kQuiet = absl::Milliseconds(20);
  static constexpr absl::Duration kMaxDelay = absl::Milliseconds(500);
  static constexpr size_t kMaxBatch = 64;

  void Run();
  // Waits, under mu_, until Run() should start the next batch.
  void GatherBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Clashes(absl::string_view name, uint64_t peer_netns) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::unique_ptr<netlink::RtnlOps> ops_;
  const AfterDelete after_delete_;
  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);    // waiting for the next batch
  std::vector<Entry> in_flight_ ABSL_GUARDED_BY(mu_);  // in the batch being deleted
  absl::Time first_scheduled_ ABSL_GUARDED_BY(mu_);    // of the oldest entry in entries_
  absl::Time last_scheduled_ ABSL_GUARDED_BY(mu_);
  int waiters_ ABSL_GUARDED_BY(mu_) = 0;  // callers blocked in Await*: no more batching
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: started once the rest exists
};

}  // namespace mesh::netplane
