// fuzz/request_json_fuzz.cpp: a request body as a client sends it — http::parse_json_body (the
// reader of every JSON handler) and then jobs::parse_submission, the validation of
// POST /v1/jobs.
//
// Input: the body, as is.
// Invariants (a violation traps, so libFuzzer saves the input):
//   - parse_json_body accepts exactly what Boost.JSON parses without a depth limit, nests at
//     most max_json_depth (32) arrays/objects, has only finite numbers (Boost.JSON reads 1e999
//     as infinity) and no U+0000 in a string or key, and then gives the same value; a refusal
//     is bad_request with a message; serializing an accepted value and parsing it again gives
//     it back (doubles within a few ulps: Boost.JSON 1.81 does not parse decimals exactly);
//   - an accepted submission names a registered type and has every field within the ranges
//     parse_submission documents (queue a simple name, priority ±1e6, 1..1000 attempts, timeout
//     and backoff at most 7 days, run_at within 366 days of now, key 1..200 characters, at most
//     16 distinct valid topics and no job topic, payload valid JSON, a 16-hex request hash);
//   - the accepted submission written back as a body (every field explicit) parses to the same
//     job; the same body with its members in reverse order (all levels) gives the same job and
//     the same request hash, and a refused one is refused with the same code.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "http/json_body.hpp"
#include "jobs/registry.hpp"
#include "jobs/submission.hpp"
#include "store/topic.hpp"

namespace {

namespace json = boost::json;
using namespace conclave;

void check(bool ok) {
    if (!ok) {
        __builtin_trap();
    }
}

constexpr unix_ms now = 1'700'000'000'000;
constexpr std::int64_t day_s = 24 * 3600;

std::optional<std::string> validate_sleep(const json::value& payload) {
    const auto* ms = payload.is_object() ? payload.get_object().if_contains("ms") : nullptr;
    if (!ms || !ms->is_int64() || ms->get_int64() < 0 || ms->get_int64() > 3'600'000) {
        return "sleep needs {\"ms\": 0..3600000}";
    }
    return std::nullopt;
}

// Like the server's: in-process types with and without a payload check, and a remote one with
// its own defaults.
const jobs::registry& types() {
    static const jobs::registry r = [] {
        jobs::registry out;
        out.add(jobs::type_config{
            .name = "noop", .exec = jobs::executor::in_process, .max_attempts = 3});
        out.add(jobs::type_config{
            .name = "sleep",
            .exec = jobs::executor::in_process,
            .validate = validate_sleep,
            .max_attempts = 3});
        out.add(jobs::type_config{
            .name = "render.pdf",
            .exec = jobs::executor::remote,
            .max_attempts = 5,
            .timeout_s = 120,
            .backoff_base_s = 0.25,
            .backoff_cap_s = 30});
        return out;
    }();
    return r;
}

// Only finite numbers, and no U+0000 in any string or key (PostgreSQL cuts text at a NUL).
bool storable(const json::value& v) {
    const auto has_nul = [](std::string_view s) { return s.find('\0') != s.npos; };
    if (const auto* d = v.if_double()) {
        return std::isfinite(*d);
    }
    if (const auto* str = v.if_string()) {
        return !has_nul(*str);
    }
    if (const auto* a = v.if_array()) {
        return std::all_of(a->begin(), a->end(), storable);
    }
    if (const auto* o = v.if_object()) {
        return std::all_of(o->begin(), o->end(), [&](const auto& kv) {
            return !has_nul(kv.key()) && storable(kv.value());
        });
    }
    return true;
}

// Equal, but for doubles a few ulps apart: Boost.JSON 1.81 does not parse decimals exactly
// (1.6666666666666665, as it writes one, reads back as 1.6666666666666663).
bool near_equal(const json::value& a, const json::value& b) {
    if (a.is_double() && b.is_double()) {
        const double x = a.get_double();
        const double y = b.get_double();
        return x == y || std::abs(x - y) <= 1e-15 * std::max(std::abs(x), std::abs(y)) ||
               std::abs(x - y) < 1e-300;
    }
    if (a.kind() != b.kind()) {
        return false;
    }
    if (const auto* x = a.if_array()) {
        const auto& y = b.get_array();
        return x->size() == y.size() && std::equal(x->begin(), x->end(), y.begin(), near_equal);
    }
    if (const auto* x = a.if_object()) {
        const auto& y = b.get_object();
        return x->size() == y.size() && std::all_of(x->begin(), x->end(), [&](const auto& kv) {
                   const auto* other = y.if_contains(kv.key());
                   return other != nullptr && near_equal(kv.value(), *other);
               });
    }
    return a == b;
}

// Arrays and objects nested in `v`, counted like Boost.JSON's max_depth.
std::size_t depth(const json::value& v) {
    std::size_t inner = 0;
    if (const auto* a = v.if_array()) {
        for (const auto& item : *a) {
            inner = std::max(inner, depth(item));
        }
        return inner + 1;
    }
    if (const auto* o = v.if_object()) {
        for (const auto& kv : *o) {
            inner = std::max(inner, depth(kv.value()));
        }
        return inner + 1;
    }
    return 0;
}

// The same value with every object's members in reverse order.
json::value reversed(const json::value& v) {
    if (const auto* a = v.if_array()) {
        json::array out;
        for (const auto& item : *a) {
            out.push_back(reversed(item));
        }
        return out;
    }
    if (const auto* o = v.if_object()) {
        json::object out;
        for (auto it = o->end(); it != o->begin();) {
            --it;
            out.emplace(it->key(), reversed(it->value()));
        }
        return out;
    }
    return v;
}

bool simple_name(std::string_view s) {
    return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
    });
}

void check_ranges(const store::new_job& job) {
    const auto* type = types().find(job.type);
    check(!job.type.empty() && type != nullptr);
    check(simple_name(job.queue));
    check(job.priority >= -1'000'000 && job.priority <= 1'000'000);
    check(job.max_attempts >= 1 && job.max_attempts <= 1000);
    check(job.timeout_s >= 0 && job.timeout_s <= 7 * day_s);
    check(job.backoff_base_ms >= 0 && job.backoff_base_ms <= 7 * day_s * 1000);
    check(job.backoff_cap_ms >= 0 && job.backoff_cap_ms <= 7 * day_s * 1000);
    check(job.run_at >= now && job.run_at <= now + 366 * day_s * 1000);
    check(job.idempotency_key.size() <= 200);
    check(job.topics.size() <= 16);
    for (std::size_t idx = 0; idx < job.topics.size(); ++idx) {
        check(store::is_valid_topic(job.topics[idx]) && !job.topics[idx].starts_with("job:"));
        check(std::count(job.topics.begin(), job.topics.end(), job.topics[idx]) == 1);
    }
    boost::system::error_code ec;
    const auto payload = json::parse(job.payload, ec);
    check(!ec);
    if (type->validate) {
        check(!type->validate(payload));
    }
    check(job.request_hash.size() == 16);
    check(job.request_hash.find_first_not_of("0123456789abcdef") == std::string::npos);
}

// Every field but the request hash (which depends on the body's spelling) and the payload's
// text (whose members may come in another order).
bool same_job(const store::new_job& a, const store::new_job& b) {
    return a.type == b.type && near_equal(json::parse(a.payload), json::parse(b.payload)) &&
           a.queue == b.queue && a.priority == b.priority && a.run_at == b.run_at &&
           a.max_attempts == b.max_attempts && a.timeout_s == b.timeout_s &&
           a.backoff_base_ms == b.backoff_base_ms && a.backoff_cap_ms == b.backoff_cap_ms &&
           a.idempotency_key == b.idempotency_key && a.topics == b.topics;
}

// The accepted job as a body that spells out every field.
json::value as_body(const store::new_job& job) {
    json::object body{
        {"type", job.type},
        {"payload", json::parse(job.payload)},
        {"queue", job.queue},
        {"priority", job.priority},
        {"delay_s", static_cast<double>(job.run_at - now) / 1000},
        {"max_attempts", job.max_attempts},
        {"timeout_s", job.timeout_s},
        {"backoff_base_s", static_cast<double>(job.backoff_base_ms) / 1000},
        {"backoff_cap_s", static_cast<double>(job.backoff_cap_ms) / 1000},
    };
    if (!job.idempotency_key.empty()) {
        body["idempotency_key"] = job.idempotency_key;
    }
    if (!job.topics.empty()) {
        body["topics"] = json::array(job.topics.begin(), job.topics.end());
    }
    return body;
}

void check_submission(const json::value& body) {
    const auto job = jobs::parse_submission(body, types(), now);
    const auto flipped = jobs::parse_submission(reversed(body), types(), now);
    check(job.has_value() == flipped.has_value());
    if (!job) {
        check(job.error().code == errc::bad_request || job.error().code == errc::unknown_job_type);
        check(!job.error().message.empty());
        check(flipped.error().code == job.error().code);
        return;
    }
    check_ranges(*job);
    check(same_job(*job, *flipped) && job->request_hash == flipped->request_hash);
    check(job->type == http::required_string(body, "type").value());

    const auto again = jobs::parse_submission(as_body(*job), types(), now);
    check(again.has_value());
    check(same_job(*job, *again));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(bytes), size);

    json::parse_options unlimited;
    unlimited.max_depth = std::numeric_limits<std::size_t>::max();
    boost::system::error_code ec;
    const json::value reference = json::parse(body, ec, {}, unlimited);
    const bool fits = !ec && depth(reference) <= http::max_json_depth && storable(reference);

    const auto parsed = http::parse_json_body(body);
    check(parsed.has_value() == fits);
    if (!parsed) {
        check(parsed.error().code == errc::bad_request && !parsed.error().message.empty());
        return 0;
    }
    check(*parsed == reference);
    check(near_equal(json::parse(json::serialize(*parsed)), *parsed));

    check_submission(*parsed);
    return 0;
}
