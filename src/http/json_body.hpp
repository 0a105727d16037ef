// http/json_body.hpp: reading JSON request bodies and query parameters with clear errors.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "core/error.hpp"

namespace conclave::http {

constexpr std::size_t max_json_depth = 32;

// Parses a request body as JSON. Errors: bad_request (empty, malformed, nested deeper than
// max_json_depth, a number beyond the range of a double), with the reason in the message.
result<boost::json::value> parse_json_body(std::string_view body);

// The member `name` of object `body` as a string. Errors: bad_request (missing or not a string).
result<std::string> required_string(const boost::json::value& body, const char* name);

// Parses a non-negative integer query or header value. Errors: bad_request naming `what`.
result<std::int64_t> parse_non_negative(std::string_view text, const char* what);

}  // namespace conclave::http
