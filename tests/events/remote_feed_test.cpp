// The remote feed: events another node committed (here: written to the store behind the hub's
// back) reach this node's subscribers on a wake-up, in order, once; resync() catches up on
// wake-ups that were lost; topics nobody follows are not read.
#include "events/remote_feed.hpp"

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "store/sqlite/sqlite_db.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/delegating_store.hpp"
#include "support/run_coro.hpp"
#include "support/temp_dir.hpp"

namespace conclave::events {
namespace {

using namespace std::chrono_literals;

struct collector final : subscriber {
    void deliver(const frame_ptr& f) override {
        std::lock_guard lock(mutex);
        offsets.push_back(f->offset);
    }
    std::vector<std::int64_t> seen() {
        std::lock_guard lock(mutex);
        return offsets;
    }
    std::mutex mutex;
    std::vector<std::int64_t> offsets;
};

class RemoteFeedTest : public ::testing::Test {
protected:
    RemoteFeedTest()
        : db_(store::sqlite::open_sqlite_store({.path = dir_.file("feed.db")})),
          feed_(std::make_shared<remote_feed>(hub_, *db_, fanout_.get_executor())) {}
    ~RemoteFeedTest() override {
        work_.reset();
        fanout_.stop();
        thread_.join();
    }

    // Another node's commit: in the store, not published here.
    void commit_elsewhere(const std::string& topic, int n) {
        test::run_coro([&](net::io_context&) -> net::awaitable<void> {
            std::vector<store::event_spec> specs(static_cast<std::size_t>(n), {"tick", "{}"});
            co_await db_->append_events(topic, std::move(specs), 1);
        });
    }

    std::vector<std::int64_t> wait_for(collector& c, std::size_t n) {
        for (int i = 0; i < 300 && c.seen().size() < n; ++i) {
            std::this_thread::sleep_for(10ms);
        }
        std::this_thread::sleep_for(50ms);  // and nothing more after
        return c.seen();
    }

    test::temp_dir dir_;
    hub hub_;
    std::unique_ptr<store::store> db_;
    net::io_context fanout_{1};
    net::executor_work_guard<net::io_context::executor_type> work_{fanout_.get_executor()};
    std::thread thread_{[this] { fanout_.run(); }};
    std::shared_ptr<remote_feed> feed_;
};

TEST_F(RemoteFeedTest, AWakeUpDeliversWhatIsNewInOrderOnce) {
    auto sub = std::make_shared<collector>();
    hub_.subscribe("app:t", 0, sub);
    commit_elsewhere("app:t", 3);
    feed_->committed("app:t", 3);
    EXPECT_EQ(wait_for(*sub, 3), (std::vector<std::int64_t>{1, 2, 3}));
    commit_elsewhere("app:t", 2);
    feed_->committed("app:t", 5);
    feed_->committed("app:t", 5);  // a repeated wake-up
    feed_->committed("app:t", 4);  // a late one
    EXPECT_EQ(wait_for(*sub, 5), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
    EXPECT_EQ(hub_.followed_offset("app:t"), 5);
}

TEST_F(RemoteFeedTest, ResyncCatchesUpOnLostWakeUps) {
    auto a = std::make_shared<collector>();
    auto b = std::make_shared<collector>();
    hub_.subscribe("app:a", 0, a);
    hub_.subscribe("app:b", 0, b);
    commit_elsewhere("app:a", 2);
    commit_elsewhere("app:b", 1);
    feed_->resync();  // no wake-up came: the connection that carries them was lost
    EXPECT_EQ(wait_for(*a, 2), (std::vector<std::int64_t>{1, 2}));
    EXPECT_EQ(wait_for(*b, 1), (std::vector<std::int64_t>{1}));
}

// A read that fails is tried again until it succeeds: the database may be away, or only the
// reading connection (a node's own commits that may have been lost send no wake-up, and its
// listening connection may never drop), and nothing else would wake the topic again.
TEST_F(RemoteFeedTest, AFailedReadIsTriedAgainUntilItSucceeds) {
    auto feed = std::make_shared<remote_feed>(hub_, *db_, fanout_.get_executor(), 20ms);
    auto sub = std::make_shared<collector>();
    hub_.subscribe("app:t", 0, sub);
    commit_elsewhere("app:t", 2);
    store::sqlite::connection other(dir_.file("feed.db"));
    other.exec("ALTER TABLE events RENAME TO events_away");  // reads of events now fail
    feed->committed("app:t", 2);
    std::this_thread::sleep_for(200ms);
    EXPECT_TRUE(sub->seen().empty());
    other.exec("ALTER TABLE events_away RENAME TO events");
    EXPECT_EQ(wait_for(*sub, 2), (std::vector<std::int64_t>{1, 2}));
}

// The real store, but every read of the topics `failing` fails.
class topics_fail final : public test::delegating_store {
public:
    topics_fail(conclave::store::store& inner, std::set<std::string> failing)
        : delegating_store(inner), failing_(std::move(failing)) {}

    net::awaitable<result<std::vector<conclave::store::event>>> read_events(
        std::string topic, std::int64_t after, std::size_t limit
    ) override {
        if (failing_.contains(topic)) {
            ++failed;
            throw conclave::store::unavailable("reads of " + topic + " fail");
        }
        co_return co_await delegating_store::read_events(std::move(topic), after, limit);
    }

    std::atomic<int> failed{0};

private:
    std::set<std::string> failing_;
};

// A topic whose reads keep failing holds no other back: the topics pending with it are read,
// and a wake-up while its retry waits is read at once (the retry, a minute away, never comes).
TEST_F(RemoteFeedTest, ATopicThatKeepsFailingHoldsNoOtherBack) {
    topics_fail db(*db_, {"app:a"});
    auto feed = std::make_shared<remote_feed>(hub_, db, fanout_.get_executor(), 60s);
    auto a = std::make_shared<collector>();
    auto c = std::make_shared<collector>();
    auto d = std::make_shared<collector>();
    hub_.subscribe("app:a", 0, a);  // first in name order
    hub_.subscribe("app:c", 0, c);
    hub_.subscribe("app:d", 0, d);
    for (const auto* topic : {"app:a", "app:c", "app:d"}) {
        commit_elsewhere(topic, 1);
    }
    feed->resync();
    EXPECT_EQ(wait_for(*c, 1), (std::vector<std::int64_t>{1}));
    EXPECT_EQ(wait_for(*d, 1), (std::vector<std::int64_t>{1}));
    commit_elsewhere("app:c", 1);
    feed->committed("app:c", 2);
    EXPECT_EQ(wait_for(*c, 2), (std::vector<std::int64_t>{1, 2}));
    EXPECT_TRUE(a->seen().empty());
    EXPECT_EQ(db.failed.load(), 1) << "read once, its retry still waiting";
    feed->stop();
}

// With the database away every read fails: two failures in a row end the round, and the
// other pending topics wait for the retry instead of failing one by one.
TEST_F(RemoteFeedTest, TwoFailedReadsInARowEndTheRound) {
    topics_fail db(*db_, {"app:a", "app:b", "app:c", "app:d"});
    auto feed = std::make_shared<remote_feed>(hub_, db, fanout_.get_executor(), 60s);
    std::vector<std::shared_ptr<collector>> subs;
    for (const auto* topic : {"app:a", "app:b", "app:c", "app:d"}) {
        subs.push_back(std::make_shared<collector>());
        hub_.subscribe(topic, 0, subs.back());
        commit_elsewhere(topic, 1);
    }
    feed->resync();
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(db.failed.load(), 2);
    feed->stop();
}

// Once stopped (the store is about to go), the feed reads nothing more: not its retries, not
// new wake-ups.
TEST_F(RemoteFeedTest, AStoppedFeedReadsNothingMore) {
    topics_fail db(*db_, {"app:a"});
    auto feed = std::make_shared<remote_feed>(hub_, db, fanout_.get_executor(), 10ms);
    auto a = std::make_shared<collector>();
    auto c = std::make_shared<collector>();
    hub_.subscribe("app:a", 0, a);
    hub_.subscribe("app:c", 0, c);
    commit_elsewhere("app:a", 1);
    commit_elsewhere("app:c", 1);
    feed->committed("app:a", 1);
    for (int i = 0; i < 300 && db.failed.load() < 3; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_GE(db.failed.load(), 3) << "retried every 10 ms";
    feed->stop();
    std::this_thread::sleep_for(50ms);  // a retry under way ends
    const int failed_at_stop = db.failed.load();
    feed->committed("app:c", 1);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(db.failed.load(), failed_at_stop);
    EXPECT_TRUE(c->seen().empty());
}

TEST_F(RemoteFeedTest, TopicsNobodyFollowsHereAreNotRead) {
    commit_elsewhere("app:quiet", 2);
    feed_->committed("app:quiet", 2);
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(hub_.followed_offset("app:quiet").has_value());
    auto late = std::make_shared<collector>();
    auto joined = hub_.subscribe("app:quiet", 0, late);
    EXPECT_TRUE(joined.backlog.empty()) << "nothing was published for nobody";
}

}  // namespace
}  // namespace conclave::events
