// Provider budgets: the token bucket, the day's dollars, settlement with real usage, and a
// budgeted provider that holds a call back (telling the caller) instead of failing it.
#include "llm/budget.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <gtest/gtest.h>

#include "support/run_coro.hpp"

namespace conclave::llm {
namespace {

constexpr unix_ms day_ms = 86'400'000;
// Noon on some UTC day, so a few hours either way stay on that day.
constexpr unix_ms noon = 20'000 * day_ms + day_ms / 2;

budget::reservation reserved(std::variant<budget::reservation, budget::shortfall> got) {
    EXPECT_TRUE(std::holds_alternative<budget::reservation>(got)) << std::get<1>(got).budget;
    return std::holds_alternative<budget::reservation>(got) ? std::get<0>(got)
                                                            : budget::reservation{};
}

budget::shortfall short_of(std::variant<budget::reservation, budget::shortfall> got) {
    EXPECT_TRUE(std::holds_alternative<budget::shortfall>(got)) << "the call was let through";
    return std::holds_alternative<budget::shortfall>(got) ? std::get<1>(got) : budget::shortfall{};
}

TEST(BudgetTest, TokensPerMinuteHoldAMinuteAndRefillContinuously) {
    manual_clock clk(noon);
    budget b({.tokens_per_minute = 600}, clk);  // 10 tokens a second
    reserved(b.reserve(400));
    const auto s = short_of(b.reserve(300));
    EXPECT_EQ(s.budget, "tokens_per_minute");
    EXPECT_DOUBLE_EQ(s.available, 200);
    EXPECT_DOUBLE_EQ(s.needed, 300);
    EXPECT_NEAR(static_cast<double>(s.until - noon), 10'000, 2) << "100 tokens at 10 a second";
    clk.advance(9'000);
    short_of(b.reserve(300));
    clk.advance(1'001);
    reserved(b.reserve(300));
    clk.advance(10 * 60'000);
    EXPECT_DOUBLE_EQ(b.tokens_available(), 600) << "never more than a minute's tokens";
}

TEST(BudgetTest, SettlingReplacesTheReservationWithWhatTheCallUsed) {
    manual_clock clk(noon);
    budget b({.tokens_per_minute = 1000}, clk);
    auto r = reserved(b.reserve(800));
    b.settle(r, 100, std::nullopt);
    EXPECT_DOUBLE_EQ(b.tokens_available(), 900) << "the unused 700 come back";
    r = reserved(b.reserve(900));
    b.settle(r, 1500, std::nullopt);
    EXPECT_DOUBLE_EQ(b.tokens_available(), -600) << "a call that used more leaves a debt";
    const auto s = short_of(b.reserve(10));
    EXPECT_NEAR(static_cast<double>(s.until - noon), 610 * 60.0, 2) << "610 tokens at 1000/min";
    clk.advance(610 * 60 + 1);
    r = reserved(b.reserve(10));
    b.settle(r, 0, std::nullopt);  // a failed call gives its reservation back
}

TEST(BudgetTest, ACallLargerThanAMinuteWaitsForAFullBucketNotForever) {
    manual_clock clk(noon);
    budget b({.tokens_per_minute = 100}, clk);
    reserved(b.reserve(500));  // a full bucket lets it through, into debt
    EXPECT_DOUBLE_EQ(b.tokens_available(), -400);
    const auto s = short_of(b.reserve(500));
    EXPECT_NEAR(static_cast<double>(s.until - noon), 5 * 60'000.0, 2) << "until the bucket is full";
    clk.advance(5 * 60'000 + 1);
    reserved(b.reserve(500));
}

TEST(BudgetTest, DollarsPerDayHoldCallsBackUntilTheNextUtcDay) {
    manual_clock clk(noon);
    // 0.1 USD a token, so the arithmetic is easy to follow.
    budget b({.usd_per_day = 1.0, .usd_per_million_tokens = 100'000}, clk);
    auto first = reserved(b.reserve(5));
    EXPECT_NEAR(first.usd, 0.5, 1e-9);
    reserved(b.reserve(4));
    const auto s = short_of(b.reserve(2));
    EXPECT_EQ(s.budget, "usd_per_day");
    EXPECT_EQ(s.until, (noon / day_ms + 1) * day_ms) << "midnight UTC";
    EXPECT_NEAR(s.needed, 0.2, 1e-9);
    EXPECT_NEAR(s.available, 0.1, 1e-9);
    b.settle(first, 5, 0.1);  // it really cost 0.1
    EXPECT_NEAR(b.usd_committed_today(), 0.5, 1e-9);
    reserved(b.reserve(2));
    reserved(b.reserve(3));
    short_of(b.reserve(1));
    clk.set((noon / day_ms + 1) * day_ms);
    EXPECT_DOUBLE_EQ(b.usd_committed_today(), 0) << "a new day";
    reserved(b.reserve(9));
}

TEST(BudgetTest, WithoutAConfiguredPriceThePriceIsLearnedFromReportedCosts) {
    manual_clock clk(noon);
    budget b({.usd_per_day = 1.0}, clk);
    auto r = reserved(b.reserve(100));
    EXPECT_DOUBLE_EQ(r.usd, 0) << "no price known yet";
    b.settle(r, 100, 0.5);  // 0.005 a token
    r = reserved(b.reserve(100));
    EXPECT_NEAR(r.usd, 0.5, 1e-9);
    EXPECT_NEAR(b.usd_committed_today(), 1.0, 1e-9);
    short_of(b.reserve(1));
    b.settle(r, 10, std::nullopt);  // no cost reported: priced at the learned 0.005
    EXPECT_NEAR(b.usd_committed_today(), 0.55, 1e-9);
}

TEST(BudgetTest, ASingleCallDearerThanTheDayRunsAloneRatherThanNever) {
    manual_clock clk(noon);
    budget b({.usd_per_day = 0.01, .usd_per_million_tokens = 1'000'000}, clk);
    reserved(b.reserve(1000));  // 1 USD, nothing spent yet
    short_of(b.reserve(1));
}

// Answers every call with a fixed usage and counts the calls that reached it.
class counting_provider final : public provider {
public:
    explicit counting_provider(std::int64_t tokens) : tokens_(tokens) {}
    net::awaitable<result<completion>> stream(chat_request, delta_sink on_delta) override {
        ++calls;
        co_await on_delta("hi");
        completion c{.text = "hi", .finish_reason = "stop"};
        c.usage.prompt_tokens = tokens_;
        co_return c;
    }
    int calls = 0;

private:
    std::int64_t tokens_;
};

net::awaitable<void> nap(std::chrono::milliseconds d) {
    net::steady_timer timer(co_await net::this_coro::executor, d);
    co_await timer.async_wait(net::use_awaitable);
}

net::awaitable<void> ignore_text(std::string) {
    co_return;
}

TEST(BudgetedProviderTest, ACallOverBudgetWaitsSaysSoAndGoesOnWhenThereIsRoom) {
    manual_clock clk(noon);
    auto inner = std::make_shared<counting_provider>(6000);
    auto p = budgeted("fake", {.tokens_per_minute = 6000, .reserve_output_tokens = 10}, inner, clk);
    std::vector<budget_wait> told;
    test::run_coro([&](net::io_context& ioc) -> net::awaitable<void> {
        chat_request request{.model = "m", .messages = {{"user", "hello"}}};
        request.on_budget_wait = [&](budget_wait w) -> net::awaitable<void> {
            told.push_back(std::move(w));
            co_return;
        };
        auto first = co_await p->stream(request, ignore_text);
        EXPECT_TRUE(first);
        EXPECT_EQ(inner->calls, 1);  // it used the whole minute
        bool second_done = false;
        net::co_spawn(
            ioc,
            [&]() -> net::awaitable<void> {
                auto second = co_await p->stream(request, ignore_text);
                EXPECT_TRUE(second);
                second_done = true;
            },
            net::detached
        );
        co_await nap(std::chrono::milliseconds(600)
        );  // two naps and more, on the budget's clock: no time
        EXPECT_EQ(inner->calls, 1) << "the second call must wait";
        EXPECT_FALSE(second_done);
        EXPECT_EQ(told.size(), 1U) << "told once, not at every look";
        if (!told.empty()) {
            EXPECT_EQ(told[0].provider, "fake");
            EXPECT_EQ(told[0].budget, "tokens_per_minute");
            EXPECT_GT(told[0].until_ms, noon);
        }
        clk.advance(60'000);
        for (int i = 0; i < 100 && !second_done; ++i) {
            co_await nap(std::chrono::milliseconds(10));
        }
        EXPECT_TRUE(second_done);
        EXPECT_EQ(inner->calls, 2);
    });
}

TEST(BudgetedProviderTest, AWaitingCallEndsWhenCancelled) {
    manual_clock clk(noon);
    auto inner = std::make_shared<counting_provider>(100);
    auto p = budgeted("fake", {.usd_per_day = 0.5, .usd_per_million_tokens = 10'000}, inner, clk);
    net::io_context ioc;
    bool reported = false;
    std::exception_ptr second_failure;
    net::cancellation_signal cancel;
    net::co_spawn(
        ioc,
        [&]() -> net::awaitable<void> {
            chat_request request{.model = "m", .messages = {{"user", "hello"}}};
            request.on_budget_wait = [&](budget_wait w) -> net::awaitable<void> {
                EXPECT_EQ(w.budget, "usd_per_day");
                reported = true;
                co_return;
            };
            auto first = co_await p->stream(request, ignore_text);  // 1 USD: over the day
            EXPECT_TRUE(first);
            net::co_spawn(
                ioc,
                p->stream(request, ignore_text),
                net::bind_cancellation_slot(
                    cancel.slot(),
                    [&](std::exception_ptr e, result<completion>) { second_failure = e; }
                )
            );
        },
        net::detached
    );
    for (int i = 0; i < 200 && !reported; ++i) {
        ioc.run_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(reported);
    cancel.emit(net::cancellation_type::terminal);
    ioc.run_for(std::chrono::milliseconds(500));
    ASSERT_TRUE(second_failure) << "the waiting call ends when cancelled";
    EXPECT_EQ(inner->calls, 1);
}

TEST(BudgetedProviderTest, NoBudgetMeansTheProviderItself) {
    auto inner = std::make_shared<counting_provider>(1);
    manual_clock clk(noon);
    EXPECT_EQ(budgeted("x", {}, inner, clk), inner);
}

}  // namespace
}  // namespace conclave::llm
