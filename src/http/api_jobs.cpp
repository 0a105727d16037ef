#include "http/api_jobs.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include "http/json_body.hpp"
#include "jobs/engine.hpp"
#include "store/records_json.hpp"
#include "store/topic.hpp"

namespace conclave::http {
namespace json = boost::json;
using bhttp::status;
using bhttp::verb;

namespace {

constexpr std::size_t default_page = 50;
constexpr std::size_t max_page = 1000;
constexpr std::size_t default_events_page = 100;
constexpr std::size_t max_claim_types = 64;

// A handler body: maps a result to its JSON reply or error response.
template <class T, class F>
response reply(const result<T>& r, status ok, F to_body) {
    if (!r) {
        return error_response(r.error());
    }
    return json_response(ok, to_body(*r));
}

json::value job_body(const store::job& j) {
    return store::to_json(j);
}

result<std::size_t> limit_param(const request_context& ctx, std::size_t fallback) {
    auto text = ctx.query("limit");
    if (!text) {
        return fallback;
    }
    auto n = parse_non_negative(*text, "limit");
    if (!n) {
        return n.error();
    }
    if (*n < 1 || std::cmp_greater(*n, max_page)) {
        return fail(errc::bad_request, "'limit' must be between 1 and 1000");
    }
    return static_cast<std::size_t>(*n);
}

result<std::int64_t> after_param(const request_context& ctx) {
    auto text = ctx.query("after");
    if (!text) {
        return 0;
    }
    return parse_non_negative(*text, "after");
}

// Reads {lease_token, …}: every remote worker write carries the token.
struct worker_write {
    json::value body;
    std::string token;
};

result<worker_write> parse_worker_write(const request_context& ctx) {
    auto body = parse_json_body(ctx.req.body());
    if (!body) {
        return body.error();
    }
    auto token = required_string(*body, "lease_token");
    if (!token) {
        return token.error();
    }
    return worker_write{std::move(*body), std::move(*token)};
}

// The JSON text of member `name`, or `fallback` when absent.
std::string member_text(const json::value& body, const char* name, const char* fallback) {
    const auto* v = body.get_object().if_contains(name);
    return v ? json::serialize(*v) : fallback;
}

json::value events_body(const std::vector<store::event>& list) {
    json::array items;
    for (const auto& e : list) {
        items.push_back(store::to_json(e));
    }
    return json::object{{"events", std::move(items)}};
}

json::value events_page(const std::vector<store::event>& events, std::int64_t after) {
    json::array items;
    for (const auto& e : events) {
        items.push_back(store::to_json(e));
    }
    const std::int64_t next = events.empty() ? after : events.back().offset;
    return json::object{{"events", std::move(items)}, {"next_after", next}};
}

json::value snapshot_body(const jobs::job_snapshot& snap) {
    return jobs::to_json(snap);
}

net::awaitable<response> read_topic(
    jobs::engine& engine, const request_context& ctx, std::string topic
) {
    auto after = after_param(ctx);
    if (!after) {
        co_return error_response(after.error());
    }
    auto limit = limit_param(ctx, default_events_page);
    if (!limit) {
        co_return error_response(limit.error());
    }
    auto events = co_await engine.events(std::move(topic), *after, *limit);
    co_return reply(events, status::ok, [&](const auto& list) {
        return events_page(list, *after);
    });
}

json::value claimed_body(const std::vector<store::claimed_job>& claimed) {
    json::array jobs;
    for (const auto& c : claimed) {
        json::object steps;
        for (const auto& s : c.steps) {
            steps[s.key] = store::parse_stored(s.result);
        }
        jobs.push_back(json::object{
            {"id", c.job.id},
            {"type", c.job.type},
            {"queue", c.job.queue},
            {"payload", store::parse_stored(c.job.payload)},
            {"attempt", c.job.attempts},
            {"max_attempts", c.job.max_attempts},
            {"timeout_s", c.job.timeout_s},
            {"lease_token", c.job.lease_token},
            {"lease_expires_at", format_time(c.job.lease_expires_at)},
            {"steps", std::move(steps)},
        });
    }
    return json::object{{"jobs", std::move(jobs)}};
}

result<jobs::remote_claim> parse_claim(const json::value& body) {
    jobs::remote_claim claim;
    auto worker = required_string(body, "worker");
    if (!worker) {
        return worker.error();
    }
    claim.worker = std::move(*worker);
    const auto& obj = body.get_object();
    const auto* types = obj.if_contains("types");
    if (!types || !types->is_array()) {
        return fail(errc::bad_request, "'types' is required and must be an array of job types");
    }
    for (const auto& t : types->get_array()) {
        if (!t.is_string()) {
            return fail(errc::bad_request, "'types' must hold strings");
        }
        if (std::find(claim.types.begin(), claim.types.end(), t.get_string()) ==
            claim.types.end()) {
            claim.types.emplace_back(t.get_string());
        }
    }
    if (claim.types.size() > max_claim_types) {
        return fail(errc::bad_request, "'types' may name at most 64 job types");
    }
    auto number = [&](const char* name, double fallback) -> result<double> {
        const auto* v = obj.if_contains(name);
        if (!v) {
            return fallback;
        }
        if (!v->is_number()) {
            return fail(errc::bad_request, std::string("'") + name + "' must be a number");
        }
        return v->to_number<double>();
    };
    auto max = number("max", 1);
    auto wait = number("wait_s", 0);
    auto lease = number("lease_s", 0);
    for (const auto* r : {&max, &wait, &lease}) {
        if (!*r) {
            return r->error();
        }
    }
    if (!(*max >= 1 && *max <= 1000) || *max != std::floor(*max)) {
        return fail(errc::bad_request, "'max' must be an integer between 1 and 1000");
    }
    claim.max = static_cast<int>(*max);
    if (*wait < 0 || *wait > 60) {
        return fail(errc::bad_request, "'wait_s' must be between 0 and 60");
    }
    claim.wait = std::chrono::milliseconds(static_cast<std::int64_t>(*wait * 1000));
    if (*lease != 0 && (*lease < 1 || *lease > 3600)) {
        return fail(errc::bad_request, "'lease_s' must be between 1 and 3600");
    }
    claim.lease_ms = static_cast<unix_ms>(*lease * 1000);
    return claim;
}

result<std::vector<store::event_spec>> parse_event_specs(const json::value& body) {
    const auto& obj = body.get_object();
    auto one = [](const json::value& item) -> result<store::event_spec> {
        if (!item.is_object()) {
            return fail(errc::bad_request, "an event must be an object {type, data}");
        }
        auto type = required_string(item, "type");
        if (!type) {
            return type.error();
        }
        return store::event_spec{std::move(*type), member_text(item, "data", "{}")};
    };
    std::vector<store::event_spec> specs;
    if (const auto* list = obj.if_contains("events")) {
        if (!list->is_array()) {
            return fail(errc::bad_request, "'events' must be an array");
        }
        for (const auto& item : list->get_array()) {
            auto spec = one(item);
            if (!spec) {
                return spec.error();
            }
            specs.push_back(std::move(*spec));
        }
        return specs;
    }
    auto spec = one(body);
    if (!spec) {
        return spec.error();
    }
    specs.push_back(std::move(*spec));
    return specs;
}

// {ids: [ID…]} of POST /v1/jobs:retry: 1..1000 strings, duplicates dropped (first kept).
// Errors: bad_request.
result<std::vector<std::string>> parse_retry_ids(const json::value& body) {
    if (!body.is_object()) {
        return fail(errc::bad_request, "expected {\"ids\": [job ids]}");
    }
    const auto* ids = body.get_object().if_contains("ids");
    if (ids == nullptr || !ids->is_array()) {
        return fail(errc::bad_request, "'ids' is required and must be an array of job ids");
    }
    const auto& list = ids->get_array();
    if (list.empty() || list.size() > max_page) {
        return fail(errc::bad_request, "'ids' must hold 1 to 1000 job ids");
    }
    std::vector<std::string> out;
    std::unordered_set<std::string_view> seen;
    for (const auto& id : list) {
        if (!id.is_string()) {
            return fail(errc::bad_request, "'ids' must hold strings");
        }
        if (seen.insert(id.get_string()).second) {
            out.emplace_back(id.get_string());
        }
    }
    return out;
}

// Retries every job of `ids` at once (their writes share the store's group commits); the
// outcomes come back in the order of `ids`.
net::awaitable<std::vector<result<store::job>>> retry_each(
    jobs::engine& engine, std::vector<std::string> ids
) {
    const auto exec = co_await net::this_coro::executor;
    using retry_op = decltype(net::co_spawn(
        exec, std::declval<net::awaitable<result<store::job>>>(), net::deferred
    ));
    std::vector<retry_op> ops;
    ops.reserve(ids.size());
    for (auto& id : ids) {
        auto retry = engine.retry(std::move(id));
        ops.push_back(net::co_spawn(exec, std::move(retry), net::deferred));
    }
    auto group = net::experimental::make_parallel_group(std::move(ops));
    auto all_done = group.async_wait(net::experimental::wait_for_all(), net::use_awaitable);
    auto [order, failures, outcomes] = co_await std::move(all_done);
    for (const auto& failure : failures) {
        if (failure) {
            std::rethrow_exception(failure);
        }
    }
    co_return std::move(outcomes);
}

}  // namespace

void add_job_routes(router& routes, jobs::engine& engine) {
    routes.add(verb::post, "/v1/jobs", [&engine](request_context& ctx) -> net::awaitable<response> {
        auto body = parse_json_body(ctx.req.body());
        if (!body) {
            co_return error_response(body.error());
        }
        auto submitted = co_await engine.submit(*body);
        if (!submitted) {
            co_return error_response(submitted.error());
        }
        co_return json_response(
            submitted->created ? status::created : status::ok, job_body(submitted->job)
        );
    });

    routes.add(
        verb::post,
        "/v1/jobs:batch",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto body = parse_json_body(ctx.req.body());
            if (!body) {
                co_return error_response(body.error());
            }
            auto submitted = co_await engine.submit_batch(*body);
            if (!submitted) {
                co_return error_response(submitted.error());
            }
            json::array jobs;
            std::size_t created = 0;
            for (const auto& s : *submitted) {
                auto item = store::to_json(s.job);
                item["created"] = s.created;
                created += s.created ? 1 : 0;
                jobs.push_back(std::move(item));
            }
            co_return json_response(
                created > 0 ? status::created : status::ok,
                json::object{{"jobs", std::move(jobs)}, {"created", created}}
            );
        }
    );

    routes.add(
        verb::post,
        "/v1/jobs:retry",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto body = parse_json_body(ctx.req.body());
            if (!body) {
                co_return error_response(body.error());
            }
            auto ids = parse_retry_ids(*body);
            if (!ids) {
                co_return error_response(ids.error());
            }
            const auto named = *ids;
            auto retrying = retry_each(engine, std::move(*ids));
            auto outcomes = co_await std::move(retrying);
            json::array retried;
            json::array errors;
            for (std::size_t idx = 0; idx < named.size(); ++idx) {
                const auto& outcome = outcomes[idx];
                if (outcome) {
                    retried.push_back(store::to_json(*outcome));
                    continue;
                }
                errors.push_back(json::object{
                    {"id", named[idx]},
                    {"error",
                     json::object{
                         {"code", to_string(outcome.error().code)},
                         {"message", outcome.error().message}}}});
            }
            co_return json_response(
                status::ok,
                json::object{{"retried", std::move(retried)}, {"errors", std::move(errors)}}
            );
        }
    );

    routes.add(verb::get, "/v1/jobs", [&engine](request_context& ctx) -> net::awaitable<response> {
        store::job_filter filter;
        if (auto state = ctx.query("state")) {
            filter.state = store::parse_job_state(*state);
            if (!filter.state) {
                co_return error_response(fail(
                    errc::bad_request,
                    "'state' must be one of queued, active, succeeded, failed, cancelled"
                ));
            }
        }
        filter.type = ctx.query("type").value_or("");
        filter.queue = ctx.query("queue").value_or("");
        auto limit = limit_param(ctx, default_page);
        if (!limit) {
            co_return error_response(limit.error());
        }
        filter.limit = *limit;
        if (auto cursor = ctx.query("cursor")) {
            auto seq = parse_non_negative(*cursor, "cursor");
            if (!seq || *seq == 0) {
                co_return error_response(
                    fail(errc::bad_request, "'cursor' must be a next_cursor from an earlier page")
                );
            }
            filter.before_seq = *seq;
        }
        auto page = co_await engine.list(std::move(filter));
        json::array jobs;
        for (const auto& j : page.jobs) {
            jobs.push_back(store::to_json(j));
        }
        json::value next =
            page.next_cursor ? json::value(std::to_string(page.next_cursor)) : json::value(nullptr);
        co_return json_response(
            status::ok, json::object{{"jobs", std::move(jobs)}, {"next_cursor", std::move(next)}}
        );
    });

    routes.add(
        verb::get,
        "/v1/jobs/{id}",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto job = co_await engine.find(ctx.params[0]);
            co_return reply(job, status::ok, job_body);
        }
    );

    routes.add(
        verb::post,
        "/v1/jobs/{id}/cancel",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto job = co_await engine.cancel(ctx.params[0]);
            co_return reply(job, status::ok, job_body);
        }
    );

    routes.add(
        verb::post,
        "/v1/jobs/{id}/retry",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto job = co_await engine.retry(ctx.params[0]);
            co_return reply(job, status::ok, job_body);
        }
    );

    routes.add(
        verb::get,
        "/v1/jobs/{id}/snapshot",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto snap = co_await engine.snapshot(ctx.params[0]);
            co_return reply(snap, status::ok, snapshot_body);
        }
    );

    routes.add(
        verb::get,
        "/v1/jobs/{id}/events",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto job = co_await engine.find(ctx.params[0]);
            if (!job) {
                co_return error_response(job.error());
            }
            co_return co_await read_topic(engine, ctx, store::job_topic(job->id));
        }
    );

    routes.add(
        verb::get,
        "/v1/topics/{topic}/events",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            if (!store::is_valid_topic(ctx.params[0])) {
                co_return error_response(fail(
                    errc::bad_request,
                    "invalid topic name: segments of [A-Za-z0-9_.-] joined by ':', at most 200 "
                    "characters"
                ));
            }
            co_return co_await read_topic(engine, ctx, ctx.params[0]);
        }
    );

    routes.add(
        verb::post,
        "/v1/topics/{topic}/events",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto body = parse_json_body(ctx.req.body());
            if (!body) {
                co_return error_response(body.error());
            }
            if (!body->is_object()) {
                co_return error_response(
                    fail(errc::bad_request, "expected {type, data} or {events: [...]}")
                );
            }
            auto specs = parse_event_specs(*body);
            if (!specs) {
                co_return error_response(specs.error());
            }
            auto events = co_await engine.publish(ctx.params[0], std::move(*specs));
            co_return reply(events, status::created, events_body);
        }
    );

    // ---- remote workers ----

    routes.add(
        verb::post,
        "/v1/workers/claim",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto body = parse_json_body(ctx.req.body());
            if (!body) {
                co_return error_response(body.error());
            }
            auto claim = parse_claim(*body);
            if (!claim) {
                co_return error_response(claim.error());
            }
            auto claimed = co_await engine.claim(std::move(*claim));
            co_return reply(claimed, status::ok, claimed_body);
        }
    );

    routes.add(
        verb::post,
        "/v1/jobs/{id}/heartbeat",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto w = parse_worker_write(ctx);
            if (!w) {
                co_return error_response(w.error());
            }
            auto lease = co_await engine.heartbeat(
                ctx.params[0], w->token, member_text(w->body, "progress", "")
            );
            co_return reply(lease, status::ok, [](const store::lease_info& l) {
                return json::object{
                    {"lease_expires_at",
                     l.lease_expires_at ? json::value(format_time(l.lease_expires_at)) : nullptr},
                    {"cancel_requested", l.cancel_requested}};
            });
        }
    );

    routes.add(
        verb::post,
        "/v1/jobs/{id}/events",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto w = parse_worker_write(ctx);
            if (!w) {
                co_return error_response(w.error());
            }
            auto specs = parse_event_specs(w->body);
            if (!specs) {
                co_return error_response(specs.error());
            }
            const auto* flush = w->body.get_object().if_contains("flush");
            if (flush != nullptr && !flush->is_bool()) {
                co_return error_response(fail(errc::bad_request, "'flush' must be a boolean"));
            }
            auto posted = co_await engine.post_events(
                ctx.params[0], w->token, std::move(*specs), flush != nullptr && flush->as_bool()
            );
            if (!posted) {
                co_return error_response(posted.error());
            }
            // 202: deltas wait in the coalescer (written within its interval, or at the next
            // write of this job); 201: everything is in the log.
            auto body = events_body(posted->events);
            body.as_object()["buffered"] = posted->buffered;
            co_return json_response(
                posted->buffered > 0 ? status::accepted : status::created, std::move(body)
            );
        }
    );

    routes.add(
        verb::post,
        "/v1/jobs/{id}/steps/{key}",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto w = parse_worker_write(ctx);
            if (!w) {
                co_return error_response(w.error());
            }
            if (!w->body.get_object().contains("result")) {
                co_return error_response(fail(errc::bad_request, "'result' is required"));
            }
            auto saved = co_await engine.save_step(
                ctx.params[0], w->token, ctx.params[1], member_text(w->body, "result", "null")
            );
            co_return reply(saved, status::ok, [](const store::step& s) {
                return json::object{{"key", s.key}, {"result", store::parse_stored(s.result)}};
            });
        }
    );

    routes.add(
        verb::get,
        "/v1/jobs/{id}/steps",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto steps = co_await engine.steps(ctx.params[0]);
            co_return reply(steps, status::ok, [](const std::vector<store::step>& list) {
                json::object out;
                for (const auto& s : list) {
                    out[s.key] = store::parse_stored(s.result);
                }
                return json::object{{"steps", std::move(out)}};
            });
        }
    );

    routes.add(
        verb::post,
        "/v1/jobs/{id}/complete",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto w = parse_worker_write(ctx);
            if (!w) {
                co_return error_response(w.error());
            }
            auto job = co_await engine.complete(
                ctx.params[0], w->token, member_text(w->body, "result", "null")
            );
            co_return reply(job, status::ok, job_body);
        }
    );

    routes.add(
        verb::post,
        "/v1/jobs/{id}/fail",
        [&engine](request_context& ctx) -> net::awaitable<response> {
            auto w = parse_worker_write(ctx);
            if (!w) {
                co_return error_response(w.error());
            }
            const auto& obj = w->body.get_object();
            const auto* err = obj.if_contains("error");
            if (!err || !(err->is_object() || err->is_string())) {
                co_return error_response(
                    fail(errc::bad_request, "'error' is required: {\"message\": …} or a string")
                );
            }
            json::value error_value =
                err->is_string() ? json::value(json::object{{"message", err->get_string()}}) : *err;
            bool retryable = true;
            if (const auto* r = obj.if_contains("retryable")) {
                if (!r->is_bool()) {
                    co_return error_response(
                        fail(errc::bad_request, "'retryable' must be true or false")
                    );
                }
                retryable = r->get_bool();
            }
            auto job = co_await engine.fail_attempt(
                ctx.params[0], w->token, json::serialize(error_value), retryable
            );
            co_return reply(job, status::ok, job_body);
        }
    );
}

void add_health_routes(router& routes, const std::atomic<bool>& ready, const store::store& db) {
    routes.add(verb::get, "/healthz", [](request_context&) -> net::awaitable<response> {
        co_return json_response(status::ok, json::object{{"status", "ok"}});
    });
    routes.add(verb::get, "/readyz", [&ready, &db](request_context&) -> net::awaitable<response> {
        if (!ready.load()) {
            co_return error_response(fail(errc::unavailable, "the server is starting or stopping"));
        }
        if (!db.reachable()) {
            co_return error_response(fail(errc::unavailable, "the database is unavailable"));
        }
        co_return json_response(status::ok, json::object{{"status", "ready"}});
    });
}

}  // namespace conclave::http
