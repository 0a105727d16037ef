#include "llm/budget.hpp"

#include <algorithm>
#include <chrono>
#include <exception>

#include <boost/asio/steady_timer.hpp>

#include "core/metrics.hpp"

namespace conclave::llm {
namespace {

constexpr unix_ms ms_per_day = 86'400'000;
constexpr double ms_per_minute = 60'000;
// A waiting call looks again at least this often: a settlement may free room before the time
// the shortfall predicted.
constexpr std::chrono::milliseconds max_nap{250};
constexpr std::chrono::milliseconds min_nap{5};

}  // namespace

budget::budget(budget_limits limits, const clock& clk)
    : limits_(limits),
      clock_(clk),
      tokens_(static_cast<double>(limits.tokens_per_minute)),
      refilled_at_(clk.now()),
      day_(clk.now() / ms_per_day) {}

void budget::refill(unix_ms now) {
    if (limits_.tokens_per_minute <= 0 || now <= refilled_at_) {
        return;
    }
    const double capacity = static_cast<double>(limits_.tokens_per_minute);
    tokens_ = std::min(
        capacity, tokens_ + static_cast<double>(now - refilled_at_) * capacity / ms_per_minute
    );
    refilled_at_ = now;
}

void budget::roll_day(unix_ms now) {
    const auto today = now / ms_per_day;
    if (today != day_) {
        day_ = today;
        usd_today_ = 0;
    }
}

double budget::usd_per_token() const {
    if (limits_.usd_per_million_tokens > 0) {
        return limits_.usd_per_million_tokens / 1e6;
    }
    return reported_tokens_ > 0 ? reported_usd_ / reported_tokens_ : 0;
}

std::variant<budget::reservation, budget::shortfall> budget::reserve(std::int64_t tokens) {
    std::lock_guard lock(mutex_);
    const auto now = clock_.now();
    refill(now);
    roll_day(now);
    const auto wanted = static_cast<double>(std::max<std::int64_t>(tokens, 1));
    if (limits_.tokens_per_minute > 0) {
        const double capacity = static_cast<double>(limits_.tokens_per_minute);
        // More than a whole minute's tokens fits only a full bucket.
        const double needed = std::min(wanted, capacity);
        if (tokens_ < needed) {
            const double rate_per_ms = capacity / ms_per_minute;
            const auto wait = static_cast<unix_ms>((needed - tokens_) / rate_per_ms) + 1;
            return shortfall{"tokens_per_minute", now + wait, wanted, std::max(0.0, tokens_)};
        }
    }
    const double usd = wanted * usd_per_token();
    if (limits_.usd_per_day > 0 && usd_today_ > 0 && usd_today_ + usd > limits_.usd_per_day) {
        return shortfall{
            "usd_per_day",
            (day_ + 1) * ms_per_day,
            usd,
            std::max(0.0, limits_.usd_per_day - usd_today_)};
    }
    if (limits_.tokens_per_minute > 0) {
        tokens_ -= wanted;
    }
    usd_today_ += usd;
    return reservation{static_cast<std::int64_t>(wanted), usd, day_};
}

void budget::settle(
    const reservation& r, std::int64_t tokens_used, std::optional<double> usd_reported
) {
    std::lock_guard lock(mutex_);
    const auto now = clock_.now();
    refill(now);
    roll_day(now);
    const auto used = static_cast<double>(std::max<std::int64_t>(tokens_used, 0));
    if (usd_reported && *usd_reported >= 0 && used > 0) {
        reported_usd_ += *usd_reported;
        reported_tokens_ += used;
    }
    if (limits_.tokens_per_minute > 0) {
        tokens_ = std::min(
            static_cast<double>(limits_.tokens_per_minute),
            tokens_ + static_cast<double>(r.tokens) - used
        );
    }
    const double spent =
        usd_reported && *usd_reported >= 0 ? *usd_reported : used * usd_per_token();
    // A reservation from an earlier day was already forgotten with that day; what the call
    // really cost counts today.
    usd_today_ = std::max(0.0, usd_today_ - (r.day == day_ ? r.usd : 0.0) + spent);
}

double budget::tokens_available() {
    std::lock_guard lock(mutex_);
    refill(clock_.now());
    return tokens_;
}

double budget::usd_committed_today() {
    std::lock_guard lock(mutex_);
    roll_day(clock_.now());
    return usd_today_;
}

std::int64_t estimate_prompt_tokens(const chat_request& request) {
    std::size_t chars = 0;
    for (const auto& m : request.messages) {
        chars += m.content.size();
    }
    return static_cast<std::int64_t>(chars / 4) + 1;
}

namespace {

class budgeted_provider final : public provider {
public:
    budgeted_provider(
        std::string name, budget_limits limits, std::shared_ptr<provider> inner, const clock& clk
    )
        : name_(std::move(name)),
          limits_(limits),
          inner_(std::move(inner)),
          clock_(clk),
          budget_(limits, clk) {}

    net::awaitable<result<completion>> stream(chat_request request, delta_sink on_delta) override {
        const auto tokens = estimate_prompt_tokens(request) + limits_.reserve_output_tokens;
        auto wait_for_budget = std::move(request.on_budget_wait);
        auto reserved = co_await reserve(tokens, wait_for_budget);
        result<completion> done = fail(errc::internal, "not called");
        try {
            auto call = inner_->stream(std::move(request), std::move(on_delta));
            done = co_await std::move(call);
        } catch (...) {
            // Cancelled or broken mid-call: what it used is unknown, so the reservation stands.
            budget_.settle(reserved, reserved.tokens, std::nullopt);
            throw;
        }
        if (done) {
            const auto& used = done->usage;
            budget_.settle(reserved, used.prompt_tokens + used.completion_tokens, used.cost);
        } else {
            budget_.settle(reserved, 0, std::nullopt);
        }
        co_return done;
    }

    bool simulated() const override { return inner_->simulated(); }

private:
    // Waits until `tokens` fit, telling `on_wait` each time the reason changes.
    net::awaitable<budget::reservation> reserve(
        std::int64_t tokens, const std::function<net::awaitable<void>(budget_wait)>& on_wait
    ) {
        std::string waiting_for;
        std::optional<std::chrono::steady_clock::time_point> waiting_since;
        std::optional<net::steady_timer> timer;
        for (;;) {
            auto got = budget_.reserve(tokens);
            if (auto* r = std::get_if<budget::reservation>(&got)) {
                if (waiting_since) {
                    waited(waiting_for, *waiting_since);
                }
                co_return *r;
            }
            const auto& s = std::get<budget::shortfall>(got);
            if (s.budget != waiting_for) {
                if (waiting_since) {
                    waited(waiting_for, *waiting_since);
                }
                waiting_for = s.budget;
                waiting_since = std::chrono::steady_clock::now();
                metrics::global()
                    .counter(
                        "conclave_llm_budget_waits_total",
                        {{"provider", name_}, {"budget", s.budget}},
                        "LLM calls held back by a provider budget, by provider and budget"
                    )
                    .inc();
                if (on_wait) {
                    budget_wait told{name_, s.budget, s.until, s.needed, s.available};
                    co_await on_wait(std::move(told));
                }
            }
            if (!timer) {
                timer.emplace(co_await net::this_coro::executor);
            }
            const auto left =
                std::chrono::milliseconds(std::max<unix_ms>(0, s.until - clock_.now()));
            timer->expires_after(std::clamp(left, min_nap, max_nap));
            co_await timer->async_wait(net::use_awaitable);  // throws when the call is cancelled
        }
    }

    void waited(const std::string& budget_name, std::chrono::steady_clock::time_point since) {
        metrics::global()
            .counter(
                "conclave_llm_budget_wait_seconds_total",
                {{"provider", name_}, {"budget", budget_name}},
                "Seconds LLM calls spent waiting for a provider budget, by provider and budget"
            )
            .add(std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count());
    }

    std::string name_;
    budget_limits limits_;
    std::shared_ptr<provider> inner_;
    const clock& clock_;
    budget budget_;
};

}  // namespace

std::shared_ptr<provider> budgeted(
    std::string name, budget_limits limits, std::shared_ptr<provider> inner, const clock& clk
) {
    if (!limits.any()) {
        return inner;
    }
    return std::make_shared<budgeted_provider>(std::move(name), limits, std::move(inner), clk);
}

}  // namespace conclave::llm
