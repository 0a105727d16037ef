// http/observability.hpp: what each HTTP request and connection leaves behind — its request
// id, its access log line and its metrics (core/metrics.hpp) — and the counter of requests or
// connections refused by a limit.
//
// The session calls these around every request; they are safe from any thread.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "http/message.hpp"

namespace conclave::http {

// The header that carries a request's id, in the request (as the client sent it, or as the
// session replaced it) and in the response.
constexpr std::string_view request_id_header = "X-Request-Id";

// Gives `req` its id and returns it: the client's X-Request-Id when it is 1 to 64 characters of
// [A-Za-z0-9._-], else a new random one. The request's header is set to it, so a handler reads
// it with request_id(req).
std::string assign_request_id(request& req);

// The id assign_request_id gave `req` (empty before).
std::string_view request_id(const request& req);

// Records one answered request: conclave_http_requests_total{method, route, status}, the
// duration histogram conclave_http_request_duration_seconds{method, route} and the access log
// line (logger "http", info: method, route, path without the query, status, duration_ms,
// request_id). `route` is the pattern that answered (bounded), never the raw path. For a
// stream the duration is the time until the stream took over the connection.
void record_request(
    const request& req,
    std::string_view route,
    unsigned status,
    std::chrono::steady_clock::time_point started
);

// One accepted connection while it lives: conclave_http_connections_accepted_total on
// construction, conclave_http_connections_open up, then down on destruction.
class connection_scope {
public:
    connection_scope();
    ~connection_scope();
    connection_scope(const connection_scope&) = delete;
    connection_scope& operator=(const connection_scope&) = delete;
};

// Counts a request or connection refused by a limit: conclave_http_refused_total{reason}.
// `reason` names the limit, from a fixed set (e.g. "rate_limited", "too_many_connections",
// "unauthorized", "forbidden").
void count_refused(std::string_view reason);

}  // namespace conclave::http
