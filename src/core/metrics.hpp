// core/metrics.hpp: counters, gauges and histograms with labels, and their Prometheus text
// exposition (format 0.0.4, served by GET /metrics).
//
// A metric family is a name (e.g. "conclave_http_requests_total") with one series per label
// set. Looking a series up takes the family's lock (shared when it exists already); the series
// it returns lives as long as the registry, so a component looks its series up once and keeps
// the reference: the hot path is then one or two relaxed atomic adds, safe from any thread.
// Label values should come from bounded sets (route patterns, job types, states), never from
// raw input such as paths or ids.
//
// `global()` is the process's registry, which `conclave serve` exposes; like the loggers of
// core/logging.hpp it is process-wide, so any component can count something without wiring.
// Tests that need isolation make a registry of their own.
//
//   auto& refused = metrics::global().counter(
//       "conclave_http_refused_total", {{"reason", "rate_limited"}}, "Requests refused by a limit"
//   );
//   refused.inc();
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace conclave::metrics {

// Label name → value. The order does not matter: {a, b} and {b, a} are the same series.
using label_set = std::vector<std::pair<std::string, std::string>>;

// A value that only goes up (events, requests, tokens, USD).
class counter {
public:
    void inc(std::uint64_t n = 1) noexcept { whole_.fetch_add(n, std::memory_order_relaxed); }
    // Adds a fractional amount (e.g. a cost in USD). REQUIRES: v >= 0.
    void add(double v) noexcept { fraction_.fetch_add(v, std::memory_order_relaxed); }
    double value() const noexcept;

private:
    std::atomic<std::uint64_t> whole_{0};
    std::atomic<double> fraction_{0};
};

// A value that goes up and down (open connections, jobs in a state).
class gauge {
public:
    void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
    void add(double v) noexcept { value_.fetch_add(v, std::memory_order_relaxed); }
    void inc() noexcept { add(1); }
    void dec() noexcept { add(-1); }
    double value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> value_{0};
};

// Observations counted into buckets of fixed upper bounds (plus +Inf), with their sum.
class histogram {
public:
    // REQUIRES: `bounds` strictly increasing and finite.
    explicit histogram(std::vector<double> bounds);

    void observe(double v) noexcept;

    struct snapshot {
        std::vector<std::uint64_t> cumulative;  // per bound, then +Inf (== count)
        double sum = 0;
        std::uint64_t count = 0;
    };
    // The buckets as exposed: cumulative, the last one (+Inf) equal to the count.
    snapshot read() const;
    const std::vector<double>& bounds() const { return bounds_; }

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // not cumulative; +Inf last
    std::atomic<double> sum_{0};
};

// Bucket bounds for durations in seconds, 1 ms to 10 s (requests, commits, claims).
std::vector<double> latency_buckets();
// Bucket bounds for durations in seconds, 10 ms to 1 h (job attempts, LLM calls).
std::vector<double> duration_buckets();
// Powers of two from 1 to 4096 (batch sizes).
std::vector<double> size_buckets();

class registry {
public:
    registry();
    ~registry();
    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;

    // The series of family `name` with `labels`, created (at zero) on first use. `help` is the
    // family's description (the first non-empty one given is kept). Throws std::logic_error
    // for an invalid metric or label name, or a name already used by another kind of metric:
    // these are bugs, never the result of input.
    metrics::counter& counter(
        std::string_view name, const label_set& labels = {}, std::string_view help = {}
    );
    metrics::gauge& gauge(
        std::string_view name, const label_set& labels = {}, std::string_view help = {}
    );
    // A family's buckets are those of its first series; later `bounds` are ignored.
    metrics::histogram& histogram(
        std::string_view name,
        const std::vector<double>& bounds,
        const label_set& labels = {},
        std::string_view help = {}
    );

    // Every family with at least one series, in name order, in the text exposition format.
    std::string expose() const;

private:
    struct family;
    family& find_family(std::string_view name, int kind, std::string_view help);

    mutable std::shared_mutex mutex_;
    std::map<std::string, std::unique_ptr<family>, std::less<>> families_;
};

// The process's registry (never destroyed, so counting during exit is safe).
registry& global();

// Exposition helpers, for families computed when scraped (e.g. job counts read from the store).
// Appends "# HELP", "# TYPE name gauge" and one line per sample.
void write_gauge_family(
    std::string& out,
    std::string_view name,
    std::string_view help,
    const std::vector<std::pair<label_set, double>>& samples
);
// A label value escaped for the exposition format: \ → \\, " → \", newline → \n.
std::string escape_label_value(std::string_view v);
// A sample value: integers without a fraction, others shortest round-trip; +Inf, -Inf, NaN.
std::string format_value(double v);

}  // namespace conclave::metrics
