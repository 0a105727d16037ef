// The built-in in-process job types: `noop`, `sleep` and `type`, for diagnostics, demos,
// tests and benchmarks.
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include "jobs/engine.hpp"
#include "jobs/registry.hpp"

namespace conclave::jobs {
namespace json = boost::json;
namespace {

constexpr std::int64_t max_sleep_ms = 3'600'000;

net::awaitable<std::string> run_noop(job_context& ctx) {
    co_return ctx.job().payload;
}

std::optional<std::string> validate_sleep(const json::value& payload) {
    const auto* ms = payload.is_object() ? payload.get_object().if_contains("ms") : nullptr;
    if (!ms || !ms->is_int64() || ms->get_int64() < 0 || ms->get_int64() > max_sleep_ms) {
        return "sleep needs {\"ms\": 0..3600000}";
    }
    return std::nullopt;
}

net::awaitable<std::string> run_sleep(job_context& ctx) {
    const auto payload = json::parse(ctx.job().payload);
    const auto ms = payload.at("ms").as_int64();
    net::steady_timer timer(co_await net::this_coro::executor, std::chrono::milliseconds(ms));
    co_await timer.async_wait(net::use_awaitable);  // throws operation_aborted when cancelled
    co_return json::serialize(json::object{{"slept_ms", ms}});
}

// `type {text, parts?, chunk?, interval_ms?}`: types `text` out as token deltas of `chunk`
// characters every `interval_ms`, into `parts` parts ("p0", "p1", …) in turn: a stand-in for an
// LLM streaming its answer, with no LLM.
std::optional<std::string> validate_type(const json::value& payload) {
    const auto* obj = payload.if_object();
    const auto* text = obj ? obj->if_contains("text") : nullptr;
    auto in_range = [&](const char* key, std::int64_t lo, std::int64_t hi) {
        const auto* v = obj->if_contains(key);
        return v == nullptr || (v->is_int64() && v->as_int64() >= lo && v->as_int64() <= hi);
    };
    if (text == nullptr || !text->is_string() || !in_range("parts", 1, 64) ||
        !in_range("chunk", 1, 1 << 20) || !in_range("interval_ms", 0, 60'000)) {
        return "type needs {\"text\": string, \"parts\"?: 1..64, \"chunk\"?: 1..1048576, "
               "\"interval_ms\"?: 0..60000}";
    }
    return std::nullopt;
}

net::awaitable<std::string> run_type(job_context& ctx) {
    const auto payload = json::parse(ctx.job().payload).as_object();
    const std::string text(payload.at("text").as_string());
    auto get = [&](const char* key, std::int64_t fallback) {
        const auto* v = payload.if_contains(key);
        return v != nullptr ? v->as_int64() : fallback;
    };
    const auto parts = get("parts", 1);
    const auto chunk = static_cast<std::size_t>(get("chunk", 4));
    const auto interval = std::chrono::milliseconds(get("interval_ms", 10));
    net::steady_timer timer(co_await net::this_coro::executor);
    std::size_t pos = 0;
    std::int64_t round = 0;
    while (pos < text.size()) {
        // Cut on a UTF-8 boundary: never inside a multi-byte character.
        std::size_t end = std::min(text.size(), pos + chunk);
        while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0U) == 0x80U) {
            ++end;
        }
        for (std::int64_t part = 0; part < parts; ++part) {
            // Named first: GCC 12 mishandles temporaries inside a co_await expression.
            std::string name = "p" + std::to_string(part);
            std::string piece = text.substr(pos, end - pos);
            co_await ctx.delta(std::move(name), std::move(piece));
        }
        pos = end;
        ++round;
        if (interval.count() > 0 && pos < text.size()) {
            timer.expires_after(interval);
            co_await timer.async_wait(net::use_awaitable);
        }
    }
    co_return json::serialize(json::object{{"chunks", round}, {"parts", parts}});
}

}  // namespace

registry builtin_registry() {
    registry types;
    types.add(type_config{
        .name = "noop",
        .exec = executor::in_process,
        .run = run_noop,
        .validate = {},
        .max_attempts = 3,
    });
    types.add(type_config{
        .name = "sleep",
        .exec = executor::in_process,
        .run = run_sleep,
        .validate = validate_sleep,
        .max_attempts = 3,
    });
    types.add(type_config{
        .name = "type",
        .exec = executor::in_process,
        .run = run_type,
        .validate = validate_type,
        .max_attempts = 3,
    });
    return types;
}

}  // namespace conclave::jobs
