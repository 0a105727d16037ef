// A connection's queue of live frames: merging consecutive deltas under pressure, and dropping
// everything (for a catch-up from the store) past the budget.
#include <gtest/gtest.h>

#include "store/deltas.hpp"
#include "stream/follower.hpp"

namespace conclave::stream {
namespace {

events::frame_ptr delta_frame(std::int64_t offset, std::int64_t at, const std::string& text) {
    return events::make_frame(store::event{
        .topic = "job:x",
        .offset = offset,
        .type = "delta",
        .data = store::delta_json({.attempt = 1, .part = "p", .at = at, .text = text}),
        .time = offset});
}

TEST(FrameQueueTest, BelowHalfTheBudgetEveryFrameIsKept) {
    frame_queue q(1 << 20);
    for (int idx = 0; idx < 10; ++idx) {
        q.deliver(delta_frame(idx + 1, idx, "x"));
    }
    bool overflowed = true;
    auto frames = q.take(overflowed);
    EXPECT_FALSE(overflowed);
    EXPECT_EQ(frames.size(), 10U);
}

TEST(FrameQueueTest, UnderPressureConsecutiveDeltasMerge) {
    const std::string piece(100, 'a');
    const auto size = delta_frame(1, 0, piece)->sse_body.size();
    frame_queue q(size * 10);  // pressure begins past 5 frames' worth
    const int delivered = 40;
    for (int idx = 0; idx < delivered; ++idx) {
        q.deliver(delta_frame(idx + 1, idx * 100, piece));
    }
    bool overflowed = true;
    auto frames = q.take(overflowed);
    EXPECT_FALSE(overflowed) << "merging kept the queue inside its budget";
    ASSERT_LT(frames.size(), 10U);
    std::string text;
    std::int64_t next = 1;
    for (const auto& f : frames) {
        EXPECT_EQ(f->first_offset, next) << "merged frames cover every offset, in order";
        next = f->offset + 1;
        text += f->delta->text;
    }
    EXPECT_EQ(next, delivered + 1);
    EXPECT_EQ(text.size(), static_cast<std::size_t>(delivered) * 100);
}

TEST(FrameQueueTest, PastTheBudgetTheQueueIsDroppedAndTheOverflowReported) {
    frame_queue q(4096);
    for (int idx = 0; idx < 100; ++idx) {
        // Not deltas: nothing to merge.
        q.deliver(events::make_frame(store::event{
            .topic = "t", .offset = idx + 1, .type = "tick", .data = "{}", .time = 1}));
    }
    bool overflowed = false;
    auto frames = q.take(overflowed);
    EXPECT_TRUE(overflowed);
    EXPECT_TRUE(frames.empty()) << "dropped: the session re-reads from the store";
    q.deliver(events::make_frame(store::event{
        .topic = "t", .offset = 101, .type = "tick", .data = "{}", .time = 1}));
    frames = q.take(overflowed);
    EXPECT_FALSE(overflowed);
    EXPECT_EQ(frames.size(), 1U) << "once the overflow was taken, live frames queue again";
}

}  // namespace
}  // namespace conclave::stream
