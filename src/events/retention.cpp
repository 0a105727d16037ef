#include "events/retention.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "core/logging.hpp"

namespace conclave::events {

namespace {
constexpr std::size_t slice = 2000;  // events deleted per write transaction
}

net::awaitable<std::size_t> apply_retention(
    store::store& db, const clock& clk, const std::vector<retention_rule>& rules
) {
    std::size_t total = 0;
    for (const auto& rule : rules) {
        const unix_ms older_than =
            rule.max_age.count() > 0
                ? clk.now() -
                      std::chrono::duration_cast<std::chrono::milliseconds>(rule.max_age).count()
                : 0;
        for (;;) {
            const auto deleted =
                co_await db.prune_events(rule.prefix, older_than, rule.max_events, slice);
            total += deleted;
            if (deleted < slice) {
                break;
            }
        }
    }
    co_return total;
}

net::awaitable<void> retention_loop(
    store::store& db,
    const clock& clk,
    std::vector<retention_rule> rules,
    std::chrono::milliseconds interval,
    const std::atomic<bool>& stop
) {
    net::steady_timer timer(co_await net::this_coro::executor);
    while (!stop) {
        try {
            const auto deleted = co_await apply_retention(db, clk, rules);
            if (deleted > 0) {
                logger("events")->info("retention deleted {} event(s)", deleted);
            }
        } catch (const std::exception& e) {
            logger("events")->error("retention failed: {}", e.what());
        }
        timer.expires_after(interval);
        co_await timer.async_wait(net::use_awaitable);
    }
}

}  // namespace conclave::events
