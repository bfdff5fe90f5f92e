#include "agent/events/event_bus.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/api/convert.h"
#include "agent/api/selector.h"

namespace mesh::agent {

struct EventBus::Item {
  v1::Event event;
  absl::Time time;
  google::protobuf::Map<std::string, std::string> labels;
};

struct EventBus::Hub {
  explicit Hub(Options o) : options(o) {}

  const Options options;
  mutable absl::Mutex mu;
  // A ring of the most recent events: history_next is where the next one goes.
  std::vector<std::shared_ptr<const Item>> history ABSL_GUARDED_BY(mu);
  size_t history_next ABSL_GUARDED_BY(mu) = 0;
  std::vector<Subscription*> subscribers ABSL_GUARDED_BY(mu);
};

EventBus::EventBus() : EventBus(Options{}) {}

EventBus::EventBus(Options options) {
  options.queue_limit = std::max<size_t>(options.queue_limit, 1);
  options.history = std::min(options.history, options.queue_limit);
  hub_ = std::make_shared<Hub>(options);
}

EventBus::~EventBus() = default;

void EventBus::Publish(v1::Event event, const std::map<std::string, std::string>& labels) {
  google::protobuf::Map<std::string, std::string> map(labels.begin(), labels.end());
  Publish(std::move(event), map);
}

void EventBus::Publish(v1::Event event,
                       const google::protobuf::Map<std::string, std::string>& labels) {
  auto item = std::make_shared<Item>();
  item->event = std::move(event);
  item->labels = labels;
  absl::MutexLock lock(&hub_->mu);
  // Stamped under the lock, so that events the bus stamps are held in time order.
  if (!item->event.has_time()) *item->event.mutable_time() = ToProtoTimestamp(absl::Now());
  item->time = FromProtoTimestamp(item->event.time());
  std::shared_ptr<const Item> shared = std::move(item);

  Hub& hub = *hub_;
  if (hub.options.history > 0) {
    if (hub.history.size() < hub.options.history) {
      hub.history.push_back(shared);
    } else {
      hub.history[hub.history_next] = shared;
    }
    hub.history_next = (hub.history_next + 1) % hub.options.history;
  }
  for (Subscription* subscription : hub.subscribers) {
    if (subscription->Matches(*shared)) subscription->Push(shared);
  }
}

std::unique_ptr<EventBus::Subscription> EventBus::Subscribe(const v1::EventsRequest& request) {
  std::unique_ptr<Subscription> subscription(new Subscription(hub_, request, absl::Now()));
  Hub& hub = *hub_;
  absl::MutexLock lock(&hub.mu);
  if (request.has_since()) {
    const absl::Time since = FromProtoTimestamp(request.since());
    // Oldest first: from history_next once the ring is full, from 0 before.
    const size_t n = hub.history.size();
    const size_t first = n < hub.options.history ? 0 : hub.history_next;
    for (size_t i = 0; i < n; ++i) {
      const std::shared_ptr<const Item>& item = hub.history[(first + i) % n];
      if (item->time >= since && subscription->Matches(*item)) subscription->Push(item);
    }
  }
  hub.subscribers.push_back(subscription.get());
  return subscription;
}

size_t EventBus::SubscriberCount() const {
  absl::MutexLock lock(&hub_->mu);
  return hub_->subscribers.size();
}

EventBus::Subscription::Subscription(std::shared_ptr<Hub> hub, const v1::EventsRequest& request,
                                     absl::Time now)
    : hub_(std::move(hub)),
      queue_limit_(hub_->options.queue_limit),
      selector_(request.selector()),
      resume_since_(request.has_since() ? FromProtoTimestamp(request.since()) : now) {
  for (int kind : request.kinds()) {
    all_kinds_ = false;
    // An unknown kind matches nothing.
    if (kind >= 0 && static_cast<size_t>(kind) < kinds_.size()) kinds_.set(kind);
  }
}

EventBus::Subscription::~Subscription() {
  absl::MutexLock lock(&hub_->mu);
  std::vector<Subscription*>& subscribers = hub_->subscribers;
  auto it = std::find(subscribers.begin(), subscribers.end(), this);
  if (it != subscribers.end()) {
    *it = subscribers.back();
    subscribers.pop_back();
  }
}

bool EventBus::Subscription::Matches(const Item& item) const {
  if (!all_kinds_) {
    const int kind = item.event.kind();
    if (kind < 0 || static_cast<size_t>(kind) >= kinds_.size() || !kinds_.test(kind)) return false;
  }
  return MatchesSelector(selector_, item.labels);
}

void EventBus::Subscription::Push(std::shared_ptr<const Item> item) {
  std::vector<std::shared_ptr<const Item>> dropped;
  {
    absl::MutexLock lock(&mu_);
    if (overflowed_) return;
    if (size_ == queue_limit_) {
      // Cut off: what it holds goes now, not when (or if) its reader comes back.
      overflowed_ = true;
      dropped.swap(ring_);
      head_ = 0;
      size_ = 0;
      return;
    }
    if (size_ == ring_.size()) {
      std::vector<std::shared_ptr<const Item>> grown;
      grown.reserve(std::min(queue_limit_, std::max<size_t>(16, 2 * ring_.size())));
      for (size_t i = 0; i < size_; ++i)
        grown.push_back(std::move(ring_[(head_ + i) % ring_.size()]));
      grown.resize(grown.capacity());
      ring_ = std::move(grown);
      head_ = 0;
    }
    ring_[(head_ + size_) % ring_.size()] = std::move(item);
    ++size_;
  }
}

bool EventBus::Subscription::Ready() const { return size_ > 0 || overflowed_; }

absl::StatusOr<std::optional<v1::Event>> EventBus::Subscription::Next(absl::Duration timeout) {
  std::shared_ptr<const Item> item;
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(this, &Subscription::Ready), timeout);
    if (overflowed_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "events stream fell behind by more than ", queue_limit_, " events; reconnect with since=",
          absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", resume_since_, absl::UTCTimeZone())));
    }
    if (size_ == 0) return std::nullopt;
    item = std::move(ring_[head_]);
    head_ = (head_ + 1) % ring_.size();
    --size_;
    resume_since_ = item->time;
  }
  return item->event;
}

}  // namespace mesh::agent
