#include "jobs/throughput.hpp"

#include <thread>

#include <gtest/gtest.h>

namespace conclave::jobs {
namespace {

constexpr unix_ms t0 = 1'700'000'005'000;  // 5 s into the bucket starting at 1'700'000'000
constexpr std::int64_t b0 = 1'700'000'000;

store::event ev(std::string topic, std::string type) {
    return store::event{.topic = std::move(topic), .type = std::move(type)};
}

std::vector<store::event> ended(int succeeded, int failed = 0, int cancelled = 0) {
    std::vector<store::event> out;
    for (int idx = 0; idx < succeeded; ++idx) {
        out.push_back(ev("job:s" + std::to_string(idx), "job.succeeded"));
    }
    for (int idx = 0; idx < failed; ++idx) {
        out.push_back(ev("job:f" + std::to_string(idx), "job.failed"));
    }
    for (int idx = 0; idx < cancelled; ++idx) {
        out.push_back(ev("job:c" + std::to_string(idx), "job.cancelled"));
    }
    return out;
}

std::int64_t total(const std::vector<throughput::bucket>& window) {
    std::int64_t n = 0;
    for (const auto& b : window) {
        n += b.succeeded + b.failed + b.cancelled;
    }
    return n;
}

TEST(ThroughputTest, AnEmptyWindowIsSixtyZeroBucketsEndingWithTheCurrentOne) {
    manual_clock clk(t0);
    throughput tracker(clk);
    auto window = tracker.window();
    ASSERT_EQ(window.size(), 60U);
    EXPECT_EQ(window.back().start_s, b0);
    EXPECT_EQ(window.front().start_s, b0 - 590);
    for (std::size_t idx = 1; idx < window.size(); ++idx) {
        EXPECT_EQ(window[idx].start_s, window[idx - 1].start_s + 10);
    }
    EXPECT_EQ(total(window), 0);
}

TEST(ThroughputTest, CountsOnlyTerminalEventsOnJobTopics) {
    manual_clock clk(t0);
    throughput tracker(clk);
    tracker.record({
        ev("job:a", "job.succeeded"),
        ev("job:b", "job.failed"),
        ev("job:c", "job.cancelled"),
        ev("conversation:x", "job.succeeded"),  // a copy on a job's extra topic
        ev("space:app", "job.failed"),
        ev("job:d", "job.started"),
        ev("job:e", "job.retrying"),
    });
    const auto newest = tracker.window().back();
    EXPECT_EQ(newest.succeeded, 1);
    EXPECT_EQ(newest.failed, 1);
    EXPECT_EQ(newest.cancelled, 1);
}

TEST(ThroughputTest, BucketsFollowTheClockAndTheWindowSlides) {
    manual_clock clk(t0);
    throughput tracker(clk);
    tracker.record(ended(2));
    clk.advance(4'999);  // still the same bucket
    tracker.record(ended(1));
    clk.advance(1);  // the next one
    tracker.record(ended(0, 1));
    auto window = tracker.window();
    EXPECT_EQ(window[58].start_s, b0);
    EXPECT_EQ(window[58].succeeded, 3);
    EXPECT_EQ(window[59].start_s, b0 + 10);
    EXPECT_EQ(window[59].failed, 1);

    clk.set(t0 + 590'000);  // b0 is the oldest bucket of the window
    window = tracker.window();
    EXPECT_EQ(window.front().start_s, b0);
    EXPECT_EQ(window.front().succeeded, 3);
    EXPECT_EQ(total(window), 4);

    clk.advance(10'000);  // b0 left the window
    window = tracker.window();
    EXPECT_EQ(window.front().start_s, b0 + 10);
    EXPECT_EQ(window.front().failed, 1);
    EXPECT_EQ(total(window), 1);

    clk.advance(20 * 60'000);
    EXPECT_EQ(total(tracker.window()), 0);
    tracker.record(ended(0, 0, 1));  // reuses a stale slot: starts from zero
    window = tracker.window();
    EXPECT_EQ(total(window), 1);
    EXPECT_EQ(window.back().cancelled, 1);
}

TEST(ThroughputTest, ConcurrentRecordsAndReadsLoseNothing) {
    manual_clock clk(t0);
    throughput tracker(clk);
    constexpr int writers = 4;
    constexpr int batches = 500;
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&] {
            for (int idx = 0; idx < batches; ++idx) {
                tracker.record(ended(1, 1));
            }
        });
    }
    std::int64_t seen = 0;
    for (int idx = 0; idx < 200; ++idx) {
        seen = std::max(seen, total(tracker.window()));
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_LE(seen, writers * batches * 2);
    EXPECT_EQ(total(tracker.window()), writers * batches * 2);
}

}  // namespace
}  // namespace conclave::jobs
