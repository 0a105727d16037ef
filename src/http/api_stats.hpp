// http/api_stats.hpp: GET /v1/stats — job counts (in total, per queue, per type), the jobs
// running on this node and recent throughput — and GET /metrics.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "http/router.hpp"
#include "store/records.hpp"

namespace conclave::jobs {
class engine;
class throughput;
}  // namespace conclave::jobs

namespace conclave::http {

// The job counts per (queue, type), which read every job (about 1 s per million on SQLite):
// a result is reused for 10 times as long as it took to compute, so a dashboard or a metrics
// scraper polling often costs at most a tenth of a reader thread. Thread-safe.
class job_group_cache {
public:
    explicit job_group_cache(jobs::engine& engine) : engine_(engine) {}

    net::awaitable<std::shared_ptr<const std::vector<store::job_group_counts>>> get();

private:
    static constexpr int reuse_factor = 10;
    jobs::engine& engine_;
    std::mutex mutex_;
    std::shared_ptr<const std::vector<store::job_group_counts>> value_;
    std::chrono::steady_clock::time_point fresh_until_;
};

// {jobs: COUNTS, running_here, queues: {QUEUE: COUNTS}, types: {TYPE: COUNTS},
//  throughput: {bucket_s, buckets: [{t, succeeded, failed, cancelled}]}} where COUNTS is
// {queued, active, succeeded, failed, cancelled}. `jobs` is exact at the moment of the call;
// `queues` and `types` come from `groups`, so they may lag. `engine`, `tracker` and `groups`
// outlive the router.
void add_stats_route(
    router& routes, jobs::engine& engine, const jobs::throughput& tracker, job_group_cache& groups
);

// GET /metrics: the process's metrics (core/metrics.hpp) in the Prometheus text format 0.0.4,
// plus gauges computed when scraped: conclave_jobs{queue, type, state} (from `groups`, so they
// may lag like /v1/stats' `queues`) and conclave_jobs_running_here. `engine` and `groups`
// outlive the router.
void add_metrics_route(router& routes, jobs::engine& engine, job_group_cache& groups);

}  // namespace conclave::http
