#include "http/api_stats.hpp"

#include <chrono>
#include <memory>
#include <mutex>

#include <boost/json.hpp>

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

// The per-(queue, type) counts scan the whole jobs table (about 1 s per million jobs on
// SQLite), and a dashboard polls. A result is reused for 10 times as long as it took: fresh on
// a small table, at most a tenth of a reader thread's time on a large one, whatever the rate.
class group_cache {
public:
    net::awaitable<std::shared_ptr<const groups>> get(jobs::engine& engine) {
        const auto now = std::chrono::steady_clock::now();
        {
            std::lock_guard lock(mutex_);
            if (value_ && now < fresh_until_) {
                co_return value_;
            }
        }
        auto counted = co_await engine.counts_by_queue_and_type();
        auto value = std::make_shared<const groups>(std::move(counted));
        const auto done = std::chrono::steady_clock::now();
        std::lock_guard lock(mutex_);
        value_ = value;
        fresh_until_ = done + reuse_factor * (done - now);
        co_return value;
    }

private:
    static constexpr int reuse_factor = 10;
    std::mutex mutex_;
    std::shared_ptr<const groups> value_;
    std::chrono::steady_clock::time_point fresh_until_;
};

}  // namespace

void add_stats_route(router& routes, jobs::engine& engine, const jobs::throughput& tracker) {
    auto cache = std::make_shared<group_cache>();
    routes.add(
        bhttp::verb::get,
        "/v1/stats",
        [&engine, &tracker, cache](request_context&) -> net::awaitable<response> {
            auto counts = co_await engine.counts();
            auto by_group = co_await cache->get(engine);
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

}  // namespace conclave::http
