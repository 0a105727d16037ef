// llm/budget.hpp: a provider's spending limits — tokens per minute and US dollars per day.
//
// A call reserves what it is expected to use before it starts: its prompt (about four characters
// a token) plus `reserve_output_tokens` for the answer, and those tokens' worth of dollars at the
// provider's price (configured, else learned from the costs the provider reported so far). When
// the call ends, its reservation is replaced by the real usage (a failed call is assumed to have
// used nothing). A call that does not fit waits: `budgeted()` tells the caller through
// chat_request::on_budget_wait and sleeps until the budget has room, so a job slows down instead
// of failing.
//
// tokens_per_minute is a token bucket that holds at most one minute's tokens and refills
// continuously; a call larger than a whole minute waits for a full bucket (not forever) and
// leaves it in debt. usd_per_day is counted per UTC calendar day; a call is held back once the
// day's spend and reservations would pass the limit, unless nothing is spent yet (a single call
// dearer than the whole day runs alone rather than never). Budgets are per node and in memory:
// a restarted node starts with a full bucket and nothing spent today.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <variant>

#include "core/clock.hpp"
#include "llm/provider.hpp"

namespace conclave::llm {

struct budget_limits {
    std::int64_t tokens_per_minute = 0;         // 0: no limit
    double usd_per_day = 0;                     // 0: no limit
    std::int64_t reserve_output_tokens = 1024;  // an answer's tokens, assumed until it reports
    double usd_per_million_tokens = 0;  // the price when the provider reports none; 0: learned

    bool any() const { return tokens_per_minute > 0 || usd_per_day > 0; }
};

// The arithmetic of the two budgets. Thread-safe.
class budget {
public:
    budget(budget_limits limits, const clock& clk);

    struct reservation {
        std::int64_t tokens = 0;
        double usd = 0;
        std::int64_t day = 0;  // the UTC day the dollars were reserved on
    };
    struct shortfall {
        std::string budget;  // "tokens_per_minute" or "usd_per_day"
        unix_ms until = 0;   // when the call is expected to fit (settlements may make it sooner)
        double needed = 0;
        double available = 0;
    };

    // Reserves a call of `tokens`, or says which budget is short and until when.
    std::variant<reservation, shortfall> reserve(std::int64_t tokens);

    // Replaces `r` with what the call really used (it may be more than reserved).
    void settle(const reservation& r, std::int64_t tokens_used, std::optional<double> usd_reported);

    // The tokens in the bucket and the dollars spent or reserved today (tests, diagnostics).
    double tokens_available();
    double usd_committed_today();

private:
    void refill(unix_ms now);
    void roll_day(unix_ms now);
    double usd_per_token() const;

    budget_limits limits_;
    const clock& clock_;
    std::mutex mutex_;
    double tokens_ = 0;  // the bucket; negative after a call used more than it had
    unix_ms refilled_at_ = 0;
    std::int64_t day_ = 0;
    double usd_today_ = 0;     // spent and reserved
    double reported_usd_ = 0;  // what the provider reported, and for how many tokens: the price
    double reported_tokens_ = 0;
};

// Estimates a request's prompt tokens: about four characters a token, at least one.
std::int64_t estimate_prompt_tokens(const chat_request& request);

// `inner` under `limits`, reported as provider `name` in budget waits and in the metrics
// conclave_llm_budget_waits_total{provider,budget} and conclave_llm_budget_wait_seconds_total.
// Returns `inner` itself when `limits` sets no budget.
std::shared_ptr<provider> budgeted(
    std::string name, budget_limits limits, std::shared_ptr<provider> inner, const clock& clk
);

}  // namespace conclave::llm
