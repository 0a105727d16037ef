// http/message.hpp: the request and response types every handler uses, and JSON replies.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/fwd.hpp>

#include "core/error.hpp"

namespace conclave::http {

namespace bhttp = boost::beast::http;

using request = bhttp::request<bhttp::string_body>;
using response = bhttp::response<bhttp::string_body>;

// A JSON response with `status`; `keep_alive` and version are set by the session.
response json_response(bhttp::status status, const boost::json::value& body);

// The response for an expected failure: the status for its code and
// {"error": {"code", "message"}} (http/errors.cpp holds the one mapping).
response error_response(const error& e);

// The HTTP status of an error code.
bhttp::status status_of(errc code) noexcept;

}  // namespace conclave::http
