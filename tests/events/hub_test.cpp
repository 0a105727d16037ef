#include "events/hub.hpp"

#include <atomic>
#include <mutex>
#include <thread>

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "events/cursor.hpp"

namespace conclave::events {
namespace {

store::event ev(const std::string& topic, std::int64_t offset) {
    return {topic, offset, "tick", "{}", 1};
}

struct collector final : subscriber {
    void deliver(const frame_ptr& f) override {
        std::lock_guard lock(mutex);
        offsets.push_back(f->offset);
    }
    std::mutex mutex;
    std::vector<std::int64_t> offsets;
};

TEST(HubTest, FramesAreSerializedOnceAsSse) {
    auto f = make_frame({"job:x", 7, "job.started", R"({"attempt":1})", 0});
    EXPECT_EQ(f->sse_body.rfind("event: job.started\ndata: {", 0), 0U);
    EXPECT_NE(f->sse_body.find(R"("offset":7)"), std::string::npos);
    EXPECT_EQ(f->sse_body.substr(f->sse_body.size() - 2), "\n\n");
}

TEST(HubTest, FramesCarryTheWebSocketMessageToo) {
    auto f = make_frame({"job:x", 7, "job.started", R"({"attempt":1})", 0});
    auto ws = boost::json::parse(f->ws_body).as_object();
    EXPECT_EQ(ws.at("op"), "event");
    EXPECT_EQ(ws.at("offset"), 7);
    EXPECT_EQ(ws.at("type"), "job.started");
    EXPECT_EQ(ws.at("data").at("attempt"), 1);
}

store::event delta_event(std::int64_t offset, std::string part, std::int64_t at, std::string text) {
    return {
        "job:x",
        offset,
        "stage1.delta",
        store::delta_json({.attempt = 1, .part = std::move(part), .at = at, .text = std::move(text)}
        ),
        offset};
}

TEST(HubTest, ConsecutiveDeltasOfOnePartMerge) {
    auto a = make_frame(delta_event(4, "p", 0, "Hel"));
    auto b = make_frame(delta_event(5, "p", 3, "lo"));
    auto merged = merge_deltas(*a, *b);
    ASSERT_TRUE(merged);
    EXPECT_EQ(merged->first_offset, 4);
    EXPECT_EQ(merged->offset, 5);
    EXPECT_EQ(merged->delta->text, "Hello");
    EXPECT_EQ(merged->delta->at, 0);
    auto body = boost::json::parse(merged->ws_body).as_object();
    EXPECT_EQ(body.at("first_offset"), 4);
    EXPECT_EQ(body.at("data").at("text"), "Hello");
    // Not consecutive, another part, or text that does not continue: no merge.
    EXPECT_FALSE(merge_deltas(*a, *make_frame(delta_event(6, "p", 3, "lo"))));
    EXPECT_FALSE(merge_deltas(*a, *make_frame(delta_event(5, "q", 3, "lo"))));
    EXPECT_FALSE(merge_deltas(*a, *make_frame(delta_event(5, "p", 2, "lo"))));
    EXPECT_FALSE(merge_deltas(*a, *make_frame(ev("job:x", 5))));
    // A merged frame merges on.
    auto more = merge_deltas(*merged, *make_frame(delta_event(6, "p", 5, "!")));
    ASSERT_TRUE(more);
    EXPECT_EQ(more->first_offset, 4);
    EXPECT_EQ(more->delta->text, "Hello!");
}

TEST(HubTest, SubscriberGetsLiveEventsOfItsTopicOnly) {
    hub h;
    auto c = std::make_shared<collector>();
    h.subscribe("a", 0, c);
    h.publish({ev("a", 1), ev("b", 1), ev("a", 2)});
    EXPECT_EQ(c->offsets, (std::vector<std::int64_t>{1, 2}));
    h.unsubscribe("a", c.get());
    h.publish({ev("a", 3)});
    EXPECT_EQ(c->offsets.size(), 2U);
    EXPECT_EQ(h.subscriber_count(), 0U);
}

TEST(HubTest, RingServesResumesItCovers) {
    hub h({.ring_events = 4, .idle_topics = 10});
    h.publish({ev("a", 1), ev("a", 2), ev("a", 3), ev("a", 4), ev("a", 5), ev("a", 6)});
    auto c = std::make_shared<collector>();
    auto recent = h.subscribe("a", 3, c);
    EXPECT_TRUE(recent.covered) << "ring holds 3..6";
    ASSERT_EQ(recent.backlog.size(), 3U);
    EXPECT_EQ(recent.backlog.front()->offset, 4);
    auto old = h.subscribe("a", 1, c);
    EXPECT_FALSE(old.covered) << "offset 2 left the ring: read the store";
    auto unknown = h.subscribe("never", 0, c);
    EXPECT_FALSE(unknown.covered);
}

// Events of a topic nobody followed are framed when someone subscribes: the same bytes a live
// subscriber would have got, built once and shared by every later subscriber.
TEST(HubTest, EventsNobodyFollowedAreFramedOnceWhenSubscribedTo) {
    hub h({.ring_events = 8, .idle_topics = 10});
    const store::event e{"job:x", 1, "job.started", R"({"attempt":1})", 5};
    h.publish({e, ev("job:x", 2)});
    auto first = std::make_shared<collector>();
    auto second = std::make_shared<collector>();
    auto a = h.subscribe("job:x", 0, first);
    auto b = h.subscribe("job:x", 0, second);
    ASSERT_TRUE(a.covered);
    ASSERT_EQ(a.backlog.size(), 2U);
    ASSERT_EQ(b.backlog.size(), 2U);
    EXPECT_EQ(a.backlog[0]->sse_body, make_frame(e)->sse_body);
    EXPECT_EQ(a.backlog[0]->ws_body, make_frame(e)->ws_body);
    EXPECT_EQ(a.backlog[0].get(), b.backlog[0].get()) << "framed once, shared";
    EXPECT_EQ(a.backlog[1].get(), b.backlog[1].get());
    // Followed now: new events are framed as they are published, live and in the ring alike.
    h.publish({ev("job:x", 3)});
    EXPECT_EQ(first->offsets, (std::vector<std::int64_t>{3}));
    auto late = std::make_shared<collector>();
    auto c = h.subscribe("job:x", 2, late);
    ASSERT_EQ(c.backlog.size(), 1U);
    EXPECT_EQ(c.backlog[0]->offset, 3);
}

// A subscriber gone without unsubscribing (its weak pointer expired) gets nothing, and the
// event is still in the ring for the next one.
TEST(HubTest, EventsOfATopicWhoseSubscribersAreGoneStayInTheRing) {
    hub h({.ring_events = 8, .idle_topics = 10});
    auto gone = std::make_shared<collector>();
    h.subscribe("t", 0, gone);
    gone.reset();
    h.publish({ev("t", 1)});
    auto next = std::make_shared<collector>();
    auto joined = h.subscribe("t", 0, next);
    ASSERT_EQ(joined.backlog.size(), 1U);
    EXPECT_EQ(joined.backlog[0]->offset, 1);
}

TEST(HubTest, IdleTopicsAreForgottenBeyondTheLimit) {
    hub h({.ring_events = 4, .idle_topics = 2});
    h.publish({ev("a", 1), ev("b", 1), ev("c", 1)});
    auto c = std::make_shared<collector>();
    EXPECT_FALSE(h.subscribe("a", 0, c).covered) << "a was the least recently active";
    EXPECT_TRUE(h.subscribe("c", 0, c).covered);
}

// Subscribing while another thread publishes: every event is in the backlog or delivered live.
TEST(HubTest, ConcurrentSubscribeMissesNothing) {
    hub h({.ring_events = 100'000, .idle_topics = 10});
    constexpr int total = 20'000;
    std::atomic<bool> go{false};
    std::thread producer([&] {
        go = true;
        for (int idx = 1; idx <= total; ++idx) {
            h.publish({ev("t", idx)});
        }
    });
    while (!go) {
    }
    auto c = std::make_shared<collector>();
    auto joined = h.subscribe("t", 0, c);
    producer.join();
    std::vector<std::int64_t> all;
    for (const auto& f : joined.backlog) {
        all.push_back(f->offset);
    }
    all.insert(all.end(), c->offsets.begin(), c->offsets.end());
    ASSERT_EQ(all.size(), static_cast<std::size_t>(total));
    for (int idx = 0; idx < total; ++idx) {
        ASSERT_EQ(all[idx], idx + 1);
    }
}

// Subscribers come and go while another thread publishes (so the hub keeps switching between
// nobody and somebody following the topic, also between publish's two steps): each one sees a
// gapless run of offsets, its backlog then its live events.
TEST(HubTest, SubscribersComingAndGoingDuringPublishSeeNoGap) {
    hub h({.ring_events = 1'000, .idle_topics = 10});
    constexpr int total = 200'000;
    std::atomic<bool> done{false};
    std::thread producer([&] {
        for (int idx = 1; idx <= total; ++idx) {
            h.publish({ev("t", idx)});
        }
        done = true;
    });
    int checked = 0;
    std::int64_t after = 0;  // where the last subscription ended: its backlog stays short
    std::string gap;
    while (!done && gap.empty()) {
        auto c = std::make_shared<collector>();
        auto joined = h.subscribe("t", after, c);
        std::this_thread::yield();
        h.unsubscribe("t", c.get());
        std::vector<std::int64_t> all;
        for (const auto& f : joined.backlog) {
            all.push_back(f->offset);
        }
        std::lock_guard lock(c->mutex);
        all.insert(all.end(), c->offsets.begin(), c->offsets.end());
        auto expected = joined.covered || all.empty() ? after + 1 : all.front();
        for (auto offset : all) {
            if (offset != expected++) {
                gap = "subscription " + std::to_string(checked) + " after " +
                      std::to_string(after) + ": " + std::to_string(offset) + " where " +
                      std::to_string(expected - 1) + " was due";
                break;
            }
        }
        after = all.empty() ? after : all.back();
        ++checked;
    }
    producer.join();
    EXPECT_EQ(gap, "");
    EXPECT_GT(checked, 0);
}

TEST(CursorTest, RoundTripsAndRejectsGarbage) {
    const cursor c{{"job:0192-ab", 5}, {"space:acme:runs", 0}};
    const auto text = format_cursor(c);
    EXPECT_EQ(text, "job:0192-ab@5,space:acme:runs@0");
    EXPECT_EQ(parse_cursor(text), c);
    EXPECT_EQ(parse_cursor("")->size(), 0U);
    EXPECT_FALSE(parse_cursor("job:x").has_value());
    EXPECT_FALSE(parse_cursor("job:x@").has_value());
    EXPECT_FALSE(parse_cursor("job:x@-1").has_value());
    EXPECT_FALSE(parse_cursor("job:x@1x").has_value());
    EXPECT_FALSE(parse_cursor("bad topic@1").has_value());
    EXPECT_FALSE(parse_cursor("a@1,,b@2").has_value());
}

}  // namespace
}  // namespace conclave::events
