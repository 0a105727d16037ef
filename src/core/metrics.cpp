#include "core/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <mutex>
#include <stdexcept>

namespace conclave::metrics {
namespace {

enum kind_t : int { kind_counter, kind_gauge, kind_histogram };

const char* kind_name(int kind) {
    switch (kind) {
        case kind_counter:
            return "counter";
        case kind_gauge:
            return "gauge";
        default:
            return "histogram";
    }
}

bool valid_name(std::string_view name, bool allow_colon) {
    if (name.empty()) {
        return false;
    }
    for (std::size_t idx = 0; idx < name.size(); ++idx) {
        const char c = name[idx];
        const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                            (allow_colon && c == ':');
        const bool digit = c >= '0' && c <= '9';
        if (!letter && !(digit && idx > 0)) {
            return false;
        }
    }
    return true;
}

label_set normalized(const label_set& labels) {
    for (const auto& [name, value] : labels) {
        if (!valid_name(name, false) || name.starts_with("__") || name == "le") {
            throw std::logic_error("metrics: invalid label name '" + name + "'");
        }
    }
    label_set sorted = labels;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t idx = 1; idx < sorted.size(); ++idx) {
        if (sorted[idx].first == sorted[idx - 1].first) {
            throw std::logic_error("metrics: label '" + sorted[idx].first + "' given twice");
        }
    }
    return sorted;
}

std::string escape_help(std::string_view help) {
    std::string out;
    out.reserve(help.size());
    for (const char c : help) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

// `{a="x",b="y"}` (with `extra` last, e.g. le), or "" when there are no labels at all.
std::string label_text(
    const label_set& labels, std::string_view extra_name = {}, std::string_view extra_value = {}
) {
    if (labels.empty() && extra_name.empty()) {
        return "";
    }
    std::string out = "{";
    for (const auto& [name, value] : labels) {
        out += name + "=\"" + escape_label_value(value) + "\",";
    }
    if (!extra_name.empty()) {
        out += std::string(extra_name) + "=\"" + escape_label_value(extra_value) + "\",";
    }
    out.back() = '}';
    return out;
}

void write_head(std::string& out, std::string_view name, std::string_view help, int kind) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += escape_help(help);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += kind_name(kind);
    out += '\n';
}

void write_sample(std::string& out, std::string_view name, const std::string& labels, double v) {
    out += name;
    out += labels;
    out += ' ';
    out += format_value(v);
    out += '\n';
}

}  // namespace

// ---- series ----

double counter::value() const noexcept {
    return static_cast<double>(whole_.load(std::memory_order_relaxed)) +
           fraction_.load(std::memory_order_relaxed);
}

histogram::histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void histogram::observe(double v) noexcept {
    // `le` is inclusive: an observation equal to a bound belongs to that bound's bucket.
    const auto at = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
    buckets_[static_cast<std::size_t>(at)].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
}

histogram::snapshot histogram::read() const {
    snapshot s;
    s.cumulative.reserve(bounds_.size() + 1);
    for (std::size_t idx = 0; idx <= bounds_.size(); ++idx) {
        s.count += buckets_[idx].load(std::memory_order_relaxed);
        s.cumulative.push_back(s.count);
    }
    s.sum = sum_.load(std::memory_order_relaxed);
    return s;
}

std::vector<double> latency_buckets() {
    return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> duration_buckets() {
    return {0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
}

std::vector<double> size_buckets() {
    std::vector<double> out;
    for (double b = 1; b <= 4096; b *= 2) {
        out.push_back(b);
    }
    return out;
}

// ---- registry ----

struct registry::family {
    int kind = kind_counter;
    std::vector<double> bounds;  // histograms
    mutable std::shared_mutex mutex;
    std::string help;
    std::map<label_set, std::unique_ptr<metrics::counter>> counters;
    std::map<label_set, std::unique_ptr<metrics::gauge>> gauges;
    std::map<label_set, std::unique_ptr<metrics::histogram>> histograms;

    // The series of `labels` in `series`, created by `make` on first use.
    template <class T, class Make>
    T& find(std::map<label_set, std::unique_ptr<T>>& series, const label_set& labels, Make make) {
        const auto key = normalized(labels);
        {
            std::shared_lock lock(mutex);
            auto it = series.find(key);
            if (it != series.end()) {
                return *it->second;
            }
        }
        std::unique_lock lock(mutex);
        auto& slot = series[key];
        if (!slot) {
            slot = make();
        }
        return *slot;
    }
};

registry::registry() = default;
registry::~registry() = default;

registry::family& registry::find_family(std::string_view name, int kind, std::string_view help) {
    family* found = nullptr;
    {
        std::shared_lock lock(mutex_);
        auto it = families_.find(name);
        if (it != families_.end()) {
            found = it->second.get();
        }
    }
    if (found == nullptr) {
        if (!valid_name(name, true)) {
            throw std::logic_error("metrics: invalid metric name '" + std::string(name) + "'");
        }
        std::unique_lock lock(mutex_);
        auto& slot = families_[std::string(name)];
        if (!slot) {
            slot = std::make_unique<family>();
            slot->kind = kind;
        }
        found = slot.get();
    }
    if (found->kind != kind) {
        throw std::logic_error(
            "metrics: '" + std::string(name) + "' is a " + kind_name(found->kind) + ", not a " +
            kind_name(kind)
        );
    }
    if (!help.empty()) {
        bool missing = false;
        {
            std::shared_lock lock(found->mutex);
            missing = found->help.empty();
        }
        if (missing) {
            std::unique_lock lock(found->mutex);
            if (found->help.empty()) {
                found->help = std::string(help);
            }
        }
    }
    return *found;
}

counter& registry::counter(std::string_view name, const label_set& labels, std::string_view help) {
    auto& f = find_family(name, kind_counter, help);
    return f.find(f.counters, labels, [] { return std::make_unique<metrics::counter>(); });
}

gauge& registry::gauge(std::string_view name, const label_set& labels, std::string_view help) {
    auto& f = find_family(name, kind_gauge, help);
    return f.find(f.gauges, labels, [] { return std::make_unique<metrics::gauge>(); });
}

histogram& registry::histogram(
    std::string_view name,
    const std::vector<double>& bounds,
    const label_set& labels,
    std::string_view help
) {
    for (std::size_t idx = 0; idx < bounds.size(); ++idx) {
        if (!std::isfinite(bounds[idx]) || (idx > 0 && bounds[idx] <= bounds[idx - 1])) {
            throw std::logic_error(
                "metrics: the buckets of '" + std::string(name) + "' must be finite and increasing"
            );
        }
    }
    auto& f = find_family(name, kind_histogram, help);
    return f.find(f.histograms, labels, [&f, &bounds] {
        // Under the family's lock: the first series fixes the family's buckets.
        if (f.histograms.size() == 1) {
            f.bounds = bounds;
        }
        return std::make_unique<metrics::histogram>(f.bounds);
    });
}

std::string registry::expose() const {
    std::string out;
    std::shared_lock lock(mutex_);
    for (const auto& [name, f] : families_) {
        std::shared_lock family_lock(f->mutex);
        const auto size = f->counters.size() + f->gauges.size() + f->histograms.size();
        if (size == 0) {
            continue;
        }
        write_head(out, name, f->help, f->kind);
        for (const auto& [labels, c] : f->counters) {
            write_sample(out, name, label_text(labels), c->value());
        }
        for (const auto& [labels, g] : f->gauges) {
            write_sample(out, name, label_text(labels), g->value());
        }
        for (const auto& [labels, h] : f->histograms) {
            const auto s = h->read();
            const auto& bounds = h->bounds();
            for (std::size_t idx = 0; idx < s.cumulative.size(); ++idx) {
                const auto le = idx < bounds.size() ? format_value(bounds[idx]) : "+Inf";
                write_sample(
                    out,
                    name + "_bucket",
                    label_text(labels, "le", le),
                    static_cast<double>(s.cumulative[idx])
                );
            }
            write_sample(out, name + "_sum", label_text(labels), s.sum);
            write_sample(out, name + "_count", label_text(labels), static_cast<double>(s.count));
        }
    }
    return out;
}

registry& global() {
    static auto* process_registry = new registry();
    return *process_registry;
}

// ---- exposition helpers ----

void write_gauge_family(
    std::string& out,
    std::string_view name,
    std::string_view help,
    const std::vector<std::pair<label_set, double>>& samples
) {
    write_head(out, name, help, kind_gauge);
    for (const auto& [labels, v] : samples) {
        write_sample(out, name, label_text(normalized(labels)), v);
    }
}

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (const char c : v) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string format_value(double v) {
    if (std::isnan(v)) {
        return "NaN";
    }
    if (std::isinf(v)) {
        return v > 0 ? "+Inf" : "-Inf";
    }
    constexpr double exact_integers = 9007199254740992.0;  // 2^53
    if (v == std::floor(v) && std::fabs(v) < exact_integers) {
        return std::to_string(static_cast<std::int64_t>(v));
    }
    char buf[32];
    const auto printed = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, printed.ptr);
}

}  // namespace conclave::metrics
