// Token deltas: UTF-16 lengths (what a browser's String.length counts) and folding a job's
// events into each part's text.
#include "store/deltas.hpp"

#include <gtest/gtest.h>

namespace conclave::store {
namespace {

event started(std::int64_t offset, int attempt) {
    return event{
        .topic = "job:x",
        .offset = offset,
        .type = "job.started",
        .data = R"({"attempt":)" + std::to_string(attempt) + "}",
    };
}

event piece(
    std::int64_t offset,
    int attempt,
    const std::string& part,
    std::int64_t at,
    const std::string& text
) {
    return event{
        .topic = "job:x",
        .offset = offset,
        .type = "stage1.delta",
        .data = delta_json({.attempt = attempt, .part = part, .at = at, .text = text}),
    };
}

TEST(DeltasTest, Utf16LengthCountsLikeJavaScript) {
    EXPECT_EQ(utf16_length(""), 0);
    EXPECT_EQ(utf16_length("abc"), 3);
    EXPECT_EQ(utf16_length("é"), 1);  // 2 bytes, one unit
    EXPECT_EQ(utf16_length("€"), 1);  // 3 bytes, one unit
    EXPECT_EQ(utf16_length("😀"), 2);  // 4 bytes, a surrogate pair
    EXPECT_EQ(utf16_length("a😀é€"), 5);
    EXPECT_EQ(utf16_skip("a😀é", 1), 1U);
    EXPECT_EQ(utf16_skip("a😀é", 3), 5U);
    EXPECT_EQ(utf16_skip("a😀é", 4), 7U);
    EXPECT_EQ(utf16_skip("a😀é", 99), 7U);
}

TEST(DeltasTest, DeltaTypesAndParsing) {
    EXPECT_TRUE(is_delta_type("delta"));
    EXPECT_TRUE(is_delta_type("stage3.delta"));
    EXPECT_FALSE(is_delta_type("deltas"));
    EXPECT_FALSE(is_delta_type("job.started"));
    auto d = parse_delta(delta_json({.attempt = 2, .part = "p", .at = 5, .text = "hi"}));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->attempt, 2);
    EXPECT_EQ(d->part, "p");
    EXPECT_EQ(d->at, 5);
    EXPECT_EQ(d->text, "hi");
    EXPECT_FALSE(parse_delta(R"({"attempt":1,"part":"p","at":-1,"text":"x"})"));
    EXPECT_FALSE(parse_delta(R"({"attempt":1,"part":"p","text":"x"})"));
    EXPECT_FALSE(parse_delta("not json"));
}

TEST(DeltasTest, FoldJoinsPartsOfTheCurrentAttemptOnly) {
    parts_fold fold(2);
    fold.add(started(1, 1));
    fold.add(piece(2, 1, "a", 0, "void"));  // attempt 1's text does not count
    fold.add(started(3, 2));
    fold.add(piece(4, 2, "a", 0, "Hel"));
    fold.add(piece(5, 2, "b", 0, "😀"));
    fold.add(piece(6, 2, "a", 3, "lo"));
    fold.add(piece(7, 2, "b", 2, "!"));
    EXPECT_EQ(fold.parts().at("a"), "Hello");
    EXPECT_EQ(fold.parts().at("b"), "😀!");
    EXPECT_EQ(fold.lengths().at("b"), 3);
    EXPECT_EQ(fold.offset(), 7);
    EXPECT_TRUE(fold.complete());
    EXPECT_TRUE(fold.saw_start());
}

TEST(DeltasTest, FoldIgnoresDuplicatesKeepsOverlapsAndMarksGaps) {
    parts_fold fold(1);
    fold.add(started(1, 1));
    fold.add(piece(2, 1, "a", 0, "abc"));
    fold.add(piece(3, 1, "a", 0, "abc"));   // a duplicate: nothing new
    fold.add(piece(4, 1, "a", 1, "bcde"));  // overlaps: only "de" is new
    EXPECT_EQ(fold.parts().at("a"), "abcde");
    EXPECT_TRUE(fold.complete());
    fold.add(piece(5, 1, "a", 9, "zz"));  // a gap: not appended
    EXPECT_EQ(fold.parts().at("a"), "abcde");
    EXPECT_FALSE(fold.complete());
}

TEST(DeltasTest, FoldStartingPastOffsetOneWithoutTheStartIsIncomplete) {
    parts_fold pruned(1);  // retention removed offsets 1..4, the attempt's start among them
    pruned.add(piece(5, 1, "a", 3, "de"));
    EXPECT_FALSE(pruned.complete());
    parts_fold restarted(2);  // older events gone, but the attempt starts within what is kept
    restarted.add(piece(5, 1, "a", 3, "old"));
    restarted.add(started(6, 2));
    restarted.add(piece(7, 2, "a", 0, "new"));
    EXPECT_TRUE(restarted.complete());
    EXPECT_EQ(restarted.parts().at("a"), "new");
}

TEST(DeltasTest, FoldKeepsTheOtherEventsForTheSnapshot) {
    parts_fold fold(1);
    fold.add(started(1, 1));
    fold.add(piece(2, 1, "a", 0, "abc"));
    fold.add(event{.topic = "job:x", .offset = 3, .type = "stage1.complete", .data = "{}"});
    ASSERT_EQ(fold.others().size(), 2U);
    EXPECT_EQ(fold.others()[0].type, "job.started");
    EXPECT_EQ(fold.others()[1].offset, 3);
    EXPECT_FALSE(fold.others_truncated());

    parts_fold many(1);  // a job with more events than a snapshot carries keeps the newest
    const auto total = static_cast<std::int64_t>(3 * parts_fold::max_kept_events + 7);
    for (std::int64_t i = 1; i <= total; ++i) {
        many.add(event{.topic = "job:x", .offset = i, .type = "job.progress", .data = "{}"});
    }
    const auto kept = many.others();
    ASSERT_EQ(kept.size(), parts_fold::max_kept_events);
    EXPECT_EQ(kept.back().offset, total);
    EXPECT_EQ(kept.front().offset, total - static_cast<std::int64_t>(kept.size()) + 1);
    EXPECT_TRUE(many.others_truncated());
}

}  // namespace
}  // namespace conclave::store
