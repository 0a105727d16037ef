#include "jobs/throughput.hpp"

#include <string_view>

#include "core/error.hpp"

namespace conclave::jobs {

throughput::throughput(const clock& clk, std::int64_t bucket_s, std::size_t buckets)
    : clock_(clk), bucket_s_(bucket_s), ring_(buckets) {
    CONCLAVE_ASSERT(bucket_s > 0 && buckets > 0);
}

std::int64_t throughput::bucket_start(unix_ms t) const {
    const auto s = t / 1000;  // Unix times here are positive
    return s - s % bucket_s_;
}

void throughput::record(const std::vector<store::event>& committed) {
    std::int64_t succeeded = 0, failed = 0, cancelled = 0;
    for (const auto& e : committed) {
        if (!store::is_job_topic(e.topic)) {
            continue;
        }
        if (e.type == "job.succeeded") {
            ++succeeded;
        } else if (e.type == "job.failed") {
            ++failed;
        } else if (e.type == "job.cancelled") {
            ++cancelled;
        }
    }
    if (succeeded + failed + cancelled == 0) {
        return;
    }
    const auto start = bucket_start(clock_.now());
    const auto slot = static_cast<std::size_t>(start / bucket_s_) % ring_.size();
    std::lock_guard lock(mutex_);
    auto& b = ring_[slot];
    if (b.start_s != start) {
        b = bucket{.start_s = start};
    }
    b.succeeded += succeeded;
    b.failed += failed;
    b.cancelled += cancelled;
}

std::vector<throughput::bucket> throughput::window() const {
    const auto newest = bucket_start(clock_.now());
    const auto count = static_cast<std::int64_t>(ring_.size());
    std::vector<bucket> out;
    out.reserve(ring_.size());
    std::lock_guard lock(mutex_);
    for (std::int64_t age = count - 1; age >= 0; --age) {
        const auto start = newest - age * bucket_s_;
        const auto& b = ring_[static_cast<std::size_t>(start / bucket_s_) % ring_.size()];
        out.push_back(b.start_s == start ? b : bucket{.start_s = start});
    }
    return out;
}

}  // namespace conclave::jobs
