// jobs/backoff.hpp: when a failed attempt runs again.
#pragma once

#include "core/clock.hpp"
#include "store/records.hpp"

namespace conclave::jobs {

// Exponential backoff with full jitter: `jitter` (in [0, 1)) times min(cap, base · 2^(attempt-1)),
// where `attempt` is the number of the attempt that failed (1 for the first).
unix_ms backoff_delay(int attempt, unix_ms base_ms, unix_ms cap_ms, double jitter);

// The engine's retry policy: a retryable failure with attempts left runs again after
// backoff_delay with a random jitter; anything else fails for good. Thread-safe.
store::retry_policy default_retry_policy();

}  // namespace conclave::jobs
