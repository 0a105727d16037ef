#include "jobs/backoff.hpp"

#include <set>

#include <gtest/gtest.h>

namespace conclave::jobs {
namespace {

TEST(BackoffTest, CeilingDoublesPerAttemptUpToTheCap) {
    EXPECT_EQ(backoff_delay(1, 1000, 60'000, 1.0), 1000);
    EXPECT_EQ(backoff_delay(2, 1000, 60'000, 1.0), 2000);
    EXPECT_EQ(backoff_delay(5, 1000, 60'000, 1.0), 16'000);
    EXPECT_EQ(backoff_delay(7, 1000, 60'000, 1.0), 60'000) << "capped";
    EXPECT_EQ(backoff_delay(500, 1000, 60'000, 1.0), 60'000) << "no overflow for huge attempts";
}

TEST(BackoffTest, FullJitterScalesTheWholeCeiling) {
    EXPECT_EQ(backoff_delay(3, 1000, 60'000, 0.0), 0);
    EXPECT_EQ(backoff_delay(3, 1000, 60'000, 0.5), 2000);
    EXPECT_EQ(backoff_delay(3, 1000, 60'000, 7.0), 4000) << "jitter is clamped to [0, 1]";
}

TEST(BackoffTest, PolicyRetriesOnlyRetryableFailuresWithAttemptsLeft) {
    auto policy = default_retry_policy();
    store::job j;
    j.attempts = 1;
    j.max_attempts = 3;
    j.backoff_base_ms = 1000;
    j.backoff_cap_ms = 1000;
    const unix_ms now = 5'000;
    auto at = policy(j, true, now);
    ASSERT_TRUE(at.has_value());
    EXPECT_GE(*at, now);
    EXPECT_LE(*at, now + 1000);
    EXPECT_FALSE(policy(j, false, now).has_value()) << "not retryable";
    j.attempts = 3;
    EXPECT_FALSE(policy(j, true, now).has_value()) << "attempts exhausted";
}

TEST(BackoffTest, PolicyJitterVaries) {
    auto policy = default_retry_policy();
    store::job j;
    j.attempts = 10;
    j.max_attempts = 20;
    j.backoff_base_ms = 1000;
    j.backoff_cap_ms = 1'000'000;
    std::set<unix_ms> seen;
    for (int idx = 0; idx < 20; ++idx) {
        seen.insert(*policy(j, true, 0));
    }
    EXPECT_GT(seen.size(), 10U);
}

}  // namespace
}  // namespace conclave::jobs
