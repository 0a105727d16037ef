#include "http/guard.hpp"

#include <chrono>
#include <cmath>

#include <boost/json.hpp>

#include "http/json_body.hpp"
#include "http/observability.hpp"
#include "store/records.hpp"
#include "store/topic.hpp"

namespace conclave::http {
namespace json = boost::json;
namespace {

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch()
    )
        .count();
}

// The topics a request reads, for the routes a subscribe token may call (the WebSocket's are
// checked at each subscribe).
std::vector<std::string> topics_read(const request_context& ctx) {
    if (ctx.pattern == "/v1/topics/{topic}/events") {
        return {ctx.params.at(0)};
    }
    if (ctx.pattern == "/v1/jobs/{id}/events" || ctx.pattern == "/v1/jobs/{id}/snapshot") {
        return {store::job_topic(ctx.params.at(0))};
    }
    std::vector<std::string> out;
    if (ctx.pattern == "/v1/stream") {
        const auto list = ctx.query("topics").value_or("");
        std::size_t start = 0;
        while (start < list.size()) {
            const auto end = std::min(list.find(',', start), list.size());
            out.push_back(list.substr(start, end - start));
            start = end + 1;
        }
    }
    return out;
}

}  // namespace

route_guard access_guard(authenticator& auth) {
    return [&auth](request_context& ctx) -> std::optional<response> {
        double retry_after = 0;
        auto who = auth.authorize(
            ctx.req,
            ctx.query("token"),
            ctx.req.method(),
            ctx.pattern,
            std::chrono::steady_clock::now(),
            unix_now(),
            &retry_after
        );
        if (!who) {
            count_refused(to_string(who.error().code));
            auto res = error_response(who.error());
            if (who.error().code == errc::rate_limited) {
                res.set(
                    bhttp::field::retry_after,
                    std::to_string(static_cast<int>(std::max(1.0, std::ceil(retry_after))))
                );
            } else if (who.error().code == errc::unauthorized) {
                res.set(bhttp::field::www_authenticate, "Bearer");
            }
            return res;
        }
        if (who->is_token()) {
            for (const auto& topic : topics_read(ctx)) {
                if (auto refused = who->may_read(topic, unix_now())) {
                    count_refused(to_string(refused->code));
                    return error_response(*refused);
                }
            }
        }
        ctx.who = std::move(*who);
        return std::nullopt;
    };
}

void add_token_route(router& routes, authenticator& auth) {
    routes.add(
        bhttp::verb::post,
        "/v1/tokens/subscribe",
        [&auth](request_context& ctx) -> net::awaitable<response> {
            auto parsed = parse_json_body(ctx.req.body());
            if (!parsed) {
                co_return error_response(parsed.error());
            }
            const auto* body = parsed->if_object();
            if (body == nullptr) {
                co_return error_response(fail(errc::bad_request, "the body must be a JSON object"));
            }
            const auto* topics = body->if_contains("topics");
            if (topics == nullptr || !topics->is_array() || topics->get_array().empty() ||
                topics->get_array().size() > 64) {
                co_return error_response(
                    fail(errc::bad_request, "'topics' must be a list of 1 to 64 topic names")
                );
            }
            std::vector<std::string> names;
            for (const auto& t : topics->get_array()) {
                if (!t.is_string() || !store::is_valid_topic(t.get_string())) {
                    co_return error_response(
                        fail(errc::bad_request, "'topics' must hold valid topic names")
                    );
                }
                names.emplace_back(t.get_string());
            }
            std::int64_t ttl = 300;
            if (const auto* v = body->if_contains("ttl_s")) {
                if (!v->is_int64() || v->as_int64() < 1 || v->as_int64() > auth.max_token_ttl_s()) {
                    co_return error_response(fail(
                        errc::bad_request,
                        "'ttl_s' must be 1 to " + std::to_string(auth.max_token_ttl_s()) +
                            " seconds"
                    ));
                }
                ttl = v->as_int64();
            }
            if (ctx.who.is_token()) {
                co_return error_response(
                    fail(errc::forbidden, "a subscribe token cannot issue tokens")
                );
            }
            const auto now = unix_now();
            json::array list(names.begin(), names.end());
            co_return json_response(
                bhttp::status::created,
                json::object{
                    {"token", auth.issue_token(names, ttl, now)},
                    {"topics", std::move(list)},
                    {"expires_at", now + ttl}}
            );
        }
    );
}

}  // namespace conclave::http
