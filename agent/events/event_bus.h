#pragma once

// The hub behind SystemService.Events: controllers publish what happened to their objects,
// every Events stream subscribes with its filter and reads at its own pace.
//
// Memory stays bounded however many streams there are and however slowly they read (TESTING.md
// #22): the bus holds the most recent `history` events for `since` replays, and each
// subscription holds at most `queue_limit` unread events; a subscription that would need more
// is cut off (Subscription::Next says so) instead of slowing the publishers or growing. An
// event is stored once, whatever the number of subscriptions that hold it.

#include <bitset>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/map.h"
#include "mesh/v1/system.pb.h"

namespace mesh::agent {

class EventBus {
 public:
  struct Options {
    // The most recent events kept for `since` replays. At most `queue_limit` (larger is
    // lowered to it, so that a replay always fits a new subscription).
    size_t history = 1024;
    // Unread events a subscription may hold before it is cut off; at least 1.
    size_t queue_limit = 4096;
  };
  class Subscription;

  EventBus();
  explicit EventBus(Options options);
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  // Hands `event` to every subscription whose filter it matches, and keeps it for replays.
  // Sets event.time to now when it is unset. `labels` are the labels of the event's object
  // (container, network, group): they are matched against selectors and not sent. Thread-safe;
  // never waits for a subscriber (a full subscription is cut off instead). Costs one copy of
  // the event and labels, whatever the number of subscriptions.
  void Publish(v1::Event event, const google::protobuf::Map<std::string, std::string>& labels);
  void Publish(v1::Event event, const std::map<std::string, std::string>& labels = {});

  // A subscription to what matches `request`: first the held events whose time is at or after
  // `request.since` (only when since is set), oldest first, then every matching event
  // published from now on, in the order of publication. Matching: the event's kind is one of
  // `kinds` (none: every kind) and its object's labels satisfy `selector` (every `equals`
  // entry, every `has` key; an empty selector matches every event, also one without labels).
  // Thread-safe. The subscription unsubscribes when destroyed; it may outlive the bus (it then
  // receives nothing more).
  std::unique_ptr<Subscription> Subscribe(const v1::EventsRequest& request);

  // Subscriptions alive now.
  size_t SubscriberCount() const;

 private:
  struct Hub;
  struct Item;

  std::shared_ptr<Hub> hub_;
};

// One reader of the bus, used by one thread at a time (its Events stream).
class EventBus::Subscription {
 public:
  ~Subscription();
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  // The next event, waiting at most `timeout` for one; nullopt when none came in time (the
  // caller checks whether its client is still there and calls again). RESOURCE_EXHAUSTED once
  // a publication found this subscription's queue full: "events stream fell behind by more
  // than 4096 events; reconnect with since=<time>", where <time> is that of the last event
  // returned (or the subscription's since, or the time it was made, when none was). The
  // subscription then drops what it held and stays failed. A reconnect with that since gets
  // the last event returned once more, and loses what the bus no longer holds.
  absl::StatusOr<std::optional<v1::Event>> Next(absl::Duration timeout);

 private:
  friend class EventBus;

  Subscription(std::shared_ptr<Hub> hub, const v1::EventsRequest& request, absl::Time now);
  bool Matches(const Item& item) const;
  // Queues `item`, or cuts the subscription off when its queue is full. Called by the bus with
  // the hub's lock held.
  void Push(std::shared_ptr<const Item> item);
  bool Ready() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<Hub> hub_;
  const size_t queue_limit_;
  // Filter: kinds_ indexed by Event::Kind (none set: every kind).
  std::bitset<v1::Event::Kind_ARRAYSIZE> kinds_;
  bool all_kinds_ = true;
  const v1::LabelSelector selector_;

  absl::Mutex mu_;
  // A ring of unread events (head_ is the oldest), grown by doubling up to queue_limit_ and
  // kept, so that a subscription that keeps up does not allocate per event.
  std::vector<std::shared_ptr<const Item>> ring_ ABSL_GUARDED_BY(mu_);
  size_t head_ ABSL_GUARDED_BY(mu_) = 0;
  size_t size_ ABSL_GUARDED_BY(mu_) = 0;
  bool overflowed_ ABSL_GUARDED_BY(mu_) = false;
  // The since a reconnect after falling behind should ask for.
  absl::Time resume_since_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mesh::agent
