#include "netplane/network/link_reaper.h"

#include <algorithm>
#include <utility>

#include "base/log.h"

namespace mesh::netplane {

LinkReaper::LinkReaper(std::unique_ptr<netlink::RtnlOps> ops, AfterDelete after_delete)
    : ops_(std::move(ops)), after_delete_(std::move(after_delete)), thread_([this] { Run(); }) {}

LinkReaper::~LinkReaper() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;  // Run() finishes what is pending first
    changed_.SignalAll();
  }
  thread_.join();
}

void LinkReaper::Schedule(std::string name, uint64_t peer_netns,
                          std::vector<netfilter::ProtoPort> stale_flows,
                          std::function<void()> then) {
  absl::MutexLock lock(&mu_);
  last_scheduled_ = absl::Now();
  if (entries_.empty()) first_scheduled_ = last_scheduled_;
  entries_.push_back(Entry{std::move(name), peer_netns, std::move(stale_flows), std::move(then)});
  changed_.SignalAll();
}

bool LinkReaper::Clashes(absl::string_view name, uint64_t peer_netns) const {
  auto clashes = [&](const Entry& e) {
    return e.name == name || (peer_netns != 0 && e.peer_netns == peer_netns);
  };
  return std::any_of(entries_.begin(), entries_.end(), clashes) ||
         std::any_of(in_flight_.begin(), in_flight_.end(), clashes);
}

void LinkReaper::AwaitReaped(absl::string_view name, uint64_t peer_netns) {
  absl::MutexLock lock(&mu_);
  ++waiters_;
  changed_.SignalAll();
  while (Clashes(name, peer_netns)) changed_.Wait(&mu_);
  --waiters_;
}

void LinkReaper::AwaitAll() {
  absl::MutexLock lock(&mu_);
  ++waiters_;
  changed_.SignalAll();
  while (!entries_.empty() || !in_flight_.empty()) changed_.Wait(&mu_);
  --waiters_;
}

void LinkReaper::GatherBatch() {
  while (!stopping_ && waiters_ == 0 && entries_.size() < kMaxBatch) {
    const absl::Time deadline = std::min(last_scheduled_ + kQuiet, first_scheduled_ + kMaxDelay);
    if (absl::Now() >= deadline) return;
    changed_.WaitWithDeadline(&mu_, deadline);
  }
}

size_t LinkReaper::Pending() const {
  absl::MutexLock lock(&mu_);
  return entries_.size() + in_flight_.size();
}

bool LinkReaper::Busy() const {
  absl::MutexLock lock(&mu_);
  return !entries_.empty() || !in_flight_.empty();
}

void LinkReaper::Run() {
  for (;;) {
    std::vector<Entry> batch;
    {
      absl::MutexLock lock(&mu_);
      while (entries_.empty() && !stopping_) changed_.Wait(&mu_);
      if (entries_.empty()) return;  // stopping, and nothing is left
      GatherBatch();
      // Every entry scheduled so far was retired before it was scheduled, so the group delete
      // below sees all of them; later ones wait for the next batch.
      batch = std::move(entries_);
      entries_.clear();
      for (const Entry& e : batch) in_flight_.push_back(Entry{e.name, e.peer_netns, {}, nullptr});
    }
    absl::Status deleted = ops_->DeleteLinkGroup(netlink::kRetiredLinkGroup);
    if (!deleted.ok()) {
      // One by one, so that one bad link does not keep the others alive.
      MESH_LOG(Warning) << "deleting retired links in one batch failed (" << deleted
                        << "); deleting them one by one";
      for (const Entry& e : batch) {
        if (absl::Status s = ops_->DeleteLink(e.name); !s.ok()) {
          MESH_LOG(Warning) << "retired link " << e.name << " is left behind: " << s;
        }
      }
    }
    std::vector<std::string> names;
    std::vector<netfilter::ProtoPort> stale_flows;
    for (const Entry& e : batch) {
      names.push_back(e.name);
      stale_flows.insert(stale_flows.end(), e.stale_flows.begin(), e.stale_flows.end());
    }
    if (after_delete_) after_delete_(names, stale_flows);
    for (Entry& e : batch) {
      if (e.then) e.then();
    }
    absl::MutexLock lock(&mu_);
    in_flight_.clear();
    changed_.SignalAll();
  }
}

}  // namespace mesh::netplane
