// http/api_jobs.hpp: the native /v1 job API, the remote worker protocol and health checks.
#pragma once

#include <atomic>

#include "http/router.hpp"
#include "store/store.hpp"

namespace conclave::jobs {
class engine;
}

namespace conclave::http {

// Adds /v1/jobs…, /v1/topics/{topic}/events and /v1/workers/claim (GET /v1/stats is in
// http/api_stats.hpp). `engine` outlives the router.
void add_job_routes(router& routes, jobs::engine& engine);

// Adds GET /healthz (always 200 while serving) and GET /readyz (200 once `ready` is true and
// while `db` reaches its database, else 503). Both outlive the router.
void add_health_routes(router& routes, const std::atomic<bool>& ready, const store::store& db);

}  // namespace conclave::http
