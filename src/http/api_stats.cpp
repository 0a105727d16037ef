#include "http/api_stats.hpp"

#include <chrono>
#include <memory>
#include <mutex>

#include <boost/json.hpp>

#include "core/metrics.hpp"
#include "jobs/engine.hpp"
#include "jobs/throughput.hpp"

namespace conclave::http {
namespace json = boost::json;

namespace {

using groups = std::vector<store::job_group_counts>;

json::object counts_body(const store::job_counts& c) {
    return json::object{
        {"queued", c.queued},
        {"active", c.active},
        {"succeeded", c.succeeded},
        {"failed", c.failed},
        {"cancelled", c.cancelled}};
}

void add_into(json::object& by_name, const std::string& name, const store::job_counts& c) {
    auto* existing = by_name.if_contains(name);
    if (existing == nullptr) {
        by_name[name] = counts_body(c);
        return;
    }
    auto& o = existing->as_object();
    o["queued"] = o["queued"].as_int64() + c.queued;
    o["active"] = o["active"].as_int64() + c.active;
    o["succeeded"] = o["succeeded"].as_int64() + c.succeeded;
    o["failed"] = o["failed"].as_int64() + c.failed;
    o["cancelled"] = o["cancelled"].as_int64() + c.cancelled;
}

json::object throughput_body(const jobs::throughput& tracker) {
    json::array buckets;
    for (const auto& b : tracker.window()) {
        buckets.push_back(json::object{
            {"t", b.start_s},
            {"succeeded", b.succeeded},
            {"failed", b.failed},
            {"cancelled", b.cancelled}});
    }
    return json::object{{"bucket_s", tracker.bucket_s()}, {"buckets", std::move(buckets)}};
}

// One sample per (queue, type, state), every state of each group present (zeros included,
// so a count that drops to nothing reads 0 instead of vanishing).
std::vector<std::pair<metrics::label_set, double>> job_samples(const groups& by_group) {
    std::vector<std::pair<metrics::label_set, double>> out;
    out.reserve(by_group.size() * 5);
    for (const auto& g : by_group) {
        const std::pair<const char*, std::int64_t> states[] = {
            {"queued", g.counts.queued},
            {"active", g.counts.active},
            {"succeeded", g.counts.succeeded},
            {"failed", g.counts.failed},
            {"cancelled", g.counts.cancelled}};
        for (const auto& [state, n] : states) {
            out.emplace_back(
                metrics::label_set{{"queue", g.queue}, {"type", g.type}, {"state", state}},
                static_cast<double>(n)
            );
        }
    }
    return out;
}

}  // namespace

net::awaitable<std::shared_ptr<const groups>> job_group_cache::get() {
    const auto now = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(mutex_);
        if (value_ && now < fresh_until_) {
            co_return value_;
        }
    }
    auto counted = co_await engine_.counts_by_queue_and_type();
    auto value = std::make_shared<const groups>(std::move(counted));
    const auto done = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    value_ = value;
    fresh_until_ = done + reuse_factor * (done - now);
    co_return value;
}

void add_stats_route(
    router& routes, jobs::engine& engine, const jobs::throughput& tracker, job_group_cache& groups
) {
    routes.add(
        bhttp::verb::get,
        "/v1/stats",
        [&engine, &tracker, &groups](request_context&) -> net::awaitable<response> {
            auto counts = co_await engine.counts();
            auto by_group = co_await groups.get();
            json::object queues;
            json::object types;
            for (const auto& g : *by_group) {
                add_into(queues, g.queue, g.counts);
                add_into(types, g.type, g.counts);
            }
            co_return json_response(
                bhttp::status::ok,
                json::object{
                    {"jobs", counts_body(counts)},
                    {"running_here", engine.running()},
                    {"queues", std::move(queues)},
                    {"types", std::move(types)},
                    {"throughput", throughput_body(tracker)},
                }
            );
        }
    );
}

void add_metrics_route(router& routes, jobs::engine& engine, job_group_cache& groups) {
    routes.add(
        bhttp::verb::get,
        "/metrics",
        [&engine, &groups](request_context&) -> net::awaitable<response> {
            auto by_group = co_await groups.get();
            std::string text = metrics::global().expose();
            metrics::write_gauge_family(
                text,
                "conclave_jobs",
                "Jobs by queue, type and state (may lag by 10x the time counting them takes)",
                job_samples(*by_group)
            );
            const std::vector<std::pair<metrics::label_set, double>> running{
                {{}, static_cast<double>(engine.running())}};
            metrics::write_gauge_family(
                text,
                "conclave_jobs_running_here",
                "In-process job handlers running on this node",
                running
            );
            response res{bhttp::status::ok, 11};
            res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
            res.set(bhttp::field::cache_control, "no-store");
            res.body() = std::move(text);
            res.prepare_payload();
            co_return res;
        }
    );
}

}  // namespace conclave::http
