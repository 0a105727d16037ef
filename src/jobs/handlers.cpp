// The built-in in-process job types: `noop` and `sleep`, for diagnostics and benchmarks.
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
    return types;
}

}  // namespace conclave::jobs
