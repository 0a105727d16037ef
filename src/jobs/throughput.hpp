// jobs/throughput.hpp: how many jobs ended, per 10-second bucket, over the last 10 minutes.
//
// Fed with every committed batch of events (the store's commit listener, on the writer
// thread); read by GET /v1/stats on the I/O threads. Counts `job.succeeded`, `job.failed` and
// `job.cancelled` on `job:` topics (not their copies on a job's extra topics) in the bucket of
// the moment they are recorded, i.e. their commit time. In memory only: it starts empty with
// the process and counts this node's commits. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

#include "core/clock.hpp"
#include "store/records.hpp"

namespace conclave::jobs {

class throughput {
public:
    struct bucket {
        std::int64_t start_s = 0;  // Unix seconds of the bucket's start (a multiple of width)
        std::int64_t succeeded = 0, failed = 0, cancelled = 0;
    };

    static constexpr std::int64_t default_bucket_s = 10;
    static constexpr std::size_t default_buckets = 60;

    // `clk` outlives the tracker.
    explicit throughput(
        const clock& clk,
        std::int64_t bucket_s = default_bucket_s,
        std::size_t buckets = default_buckets
    );

    // Counts the terminal job events among `committed`.
    void record(const std::vector<store::event>& committed);

    // The window ending with the current bucket: `buckets()` entries, oldest first, with
    // zeros for buckets in which nothing ended.
    std::vector<bucket> window() const;

    std::int64_t bucket_s() const { return bucket_s_; }
    std::size_t buckets() const { return ring_.size(); }

private:
    std::int64_t bucket_start(unix_ms t) const;

    const clock& clock_;
    const std::int64_t bucket_s_;
    mutable std::mutex mutex_;
    std::vector<bucket> ring_;  // slot (start_s / bucket_s) % size; stale slots are reused
};

}  // namespace conclave::jobs
