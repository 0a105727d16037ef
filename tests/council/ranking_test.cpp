// Stage 2's ranking parser (strict, then lenient) and the aggregate arithmetic.
#include "council/ranking.hpp"

#include <gtest/gtest.h>

namespace conclave::council {
namespace {

using labels = std::vector<std::string>;

TEST(RankingTest, StrictListAfterTheHeader) {
    auto r = parse_ranking(
        "Response A is thorough. Response B misses a case.\n\nFINAL RANKING:\n1. Response B\n"
        "2. Response A\n3. Response C\n",
        3
    );
    EXPECT_TRUE(r.strict);
    EXPECT_EQ(r.labels, (labels{"Response B", "Response A", "Response C"}))
        << "the text before the header does not count";
}

TEST(RankingTest, LowerCaseAndCrLfAreStrictToo) {
    auto r = parse_ranking("final ranking:\r\n1. response c\r\n2. response a\r\n", 3);
    EXPECT_TRUE(r.strict);
    EXPECT_EQ(r.labels, (labels{"Response C", "Response A"}));
}

TEST(RankingTest, MissingHeaderFallsBackToMentionsInOrder) {
    auto r = parse_ranking("I prefer Response C, then Response A; Response C again.", 3);
    EXPECT_FALSE(r.strict);
    EXPECT_EQ(r.labels, (labels{"Response C", "Response A"}))
        << "duplicates keep their first place";
}

TEST(RankingTest, MalformedListIsParsedLenientlyAfterTheHeader) {
    auto r = parse_ranking(
        "Response A first?\nFINAL RANKING:\n- Response B (best)\n- Response B\n- Response A\n", 2
    );
    EXPECT_FALSE(r.strict);
    EXPECT_EQ(r.labels, (labels{"Response B", "Response A"}));
}

TEST(RankingTest, LabelsOutOfRangeAndNonLabelsAreDropped) {
    auto r = parse_ranking("FINAL RANKING:\n1. Response D\n2. Response A\n3. Responses\n", 2);
    EXPECT_EQ(r.labels, (labels{"Response A"}));
    EXPECT_TRUE(parse_ranking("no ranking at all", 3).labels.empty());
    EXPECT_TRUE(parse_ranking("", 3).labels.empty());
}

TEST(RankingTest, TheLastHeaderWins) {
    auto r = parse_ranking(
        "FINAL RANKING:\n1. Response A\n\nOn reflection:\nFINAL RANKING:\n1. Response B\n2. "
        "Response A\n",
        2
    );
    EXPECT_TRUE(r.strict);
    EXPECT_EQ(r.labels, (labels{"Response B", "Response A"}));
}

TEST(RankingTest, AggregateIsTheMeanPositionBestFirst) {
    const std::map<std::string, std::string> models{
        {"Response A", "m/a"}, {"Response B", "m/b"}, {"Response C", "m/c"}};
    std::vector<parsed_ranking> rankings{
        {{"Response A", "Response B", "Response C"}, true},
        {{"Response B", "Response A", "Response C"}, true},
        {{"Response B", "Response C"}, false},  // A unranked here
    };
    auto agg = aggregate_rankings(rankings, models);
    ASSERT_EQ(agg.size(), 3U);
    EXPECT_EQ(agg[0].model, "m/b");  // (2 + 1 + 1) / 3
    EXPECT_DOUBLE_EQ(agg[0].average_rank, 4.0 / 3);
    EXPECT_EQ(agg[0].rankings_count, 3);
    EXPECT_EQ(agg[1].model, "m/a");  // (1 + 2) / 2
    EXPECT_DOUBLE_EQ(agg[1].average_rank, 1.5);
    EXPECT_EQ(agg[1].rankings_count, 2);
    EXPECT_EQ(agg[2].model, "m/c");  // (3 + 3 + 2) / 3
    EXPECT_DOUBLE_EQ(agg[2].average_rank, 8.0 / 3);
}

}  // namespace
}  // namespace conclave::council
