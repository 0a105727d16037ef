#include "jobs/backoff.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace conclave::jobs {

unix_ms backoff_delay(int attempt, unix_ms base_ms, unix_ms cap_ms, double jitter) {
    constexpr int max_shift = 40;  // 2^40 · base is past any sane cap; avoids overflow
    const int shift = std::clamp(attempt - 1, 0, max_shift);
    const double ceiling = std::min(
        static_cast<double>(cap_ms), static_cast<double>(base_ms) * std::ldexp(1.0, shift)
    );
    return static_cast<unix_ms>(std::floor(std::clamp(jitter, 0.0, 1.0) * std::max(ceiling, 0.0)));
}

store::retry_policy default_retry_policy() {
    return [](const store::job& j, bool retryable, unix_ms now) -> std::optional<unix_ms> {
        if (!retryable || j.attempts >= j.max_attempts) {
            return std::nullopt;
        }
        thread_local std::mt19937_64 rng{std::random_device{}()};
        std::uniform_real_distribution<double> uniform(0.0, 1.0);
        return now + backoff_delay(j.attempts, j.backoff_base_ms, j.backoff_cap_ms, uniform(rng));
    };
}

}  // namespace conclave::jobs
