#include <boost/json.hpp>

#include "chat/chat.hpp"
#include "chat/chat_json.hpp"
#include "chat/routes.hpp"
#include "http/json_body.hpp"
#include "store/records_json.hpp"

namespace conclave::chat {
namespace json = boost::json;
using http::error_response;
using http::json_response;
using http::request_context;
using http::response;
using http::bhttp::status;
using http::bhttp::verb;

namespace {

constexpr std::size_t default_page = 50;
constexpr std::size_t max_page = 500;

// ?limit= and ?cursor= of a list. Errors: bad_request.
result<std::pair<std::size_t, std::int64_t>> page_params(const request_context& ctx) {
    std::size_t limit = default_page;
    if (auto text = ctx.query("limit")) {
        auto n = http::parse_non_negative(*text, "limit");
        if (!n || *n < 1 || *n > static_cast<std::int64_t>(max_page)) {
            return fail(errc::bad_request, "'limit' must be an integer from 1 to 500");
        }
        limit = static_cast<std::size_t>(*n);
    }
    std::int64_t before = 0;
    if (auto text = ctx.query("cursor")) {
        auto n = http::parse_non_negative(*text, "cursor");
        if (!n || *n == 0) {
            return fail(errc::bad_request, "'cursor' must be a next_cursor from an earlier page");
        }
        before = *n;
    }
    return std::pair{limit, before};
}

// An empty body counts as {}: `curl -X POST` should just work.
result<json::value> optional_body(const request_context& ctx) {
    if (ctx.req.body().find_first_not_of(" \t\r\n") == std::string::npos) {
        return json::value(json::object{});
    }
    return http::parse_json_body(ctx.req.body());
}

}  // namespace

void add_conversation_routes(http::router& routes, chat& conversations) {
    routes.add(
        verb::post,
        "/v1/conversations",
        [&conversations](request_context& ctx) -> net::awaitable<response> {
            auto body = optional_body(ctx);
            if (!body) {
                co_return error_response(body.error());
            }
            auto created = co_await conversations.create(*body);
            if (!created) {
                co_return error_response(created.error());
            }
            co_return json_response(status::created, to_json(*created));
        }
    );

    routes.add(
        verb::get,
        "/v1/conversations",
        [&conversations](request_context& ctx) -> net::awaitable<response> {
            auto page_of = page_params(ctx);
            if (!page_of) {
                co_return error_response(page_of.error());
            }
            auto page = co_await conversations.list(page_of->first, page_of->second);
            json::array items;
            for (const auto& c : page.conversations) {
                items.push_back(to_json(c));
            }
            json::value next = page.next_cursor ? json::value(std::to_string(page.next_cursor))
                                                : json::value(nullptr);
            co_return json_response(
                status::ok,
                json::object{{"conversations", std::move(items)}, {"next_cursor", std::move(next)}}
            );
        }
    );

    routes.add(
        verb::get,
        "/v1/conversations/{id}",
        [&conversations](request_context& ctx) -> net::awaitable<response> {
            auto view = co_await conversations.get(ctx.params[0]);
            if (!view) {
                co_return error_response(view.error());
            }
            co_return json_response(status::ok, to_json(*view));
        }
    );

    routes.add(
        verb::delete_,
        "/v1/conversations/{id}",
        [&conversations](request_context& ctx) -> net::awaitable<response> {
            auto removed = co_await conversations.remove(ctx.params[0]);
            if (!removed) {
                co_return error_response(removed.error());
            }
            response res{status::no_content, 11};
            res.prepare_payload();
            co_return res;
        }
    );

    routes.add(
        verb::post,
        "/v1/conversations/{id}/messages",
        [&conversations](request_context& ctx) -> net::awaitable<response> {
            auto body = http::parse_json_body(ctx.req.body());
            if (!body) {
                co_return error_response(body.error());
            }
            auto content = chat::content_of(*body);
            if (!content) {
                co_return error_response(content.error());
            }
            auto started = co_await conversations.ask(ctx.params[0], std::move(*content));
            if (!started) {
                co_return error_response(started.error());
            }
            const auto& job_id = started->job.id;
            co_return json_response(
                status::accepted,
                json::object{
                    {"message", to_json(started->message)},
                    {"job", store::to_json(started->job)},
                    {"job_id", job_id},
                    {"stream_url", "/v1/jobs/" + job_id + "/events"},
                    {"snapshot_url", "/v1/jobs/" + job_id + "/snapshot"},
                    {"topic", store::conversation_topic(ctx.params[0])}}
            );
        }
    );
}

}  // namespace conclave::chat
