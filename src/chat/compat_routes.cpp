// The llm-council web client's API, served under /api (the design's compatibility section).
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include "chat/chat.hpp"
#include "chat/chat_json.hpp"
#include "chat/routes.hpp"
#include "http/json_body.hpp"
#include "jobs/engine.hpp"
#include "store/records_json.hpp"

namespace conclave::chat {
namespace json = boost::json;
using http::json_response;
using http::request_context;
using http::response;
using http::bhttp::status;
using http::bhttp::verb;
using namespace std::chrono_literals;

namespace {

// That client's errors (FastAPI's): {"detail": "…"}; a bad body is 422, not 400.
response detail_response(const error& e) {
    auto code = http::status_of(e.code);
    std::string message = e.message;
    if (e.code == errc::bad_request) {
        code = status::unprocessable_entity;
    }
    if (e.code == errc::not_found && message.starts_with("conversation ")) {
        message = "Conversation not found";
    }
    return json_response(code, json::object{{"detail", message}});
}

std::string data_line(const json::object& o) {
    return "data: " + json::serialize(o) + "\n\n";
}

const json::value& field(const json::value& data, const char* key) {
    static const json::value null;
    const auto* obj = data.if_object();
    const auto* v = obj != nullptr ? obj->if_contains(key) : nullptr;
    return v != nullptr ? *v : null;
}

std::string message_of(const json::value& error, const char* otherwise) {
    const auto& m = field(error, "message");
    return m.is_string() ? std::string(m.as_string()) : otherwise;
}

// A council job's event in that client's SSE sequence: stage1_start, stage1_complete,
// stage2_start, stage2_complete, stage3_start, stage3_complete, title_complete (first message),
// complete; or {"type": "error", "message"}. With `detail`, also per-model progress and tokens
// (event types the client does not know, which it ignores).
std::string render(const std::string& type, const json::value& data, bool detail) {
    if (type == "stage1.start" || type == "stage2.start" || type == "stage3.start") {
        return data_line({{"type", type.substr(0, 6) + "_start"}});
    }
    if (type == "stage1.complete") {
        return data_line(
            {{"type", "stage1_complete"},
             {"data", compat_stage_list(field(data, "results"), "response")}}
        );
    }
    if (type == "stage2.complete") {
        json::object metadata{
            {"label_to_model", field(data, "label_to_model")},
            {"aggregate_rankings", field(data, "aggregate_rankings")}};
        return data_line(
            {{"type", "stage2_complete"},
             {"data", compat_stage_list(field(data, "results"), "ranking")},
             {"metadata", std::move(metadata)}}
        );
    }
    if (type == "stage3.complete") {
        return data_line({{"type", "stage3_complete"}, {"data", compat_stage3(data)}});
    }
    if (type == "job.succeeded") {
        // The title was made alongside stage 1; this client expects it after stage 3.
        std::string out;
        const auto& title = field(field(field(data, "result"), "metadata"), "title");
        if (title.is_string()) {
            out += data_line({{"type", "title_complete"}, {"data", {{"title", title}}}});
        }
        return out + data_line({{"type", "complete"}});
    }
    if (type == "job.failed") {
        return data_line(
            {{"type", "error"}, {"message", message_of(field(data, "error"), "the council failed")}}
        );
    }
    if (type == "job.cancelled") {
        return data_line({{"type", "error"}, {"message", "the council was cancelled"}});
    }
    if (type == "job.retrying") {
        return data_line(
            {{"type", "retrying"},
             {"attempt", field(data, "attempt")},
             {"message", message_of(field(data, "error"), "")}}
        );
    }
    if (!detail) {
        return "";
    }
    if (type.ends_with(".delta") && type.size() == 12) {  // stageN.delta
        const auto& part = field(data, "part");
        const std::string model =
            part.is_string() ? std::string(part.as_string()).substr(type.size() - 5) : "";
        return data_line(
            {{"type", type.substr(0, 6) + "_token"},
             {"model", model},
             {"text", field(data, "text")}}
        );
    }
    if (type == "stage1.model_complete" || type == "stage2.model_complete") {
        json::object o{{"type", type.substr(0, 6) + "_model_complete"}};
        o["model"] = field(data, "model");
        if (const auto& error = field(data, "error"); !error.is_null()) {
            o["error"] = error;
        }
        return data_line(o);
    }
    return "";
}

stream::sse_renderer renderer(const request_context& ctx) {
    const bool detail = ctx.query("detail").value_or("") == "1";
    return [detail](const std::string& type, const json::value& data) {
        return render(type, data, detail);
    };
}

// The content of a message body, or the 422 to answer.
result<std::string> content_of(const request_context& ctx) {
    auto body = http::parse_json_body(ctx.req.body());
    if (!body) {
        return body.error();
    }
    return chat::content_of(*body);
}

struct compat_routes {
    chat& conversations;
    events::hub& hub;
    jobs::engine& engine;
    const stream::stream_options& options;

    net::awaitable<response> list(request_context&) {
        json::array items;
        std::int64_t before = 0;
        do {  // the client wants them all; pages keep each read short
            auto page = co_await conversations.list(500, before);
            for (const auto& c : page.conversations) {
                items.push_back(compat_summary(c));
            }
            before = page.next_cursor;
        } while (before != 0 && items.size() < 10'000);
        co_return json_response(status::ok, items);
    }

    net::awaitable<response> create(request_context& ctx) {
        json::value body = json::object{};
        if (ctx.req.body().find_first_not_of(" \t\r\n") != std::string::npos) {
            auto parsed = http::parse_json_body(ctx.req.body());
            if (!parsed) {
                co_return detail_response(parsed.error());
            }
            body = std::move(*parsed);
        }
        auto created = co_await conversations.create(body);
        if (!created) {
            co_return detail_response(created.error());
        }
        auto out = compat_summary(*created);
        out.erase("message_count");
        out["messages"] = json::array{};
        co_return json_response(status::ok, out);
    }

    net::awaitable<response> get(request_context& ctx) {
        auto view = co_await conversations.get(ctx.params[0]);
        if (!view) {
            co_return detail_response(view.error());
        }
        co_return json_response(status::ok, compat_json(*view));
    }

    net::awaitable<response> remove(request_context& ctx) {
        auto removed = co_await conversations.remove(ctx.params[0]);
        if (!removed) {
            co_return detail_response(removed.error());
        }
        co_return json_response(status::ok, json::object{{"status", "deleted"}});
    }

    // Reads the message's content and starts its council in conversation {id}: the job's id.
    // Errors: bad_request (the body), not_found, conversation_busy, as chat::ask.
    net::awaitable<result<std::string>> start_council(request_context& ctx) {
        auto content = content_of(ctx);
        if (!content) {
            co_return content.error();
        }
        auto started = co_await conversations.ask(ctx.params[0], std::move(*content));
        if (!started) {
            co_return started.error();
        }
        co_return std::move(started->job.id);
    }

    // Runs the council and answers when it is done (the council goes on if the client leaves).
    net::awaitable<response> message(request_context& ctx) {
        auto job_id = co_await start_council(ctx);
        if (!job_id) {
            co_return detail_response(job_id.error());
        }
        net::steady_timer timer(co_await net::this_coro::executor);
        for (;;) {
            auto j = co_await engine.find(*job_id);
            if (!j) {
                co_return detail_response(j.error());
            }
            if (j->state == store::job_state::succeeded) {
                const auto result = store::parse_stored(j->result);
                co_return json_response(
                    status::ok,
                    json::object{
                        {"stage1", compat_stage_list(field(result, "stage1"), "response")},
                        {"stage2", compat_stage_list(field(result, "stage2"), "ranking")},
                        {"stage3", compat_stage3(field(result, "stage3"))},
                        {"metadata", field(result, "metadata")}}
                );
            }
            if (store::is_terminal(j->state)) {
                const auto error = store::parse_stored(j->error);
                co_return json_response(
                    status::internal_server_error,
                    json::object{{"detail", message_of(error, "the council did not finish")}}
                );
            }
            timer.expires_after(100ms);
            co_await timer.async_wait(net::use_awaitable);
        }
    }

    // Starts the council and streams it; leaving the stream never stops the council.
    net::awaitable<response> message_stream(request_context& ctx) {
        auto job_id = co_await start_council(ctx);
        if (!job_id) {
            co_return detail_response(job_id.error());
        }
        co_return co_await stream::render_job_stream(
            ctx, hub, engine, options, *job_id, 0, renderer(ctx)
        );
    }

    // Re-joins the newest council of the conversation, from the start or from Last-Event-ID.
    net::awaitable<response> rejoin(request_context& ctx) {
        auto view = co_await conversations.get(ctx.params[0]);
        if (!view) {
            co_return detail_response(view.error());
        }
        if (view->conversation.last_job_id.empty()) {
            co_return detail_response(
                fail(errc::not_found, "No council has run in this conversation")
            );
        }
        std::int64_t after = 0;
        const auto last_id = ctx.req["Last-Event-ID"];
        const auto text =
            !last_id.empty() ? std::string(last_id) : ctx.query("after").value_or("0");
        auto parsed = http::parse_non_negative(text, "Last-Event-ID");
        if (!parsed) {
            co_return detail_response(parsed.error());
        }
        after = *parsed;
        co_return co_await stream::render_job_stream(
            ctx, hub, engine, options, view->conversation.last_job_id, after, renderer(ctx)
        );
    }
};

}  // namespace

void add_llm_council_routes(
    http::router& routes,
    chat& conversations,
    events::hub& hub,
    jobs::engine& engine,
    const stream::stream_options& options
) {
    auto api = std::make_shared<compat_routes>(compat_routes{conversations, hub, engine, options});
    auto bind = [api](net::awaitable<response> (compat_routes::*fn)(request_context&)) {
        return [api, fn](request_context& ctx) { return ((*api).*fn)(ctx); };
    };
    routes.add(verb::get, "/api/conversations", bind(&compat_routes::list));
    routes.add(verb::post, "/api/conversations", bind(&compat_routes::create));
    routes.add(verb::get, "/api/conversations/{id}", bind(&compat_routes::get));
    routes.add(verb::delete_, "/api/conversations/{id}", bind(&compat_routes::remove));
    routes.add(verb::post, "/api/conversations/{id}/message", bind(&compat_routes::message));
    routes.add(
        verb::post, "/api/conversations/{id}/message/stream", bind(&compat_routes::message_stream)
    );
    routes.add(verb::get, "/api/conversations/{id}/stream", bind(&compat_routes::rejoin));
}

}  // namespace conclave::chat
