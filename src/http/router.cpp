#include "http/router.hpp"

#include <algorithm>

#include <boost/url/parse.hpp>

#include "core/logging.hpp"
#include "core/text.hpp"
#include "http/observability.hpp"
#include "store/store.hpp"

namespace conclave::http {
namespace {

std::vector<std::string> split_pattern(const std::string& pattern) {
    std::vector<std::string> out;
    std::size_t start = 1;
    while (start <= pattern.size()) {
        const auto end = pattern.find('/', start);
        out.push_back(
            pattern.substr(start, end == std::string::npos ? std::string::npos : end - start)
        );
        if (end == std::string::npos) {
            break;
        }
        start = end + 1;
    }
    return out;
}

bool is_capture(const std::string& segment) {
    return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

std::string route_name(const request_context& ctx) {
    return ctx.pattern.empty() ? "fallback" : ctx.pattern;
}

// Runs a handler: its exception is logged and answered 500 with no internals, or 503 when
// the store could not reach its database (nothing was done; the client may retry).
net::awaitable<routed> run_handler(const route_handler& handler, request_context& ctx) {
    bool unreachable = false;
    std::string failure;
    try {
        auto res = co_await handler(ctx);
        co_return routed{std::move(res), std::move(ctx.stream), route_name(ctx)};
    } catch (const store::unavailable& e) {
        unreachable = true;
        failure = e.what();
    } catch (const std::exception& e) {
        failure = e.what();
    }
    log_with(
        *logger("http"),
        unreachable ? spdlog::level::warn : spdlog::level::err,
        {{"request_id", request_id(ctx.req)}},
        "{} {}: {}",
        std::string(ctx.req.method_string()),
        std::string(ctx.req.target()),
        failure
    );
    auto refusal = unreachable ? fail(errc::unavailable, "the database is unavailable; retry later")
                               : fail(errc::internal, "internal error");
    co_return routed{error_response(std::move(refusal)), {}, route_name(ctx)};
}

}  // namespace

std::optional<std::string> request_context::query(std::string_view name) const {
    auto params_view = url.params();
    auto it = params_view.find(name);
    if (it == params_view.end()) {
        return std::nullopt;
    }
    return std::string((*it).value);
}

void router::add(
    bhttp::verb method, std::string pattern, route_handler handler, std::string accept
) {
    auto segments = split_pattern(pattern);
    routes_.push_back(route{
        method, std::move(pattern), std::move(segments), std::move(handler), std::move(accept)});
}

std::string router::cors_head_lines(const std::string& allowed_origin) {
    if (allowed_origin.empty()) {
        return "";
    }
    return "Access-Control-Allow-Origin: " + allowed_origin + "\r\nVary: Origin\r\n";
}

routed router::preflight(const request& req, const std::string& origin) const {
    if (origin.empty()) {
        return routed{
            error_response(fail(
                errc::forbidden,
                "origin '" + std::string(req[bhttp::field::origin]) +
                    "' is not allowed (add it to [server] cors_origins)"
            )),
            {}};
    }
    response res{bhttp::status::no_content, 11};
    res.set(bhttp::field::access_control_allow_origin, origin);
    res.set(bhttp::field::access_control_allow_methods, "GET, POST, DELETE, OPTIONS");
    const auto asked = req[bhttp::field::access_control_request_headers];
    res.set(
        bhttp::field::access_control_allow_headers,
        asked.empty() ? std::string("Content-Type, Authorization, Last-Event-ID")
                      : std::string(asked)
    );
    res.set(bhttp::field::access_control_max_age, "600");
    res.set(bhttp::field::vary, "Origin");
    res.prepare_payload();
    return routed{std::move(res), {}};
}

net::awaitable<routed> router::handle(const request& req) const {
    std::string origin(req[bhttp::field::origin]);
    if (!origin.empty() &&
        std::find(cors_origins_.begin(), cors_origins_.end(), origin) == cors_origins_.end()) {
        origin.clear();
    }
    auto reply = co_await route_request(req, origin);
    if (!origin.empty() && !reply.stream) {
        reply.res.set(bhttp::field::access_control_allow_origin, origin);
        reply.res.set(bhttp::field::vary, "Origin");
    }
    co_return reply;
}

net::awaitable<routed> router::route_request(const request& req, const std::string& origin) const {
    if (req.method() == bhttp::verb::options && req.count(bhttp::field::origin) > 0) {
        co_return preflight(req, origin);
    }
    auto parsed = boost::urls::parse_origin_form(req.target());
    if (!parsed) {
        co_return routed{error_response(fail(errc::bad_request, "malformed request target")), {}};
    }
    std::vector<std::string> segments;
    for (auto seg : parsed->segments()) {
        segments.push_back(std::string(seg));
    }
    // Decoded, the path and query become ids, names and filters: text, never raw bytes.
    const auto query = parsed->params();
    if (!std::all_of(segments.begin(), segments.end(), is_text) ||
        !std::all_of(query.begin(), query.end(), [](const boost::urls::param& p) {
            return is_text(p.key) && is_text(p.value);
        })) {
        co_return routed{
            error_response(fail(
                errc::bad_request,
                "the request target decodes to bytes that are not UTF-8 text (or to a NUL)"
            )),
            {}};
    }
    bool path_matched = false;
    for (const auto& r : routes_) {
        if (r.segments.size() != segments.size()) {
            continue;
        }
        std::vector<std::string> params;
        bool match = true;
        for (std::size_t idx = 0; idx < segments.size() && match; ++idx) {
            if (is_capture(r.segments[idx])) {
                params.push_back(segments[idx]);
            } else {
                match = r.segments[idx] == segments[idx];
            }
        }
        if (!match) {
            continue;
        }
        path_matched = true;
        if (r.method != req.method()) {
            continue;
        }
        if (!r.accept.empty() &&
            req[bhttp::field::accept].find(r.accept) == std::string_view::npos) {
            continue;
        }
        request_context ctx{req, *parsed, std::move(params), {}, origin, r.pattern};
        if (guard_) {
            if (auto refused = guard_(ctx)) {
                co_return routed{std::move(*refused), {}, r.pattern};
            }
        }
        co_return co_await run_handler(r.handler, ctx);
    }
    if (!path_matched && fallback_) {
        request_context ctx{req, *parsed, {}, {}, origin};
        co_return co_await run_handler(fallback_, ctx);
    }
    const auto path = std::string(parsed->path());
    auto err = path_matched
                   ? fail(
                         errc::method_not_allowed,
                         "method " + std::string(req.method_string()) + " is not allowed on " + path
                     )
                   : fail(errc::not_found, "no route for " + path);
    co_return routed{error_response(err), {}};
}

}  // namespace conclave::http
