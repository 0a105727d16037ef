// jobs/submission.hpp: turns a submission's JSON into a validated store::new_job.
#pragma once

#include <boost/json/fwd.hpp>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "jobs/registry.hpp"
#include "store/records.hpp"

namespace conclave::jobs {

constexpr std::size_t max_batch_size = 1000;
// The bounds of a job's settings, whether a submission or the config file sets them.
constexpr std::int64_t max_timeout_s = 7LL * 24 * 3600;
constexpr int max_attempts_limit = 1000;

// Validates `body` ({type, payload?, queue?, priority?, delay_s?, max_attempts?, timeout_s?,
// backoff_base_s?, backoff_cap_s?, idempotency_key?, topics?}) against the known types.
// Unknown fields are refused, so a typo never silently changes a job.
// Errors: bad_request (shape, types, ranges; message names the field), unknown_job_type.
result<store::new_job> parse_submission(
    const boost::json::value& body, const registry& types, unix_ms now
);

}  // namespace conclave::jobs
