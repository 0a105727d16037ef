#include "web/routes.hpp"

#include <array>
#include <string>
#include <vector>

#include "web/assets.hpp"

namespace conclave::web {
namespace {

using http::bhttp::field;
using http::bhttp::status;
using http::bhttp::verb;

constexpr std::string_view immutable_cache = "public, max-age=31536000, immutable";
constexpr std::string_view revalidate_cache = "no-cache";

// First path segments that belong to the API: never answered with the UI.
constexpr std::array<std::string_view, 5> api_prefixes{"v1", "api", "healthz", "readyz", "metrics"};

bool is_api_path(std::string_view first_segment) {
    for (auto prefix : api_prefixes) {
        if (first_segment == prefix) {
            return true;
        }
    }
    return false;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// If-None-Match: "*" or a list of (possibly weak) entity tags.
bool etag_matches(std::string_view if_none_match, std::string_view etag) {
    while (!if_none_match.empty()) {
        const auto comma = if_none_match.find(',');
        auto tag = trim(if_none_match.substr(0, comma));
        if (tag.starts_with("W/")) {
            tag.remove_prefix(2);
        }
        if (tag == "*" || tag == etag) {
            return true;
        }
        if (comma == std::string_view::npos) {
            break;
        }
        if_none_match.remove_prefix(comma + 1);
    }
    return false;
}

http::response file_response(
    const http::request& req, const asset& file, std::string_view cache_control, bool vary_accept
) {
    const bool not_modified = etag_matches(req[field::if_none_match], file.etag);
    http::response res{not_modified ? status::not_modified : status::ok, 11};
    res.set(field::etag, file.etag);
    res.set(field::cache_control, cache_control);
    if (vary_accept) {
        res.set(field::vary, "Accept");
    }
    if (not_modified) {
        return res;
    }
    res.set(field::content_type, file.content_type);
    res.set("X-Content-Type-Options", "nosniff");
    if (req.method() == verb::head) {
        res.content_length(file.data.size());
    } else {
        res.body().assign(file.data);
        res.prepare_payload();
    }
    return res;
}

http::response not_found(const http::request_context& ctx) {
    return http::error_response(fail(errc::not_found, "no route for " + std::string(ctx.url.path()))
    );
}

bool accepts_html(const http::request& req) {
    return req[field::accept].find("text/html") != std::string_view::npos;
}

http::response serve(const http::request_context& ctx) {
    const auto method = ctx.req.method();
    if (method != verb::get && method != verb::head) {
        return not_found(ctx);
    }
    // Segments arrive percent-decoded: "%2e%2e" is "..", "%2F" a '/' inside one segment.
    std::vector<std::string> segments;
    for (auto seg : ctx.url.segments()) {
        std::string s(seg);
        if (s == "." || s == ".." || s.find_first_of("/\\") != std::string::npos) {
            return not_found(ctx);
        }
        segments.push_back(std::move(s));
    }
    std::string path;
    for (std::size_t idx = 0; idx < segments.size(); ++idx) {
        path += (idx == 0 ? "" : "/") + segments[idx];
    }
    const std::string first = segments.empty() ? "" : segments.front();
    if (segments.empty() || path == "index.html") {
        return file_response(ctx.req, index_html(), revalidate_cache, false);
    }
    if (const auto* file = find_asset(path)) {
        const bool hashed = first == "assets";
        return file_response(ctx.req, *file, hashed ? immutable_cache : revalidate_cache, false);
    }
    if (first == "assets" || is_api_path(first) || !accepts_html(ctx.req)) {
        return not_found(ctx);
    }
    return file_response(ctx.req, index_html(), revalidate_cache, true);
}

}  // namespace

void add_web_routes(http::router& routes) {
    routes.set_fallback([](http::request_context& ctx) -> net::awaitable<http::response> {
        co_return serve(ctx);
    });
}

}  // namespace conclave::web
