#include "jobs/submission.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include <boost/json.hpp>

#include <fmt/format.h>

#include "store/topic.hpp"

namespace conclave::jobs {
namespace json = boost::json;
namespace {

constexpr std::int64_t max_delay_s = 366LL * 24 * 3600;
constexpr std::size_t max_topics = 16;
constexpr std::size_t max_key_length = 200;
constexpr std::size_t max_name_length = 64;

bool is_simple_name(std::string_view s) {
    if (s.empty() || s.size() > max_name_length) {
        return false;
    }
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == '-';
    });
}

// Seconds (at most max_delay_s) to the nearest millisecond: 1.005 s is 1004.999… ms as a
// double, which truncation made 1004.
unix_ms to_ms(double seconds) {
    return static_cast<unix_ms>(std::llround(seconds * 1000));
}

error bad(std::string message) {
    return fail(errc::bad_request, std::move(message));
}

// Reads an integer field within [lo, hi]; a JSON number with no fraction counts.
result<std::int64_t> int_field(
    const json::value& v, const char* name, std::int64_t lo, std::int64_t hi
) {
    std::int64_t n = 0;
    if (v.is_int64()) {
        n = v.get_int64();
    } else if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
        n = static_cast<std::int64_t>(v.get_uint64());
    } else if (v.is_double() && std::trunc(v.get_double()) == v.get_double() && std::abs(v.get_double()) < 9e15) {
        n = static_cast<std::int64_t>(v.get_double());
    } else {
        return bad(std::string("'") + name + "' must be an integer");
    }
    if (n < lo || n > hi) {
        return bad(
            std::string("'") + name + "' must be between " + std::to_string(lo) + " and " +
            std::to_string(hi)
        );
    }
    return n;
}

result<double> number_field(const json::value& v, const char* name, double lo, double hi) {
    if (!v.is_number()) {
        return bad(std::string("'") + name + "' must be a number");
    }
    const double d = v.to_number<double>();
    if (!(d >= lo && d <= hi)) {
        return bad(fmt::format("'{}' must be between {} and {}", name, lo, hi));
    }
    return d;
}

// Serializes with object keys sorted, so that two spellings of one request hash alike.
void canonical(const json::value& v, std::string& out) {
    if (v.is_object()) {
        std::vector<std::pair<std::string_view, const json::value*>> items;
        for (const auto& kv : v.get_object()) {
            items.emplace_back(kv.key(), &kv.value());
        }
        std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
            return a.first < b.first;
        });
        out += '{';
        for (const auto& [key, value] : items) {
            out += json::serialize(json::string(key));
            out += ':';
            canonical(*value, out);
            out += ',';
        }
        out += '}';
    } else if (v.is_array()) {
        out += '[';
        for (const auto& item : v.get_array()) {
            canonical(item, out);
            out += ',';
        }
        out += ']';
    } else {
        out += json::serialize(v);
    }
}

std::string fnv1a_hex(std::string_view text) {
    std::uint64_t hash = 1469598103934665603ULL;
    for (const unsigned char c : text) {
        hash ^= c;
        hash *= 1099511628211ULL;
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(hash));
    return buf;
}

}  // namespace

result<store::new_job> parse_submission(
    const json::value& body, const registry& types, unix_ms now
) {
    if (!body.is_object()) {
        return bad("a job submission must be a JSON object");
    }
    const auto& obj = body.get_object();
    static const std::set<std::string_view> known{
        "type",
        "payload",
        "queue",
        "priority",
        "delay_s",
        "max_attempts",
        "timeout_s",
        "backoff_base_s",
        "backoff_cap_s",
        "idempotency_key",
        "topics"};
    for (const auto& kv : obj) {
        if (!known.contains(kv.key())) {
            return bad("unknown field '" + std::string(kv.key()) + "'");
        }
    }
    const auto* type_value = obj.if_contains("type");
    if (!type_value) {
        return bad("'type' is required");
    }
    if (!type_value->is_string() || type_value->get_string().empty()) {
        return bad("'type' must be a non-empty string");
    }
    store::new_job job;
    job.type = std::string(type_value->get_string());
    const type_config* type = types.find(job.type);
    if (!type) {
        return fail(errc::unknown_job_type, "unknown job type '" + job.type + "'");
    }
    job.max_attempts = type->max_attempts;
    job.timeout_s = type->timeout_s;
    job.backoff_base_ms = to_ms(type->backoff_base_s);
    job.backoff_cap_ms = to_ms(type->backoff_cap_s);
    job.run_at = now;

    json::value payload = json::object{};
    if (const auto* v = obj.if_contains("payload")) {
        payload = *v;
    }
    if (type->validate) {
        if (auto message = type->validate(payload)) {
            return bad("'payload': " + *message);
        }
    }
    job.payload = json::serialize(payload);

    if (const auto* v = obj.if_contains("queue")) {
        if (!v->is_string() || !is_simple_name(v->get_string())) {
            return bad("'queue' must be 1-64 characters of [A-Za-z0-9_.-]");
        }
        job.queue = std::string(v->get_string());
    }
    if (const auto* v = obj.if_contains("priority")) {
        auto n = int_field(*v, "priority", -1'000'000, 1'000'000);
        if (!n) {
            return n.error();
        }
        job.priority = static_cast<int>(*n);
    }
    if (const auto* v = obj.if_contains("delay_s")) {
        auto d = number_field(*v, "delay_s", 0, max_delay_s);
        if (!d) {
            return d.error();
        }
        job.run_at = now + to_ms(*d);
    }
    if (const auto* v = obj.if_contains("max_attempts")) {
        auto n = int_field(*v, "max_attempts", 1, max_attempts_limit);
        if (!n) {
            return n.error();
        }
        job.max_attempts = static_cast<int>(*n);
    }
    if (const auto* v = obj.if_contains("timeout_s")) {
        auto n = int_field(*v, "timeout_s", 0, max_timeout_s);
        if (!n) {
            return n.error();
        }
        job.timeout_s = static_cast<int>(*n);
    }
    if (const auto* v = obj.if_contains("backoff_base_s")) {
        auto d = number_field(*v, "backoff_base_s", 0, max_timeout_s);
        if (!d) {
            return d.error();
        }
        job.backoff_base_ms = to_ms(*d);
    }
    if (const auto* v = obj.if_contains("backoff_cap_s")) {
        auto d = number_field(*v, "backoff_cap_s", 0, max_timeout_s);
        if (!d) {
            return d.error();
        }
        job.backoff_cap_ms = to_ms(*d);
    }
    if (const auto* v = obj.if_contains("idempotency_key")) {
        if (!v->is_string() || v->get_string().empty() || v->get_string().size() > max_key_length) {
            return bad("'idempotency_key' must be a string of 1-200 characters");
        }
        job.idempotency_key = std::string(v->get_string());
    }
    if (const auto* v = obj.if_contains("topics")) {
        if (!v->is_array() || v->get_array().size() > max_topics) {
            return bad("'topics' must be an array of at most 16 topic names");
        }
        for (const auto& t : v->get_array()) {
            if (!t.is_string() || !store::is_valid_topic(t.get_string())) {
                return bad(
                    "'topics' holds an invalid topic name (segments of [A-Za-z0-9_.-] joined by "
                    "':')"
                );
            }
            std::string name(t.get_string());
            if (store::is_job_topic(name)) {
                return bad("'topics' may not name a job topic ('" + name + "')");
            }
            if (std::find(job.topics.begin(), job.topics.end(), name) == job.topics.end()) {
                job.topics.push_back(std::move(name));
            }
        }
    }
    std::string canon;
    json::object hashed = obj;
    hashed.erase("idempotency_key");
    canonical(hashed, canon);
    job.request_hash = fnv1a_hex(canon);
    return job;
}

}  // namespace conclave::jobs
