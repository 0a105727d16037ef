// http/router.hpp: routing is data — a table of {method, pattern, handler}.
//
// Patterns are paths whose `{name}` segments capture one percent-decoded segment, e.g.
// "/v1/jobs/{id}/cancel". A path no pattern matches is 404; a path that matches with another
// method is 405. `handle` is the one boundary where a handler's exception becomes a logged 500
// with no internals. The table is built before serving and read-only afterwards.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/url/url_view.hpp>

#include "core/asio.hpp"
#include "http/auth.hpp"
#include "http/message.hpp"

namespace conclave::http {

// Takes over the connection to stream a response of its own (SSE, WebSocket); the connection
// closes when it returns. `pending` holds bytes the client sent after the request (a
// WebSocket client may send its first message without waiting for the 101).
using stream_handler = std::function<
    net::awaitable<void>(boost::beast::tcp_stream& stream, boost::beast::flat_buffer& pending)>;

struct request_context {
    const request& req;
    boost::urls::url_view url;
    std::vector<std::string> params;  // the {…} captures, in order
    stream_handler stream;            // set by a handler that streams instead of replying
    // The request's Origin when the CORS allow-list admits it (else empty). The router adds
    // the CORS headers to responses; a stream handler writes them into its own head.
    std::string allowed_origin;
    // The matched route's pattern, e.g. "/v1/jobs/{id}" (empty for the fallback): a bounded
    // name for metrics and logs, never the raw path.
    std::string pattern;
    // Who is calling, as the router's guard established (see http/guard.hpp).
    caller who;

    // The decoded value of query parameter `name`, if present.
    std::optional<std::string> query(std::string_view name) const;
};

using route_handler = std::function<net::awaitable<response>(request_context&)>;
// Runs before a matched route's handler: sets `ctx.who`, or returns the refusal to send.
using route_guard = std::function<std::optional<response>(request_context&)>;

// What a request gets: a response, or a stream handler that takes over the connection.
struct routed {
    response res;
    stream_handler stream;
    // What answered, for metrics and logs: the route's pattern, "fallback", or "unmatched".
    std::string route = "unmatched";
};

class router {
public:
    // `accept`, when not empty, restricts the route to requests whose Accept header names that
    // media type (e.g. "text/event-stream"); other requests fall through to later routes.
    void add(
        bhttp::verb method, std::string pattern, route_handler handler, std::string accept = {}
    );
    net::awaitable<routed> handle(const request& req) const;

    // Answers the requests whose path no route matches, instead of the 404 (the web UI's
    // files and its client-side routes). A path that some route matches with another method
    // is still 405. The handler answers 404 itself for what it does not serve.
    void set_fallback(route_handler handler) { fallback_ = std::move(handler); }

    // Browser origins allowed to call the API (CORS): their requests get
    // Access-Control-Allow-Origin, and their preflight OPTIONS requests a 204. No wildcard:
    // an origin is allowed only by name.
    void set_cors_origins(std::vector<std::string> origins) { cors_origins_ = std::move(origins); }
    // Access control for every matched route (not for the fallback, which serves public files).
    void set_guard(route_guard guard) { guard_ = std::move(guard); }

    // "Access-Control-Allow-Origin: …\r\nVary: Origin\r\n" for a stream's own head, or "".
    static std::string cors_head_lines(const std::string& allowed_origin);

private:
    routed preflight(const request& req, const std::string& origin) const;
    net::awaitable<routed> route_request(const request& req, const std::string& origin) const;

    struct route {
        bhttp::verb method;
        std::string pattern;
        std::vector<std::string> segments;
        route_handler handler;
        std::string accept;
    };
    std::vector<route> routes_;
    route_handler fallback_;
    std::vector<std::string> cors_origins_;
    route_guard guard_;
};

}  // namespace conclave::http
