#include "agent/events/event_bus.h"

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/api/convert.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mesh::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1796000000);

v1::Event MakeEvent(v1::Event::Kind kind, std::string object,
                    std::optional<absl::Time> time = std::nullopt) {
  v1::Event event;
  event.set_kind(kind);
  event.set_object(std::move(object));
  if (time.has_value()) *event.mutable_time() = ToProtoTimestamp(*time);
  return event;
}

v1::EventsRequest Since(absl::Time since) {
  v1::EventsRequest request;
  *request.mutable_since() = ToProtoTimestamp(since);
  return request;
}

// The objects of the events available now, until the first wait that times out.
std::vector<std::string> Drain(EventBus::Subscription& subscription) {
  std::vector<std::string> objects;
  while (true) {
    absl::StatusOr<std::optional<v1::Event>> next = subscription.Next(absl::ZeroDuration());
    EXPECT_TRUE(next.ok()) << next.status();
    if (!next.ok() || !next->has_value()) return objects;
    objects.push_back((*next)->object());
  }
}

TEST(EventBusTest, DeliversInOrderAndStampsTheTime) {
  EventBus bus;
  std::unique_ptr<EventBus::Subscription> sub = bus.Subscribe({});
  const absl::Time before = absl::Now();
  bus.Publish(MakeEvent(v1::Event::KIND_CONTAINER_CREATED, "a"));
  bus.Publish(MakeEvent(v1::Event::KIND_CONTAINER_STARTED, "b", kT0));
  bus.Publish(MakeEvent(v1::Event::KIND_CONTAINER_DIED, "c"));

  absl::StatusOr<std::optional<v1::Event>> first = sub->Next(absl::Seconds(1));
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->object(), "a");
  EXPECT_EQ((*first)->kind(), v1::Event::KIND_CONTAINER_CREATED);
  EXPECT_GE(FromProtoTimestamp((*first)->time()), before);
  EXPECT_LE(FromProtoTimestamp((*first)->time()), absl::Now());
  absl::StatusOr<std::optional<v1::Event>> second = sub->Next(absl::Seconds(1));
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ(FromProtoTimestamp((*second)->time()), kT0);  // a set time is kept
  EXPECT_THAT(Drain(*sub), ElementsAre("c"));
}

TEST(EventBusTest, NextTimesOutAndWakesForAnEvent) {
  EventBus bus;
  std::unique_ptr<EventBus::Subscription> sub = bus.Subscribe({});
  const absl::Time start = absl::Now();
  absl::StatusOr<std::optional<v1::Event>> none = sub->Next(absl::Milliseconds(30));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(25));

  std::thread publisher([&] {
    absl::SleepFor(absl::Milliseconds(20));
    bus.Publish(MakeEvent(v1::Event::KIND_NETWORK_CREATED, "front"));
  });
  absl::StatusOr<std::optional<v1::Event>> next = sub->Next(absl::Seconds(10));
  publisher.join();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ((*next)->object(), "front");
}

TEST(EventBusTest, SinceReplaysHeldEventsThenLiveOnes) {
  EventBus bus;
  for (int i = 0; i < 5; ++i) {
    bus.Publish(
        MakeEvent(v1::Event::KIND_CONTAINER_STARTED, absl::StrCat("c", i), kT0 + absl::Seconds(i)));
  }
  // Without since: only what comes from now on.
  std::unique_ptr<EventBus::Subscription> live = bus.Subscribe({});
  // Since is inclusive.
  std::unique_ptr<EventBus::Subscription> replay = bus.Subscribe(Since(kT0 + absl::Seconds(3)));
  std::unique_ptr<EventBus::Subscription> all = bus.Subscribe(Since(absl::UnixEpoch()));
  bus.Publish(MakeEvent(v1::Event::KIND_CONTAINER_DIED, "c5", kT0 + absl::Seconds(5)));
  EXPECT_THAT(Drain(*live), ElementsAre("c5"));
  EXPECT_THAT(Drain(*replay), ElementsAre("c3", "c4", "c5"));
  EXPECT_THAT(Drain(*all), ElementsAre("c0", "c1", "c2", "c3", "c4", "c5"));
}

TEST(EventBusTest, HoldsOnlyTheMostRecentEvents) {
  EventBus bus(EventBus::Options{.history = 4});
  for (int i = 0; i < 10; ++i) {
    bus.Publish(MakeEvent(v1::Event::KIND_IMAGE_IMPORTED, absl::StrCat("i", i)));
  }
  std::unique_ptr<EventBus::Subscription> sub = bus.Subscribe(Since(absl::UnixEpoch()));
  EXPECT_THAT(Drain(*sub), ElementsAre("i6", "i7", "i8", "i9"));
  EventBus none(EventBus::Options{.history = 0});
  none.Publish(MakeEvent(v1::Event::KIND_IMAGE_IMPORTED, "x"));
  EXPECT_THAT(Drain(*none.Subscribe(Since(absl::UnixEpoch()))), ElementsAre());
}

TEST(EventBusTest, FiltersByKind) {
  EventBus bus;
  v1::EventsRequest request;
  request.add_kinds(v1::Event::KIND_CONTAINER_STARTED);
  request.add_kinds(v1::Event::KIND_CONTAINER_DIED);
  std::unique_ptr<EventBus::Subscription> sub = bus.Subscribe(request);
  v1::EventsRequest unknown;
  unknown.add_kinds(static_cast<v1::Event::Kind>(99));
  std::unique_ptr<EventBus::Subscription> nothing = bus.Subscribe(unknown);
  bus.Publish(MakeEvent(v1::Event::KIND_CONTAINER_CREATED, "a"));
  bus.Publish(MakeEvent(v1::Event::KIND_CONTAINER_STARTED, "b"));
  bus.Publish(MakeEvent(v1::Event::KIND_NETWORK_CREATED, "c"));
  bus.Publish(MakeEvent(v1::Event::KIND_CONTAINER_DIED, "d"));
  bus.Publish(MakeEvent(static_cast<v1::Event::Kind>(77), "e"));
  EXPECT_THAT(Drain(*sub), ElementsAre("b", "d"));
  EXPECT_THAT(Drain(*nothing), ElementsAre());
}

TEST(EventBusTest, FiltersByLabelsWhichAreNotSent) {
  EventBus bus;
  v1::EventsRequest web;
  (*web.mutable_selector()->mutable_equals())["app"] = "web";
  v1::EventsRequest tiered;
  tiered.mutable_selector()->add_has("tier");
  std::unique_ptr<EventBus::Subscription> web_sub = bus.Subscribe(web);
  std::unique_ptr<EventBus::Subscription> tiered_sub = bus.Subscribe(tiered);
  std::unique_ptr<EventBus::Subscription> everything = bus.Subscribe({});

  bus.Publish(MakeEvent(v1::Event::KIND_CONTAINER_STARTED, "web-1"),
              std::map<std::string, std::string>{{"app", "web"}, {"tier", "front"}});
  bus.Publish(MakeEvent(v1::Event::KIND_CONTAINER_STARTED, "db-1"),
              std::map<std::string, std::string>{{"app", "db"}, {"tier", "back"}});
  v1::Labels labels;
  (*labels.mutable_labels())["app"] = "web";
  bus.Publish(MakeEvent(v1::Event::KIND_CONTAINER_STARTED, "web-2"), labels.labels());
  bus.Publish(MakeEvent(v1::Event::KIND_NETWORK_CREATED, "plain"));

  EXPECT_THAT(Drain(*web_sub), ElementsAre("web-1", "web-2"));
  EXPECT_THAT(Drain(*tiered_sub), ElementsAre("web-1", "db-1"));
  absl::StatusOr<std::optional<v1::Event>> first = everything->Next(absl::ZeroDuration());
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_TRUE((*first)->attributes().empty());
  EXPECT_THAT(Drain(*everything), ElementsAre("db-1", "web-2", "plain"));

  // The selector also applies to replays.
  v1::EventsRequest replay = Since(absl::UnixEpoch());
  *replay.mutable_selector() = web.selector();
  EXPECT_THAT(Drain(*bus.Subscribe(replay)), ElementsAre("web-1", "web-2"));
}

TEST(EventBusTest, ASubscriberThatFallsBehindIsCutOffAlone) {
  EventBus bus(EventBus::Options{.history = 4, .queue_limit = 8});
  std::unique_ptr<EventBus::Subscription> slow = bus.Subscribe({});
  std::unique_ptr<EventBus::Subscription> fast = bus.Subscribe({});
  for (int i = 0; i < 3; ++i) {
    bus.Publish(
        MakeEvent(v1::Event::KIND_CONTAINER_STARTED, absl::StrCat("e", i), kT0 + absl::Seconds(i)));
  }
  EXPECT_THAT(Drain(*fast), ElementsAre("e0", "e1", "e2"));
  ASSERT_TRUE(slow->Next(absl::ZeroDuration()).ok());
  ASSERT_TRUE(slow->Next(absl::ZeroDuration()).ok());  // the last it gets: e1
  // e2 is still queued: 7 more fill the queue (8), the 8th overflows it.
  for (int i = 3; i < 11; ++i) {
    bus.Publish(
        MakeEvent(v1::Event::KIND_CONTAINER_STARTED, absl::StrCat("e", i), kT0 + absl::Seconds(i)));
  }
  absl::StatusOr<std::optional<v1::Event>> next = slow->Next(absl::Seconds(1));
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(next.status().message(),
            "events stream fell behind by more than 8 events; reconnect with "
            "since=2026-11-30T00:53:21.000000000Z");
  // The other subscriber is not affected; the cut-off one stays failed and gets nothing more.
  EXPECT_EQ(Drain(*fast).size(), 8u);
  bus.Publish(MakeEvent(v1::Event::KIND_CONTAINER_STARTED, "e11", kT0 + absl::Seconds(11)));
  EXPECT_FALSE(slow->Next(absl::ZeroDuration()).ok());
  EXPECT_THAT(Drain(*fast), ElementsAre("e11"));

  // Nothing received yet: the hint is the subscription's own since. The replay (e9, e10, e11)
  // counts against the queue.
  std::unique_ptr<EventBus::Subscription> late = bus.Subscribe(Since(kT0 + absl::Seconds(9)));
  for (int i = 0; i < 8; ++i) bus.Publish(MakeEvent(v1::Event::KIND_CONTAINER_STARTED, "x"));
  absl::StatusOr<std::optional<v1::Event>> cut = late->Next(absl::ZeroDuration());
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(cut.status().message(), HasSubstr("since=2026-11-30T00:53:29.000000000Z"));
}

TEST(EventBusTest, UnsubscribesOnDestructionAndMayOutliveTheBus) {
  auto bus = std::make_unique<EventBus>();
  std::unique_ptr<EventBus::Subscription> a = bus->Subscribe({});
  {
    std::unique_ptr<EventBus::Subscription> b = bus->Subscribe({});
    std::unique_ptr<EventBus::Subscription> c = bus->Subscribe({});
    EXPECT_EQ(bus->SubscriberCount(), 3u);
  }
  EXPECT_EQ(bus->SubscriberCount(), 1u);
  bus->Publish(MakeEvent(v1::Event::KIND_GROUP_APPLIED, "g"));
  bus.reset();
  EXPECT_THAT(Drain(*a), ElementsAre("g"));
  absl::StatusOr<std::optional<v1::Event>> next = a->Next(absl::Milliseconds(1));
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
}

TEST(EventBusTest, AThousandSubscribersEachGetEveryEvent) {
  EventBus bus;
  std::vector<std::unique_ptr<EventBus::Subscription>> subs;
  for (int i = 0; i < 1000; ++i) subs.push_back(bus.Subscribe({}));
  const absl::Time start = absl::Now();
  for (int i = 0; i < 200; ++i) {
    bus.Publish(MakeEvent(v1::Event::KIND_CONTAINER_STARTED, absl::StrCat("c", i)));
  }
  // 200 000 deliveries; generous for a debug build on a slow machine.
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  for (auto& sub : subs) ASSERT_EQ(Drain(*sub).size(), 200u);
}

TEST(EventBusTest, ConcurrentPublishersAndSubscribers) {
  constexpr int kPublishers = 4;
  constexpr int kEach = 2000;
  EventBus bus(EventBus::Options{.queue_limit = kPublishers * kEach});
  std::vector<std::unique_ptr<EventBus::Subscription>> subs;
  for (int i = 0; i < 3; ++i) subs.push_back(bus.Subscribe({}));

  std::atomic<bool> stop = false;
  // Subscriptions come and go while events flow.
  std::thread churn([&] {
    while (!stop) {
      std::unique_ptr<EventBus::Subscription> s = bus.Subscribe(Since(absl::UnixEpoch()));
      (void)s->Next(absl::ZeroDuration());
    }
  });
  std::vector<std::thread> readers;
  std::vector<std::vector<int>> last(subs.size(), std::vector<int>(kPublishers, -1));
  std::vector<int> counts(subs.size(), 0);
  for (size_t r = 0; r < subs.size(); ++r) {
    readers.emplace_back([&, r] {
      while (counts[r] < kPublishers * kEach) {
        absl::StatusOr<std::optional<v1::Event>> next = subs[r]->Next(absl::Milliseconds(50));
        ASSERT_TRUE(next.ok()) << next.status();
        if (!next->has_value()) continue;
        int publisher = 0, seq = 0;
        ASSERT_TRUE(absl::SimpleAtoi((*next)->attributes().at("publisher"), &publisher));
        ASSERT_TRUE(absl::SimpleAtoi((*next)->attributes().at("seq"), &seq));
        // Each publisher's events arrive in the order it published them.
        ASSERT_EQ(seq, last[r][publisher] + 1);
        last[r][publisher] = seq;
        ++counts[r];
      }
    });
  }
  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) {
        v1::Event event = MakeEvent(v1::Event::KIND_CONTAINER_STARTED, "c");
        (*event.mutable_attributes())["publisher"] = absl::StrCat(p);
        (*event.mutable_attributes())["seq"] = absl::StrCat(i);
        bus.Publish(std::move(event), std::map<std::string, std::string>{{"app", "x"}});
      }
    });
  }
  for (std::thread& t : publishers) t.join();
  for (std::thread& t : readers) t.join();
  stop = true;
  churn.join();
  for (int count : counts) EXPECT_EQ(count, kPublishers * kEach);
  EXPECT_EQ(bus.SubscriberCount(), subs.size());
}

}  // namespace
}  // namespace mesh::agent
