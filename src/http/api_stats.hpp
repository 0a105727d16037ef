// http/api_stats.hpp: GET /v1/stats — job counts (in total, per queue, per type), the jobs
// running on this node and recent throughput.
#pragma once

#include "http/router.hpp"

namespace conclave::jobs {
class engine;
class throughput;
}  // namespace conclave::jobs

namespace conclave::http {

// {jobs: COUNTS, running_here, queues: {QUEUE: COUNTS}, types: {TYPE: COUNTS},
//  throughput: {bucket_s, buckets: [{t, succeeded, failed, cancelled}]}} where COUNTS is
// {queued, active, succeeded, failed, cancelled}. `jobs` is exact at the moment of the call;
// `queues` and `types` read every job, so on a large table they are reused for a while (10
// times as long as they took to compute). `engine` and `tracker` outlive the router.
void add_stats_route(router& routes, jobs::engine& engine, const jobs::throughput& tracker);

}  // namespace conclave::http
