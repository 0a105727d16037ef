#include "http/json_body.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <boost/json.hpp>

namespace conclave::http {
namespace json = boost::json;
namespace {

// What a parsed body may not hold, or nullptr. Boost.JSON reads a number beyond the range of
// double as ±infinity and writes that back as `Infinity`, which is not JSON: a payload stored
// from such a body could never be read again. A string (or key) holding U+0000 would be cut
// short or refused by PostgreSQL wherever it is stored as text, as its own jsonb refuses it.
// (Boost.JSON already refuses invalid UTF-8 and lone surrogates.) The recursion is bounded by
// max_json_depth.
const char* unstorable(const json::value& v) {
    if (const auto* d = v.if_double()) {
        return std::isfinite(*d) ? nullptr
                                 : "malformed JSON: a number out of the range of a double";
    }
    constexpr const char* nul = "JSON strings must not contain U+0000 (NUL)";
    if (const auto* s = v.if_string()) {
        return s->find('\0') == json::string::npos ? nullptr : nul;
    }
    if (const auto* a = v.if_array()) {
        for (const auto& item : *a) {
            if (const auto* why = unstorable(item)) {
                return why;
            }
        }
    }
    if (const auto* o = v.if_object()) {
        for (const auto& kv : *o) {
            if (kv.key().find('\0') != json::string_view::npos) {
                return nul;
            }
            if (const auto* why = unstorable(kv.value())) {
                return why;
            }
        }
    }
    return nullptr;
}

}  // namespace

result<json::value> parse_json_body(std::string_view body) {
    if (body.empty()) {
        return fail(errc::bad_request, "the request body must be JSON");
    }
    json::parse_options options;
    options.max_depth = max_json_depth;
    boost::system::error_code ec;
    json::value value = json::parse(body, ec, {}, options);
    if (ec == json::error::too_deep) {
        return fail(
            errc::bad_request,
            "JSON nested deeper than " + std::to_string(max_json_depth) + " levels"
        );
    }
    if (ec) {
        return fail(errc::bad_request, "malformed JSON: " + ec.message());
    }
    if (const auto* why = unstorable(value)) {
        return fail(errc::bad_request, why);
    }
    return value;
}

result<std::string> required_string(const json::value& body, const char* name) {
    const auto* v = body.is_object() ? body.get_object().if_contains(name) : nullptr;
    if (!v || !v->is_string()) {
        return fail(
            errc::bad_request, std::string("'") + name + "' is required and must be a string"
        );
    }
    return std::string(v->get_string());
}

result<std::int64_t> parse_non_negative(std::string_view text, const char* what) {
    std::int64_t value = 0;
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end || value < 0) {
        return fail(
            errc::bad_request, std::string("'") + what + "' must be a non-negative integer"
        );
    }
    return value;
}

}  // namespace conclave::http
