#include "stream/sse.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include "core/wakeup.hpp"
#include "events/cursor.hpp"
#include "events/hub.hpp"
#include "http/json_body.hpp"
#include "jobs/engine.hpp"
#include "store/topic.hpp"
#include "stream/follower.hpp"

namespace conclave::stream {
namespace json = boost::json;
namespace beast = boost::beast;
using http::bhttp::verb;

namespace {

// Writes a follower's output as Server-Sent Events.
class sse_sink final : public sink {
public:
    sse_sink(
        beast::tcp_stream& stream, const stream_options& options, bool multi, sse_renderer render
    )
        : stream_(stream), options_(options), multi_(multi), render_(std::move(render)) {}

    const char* transport() const override { return "sse"; }

    void add(const events::frame& f, const events::cursor& positions) override {
        const std::string* body = &f.sse_body;
        if (render_) {
            // Rendered streams are few (a chat page each): parsing the event again is cheap.
            const auto parsed = json::parse(f.ws_body);
            auto text = render_(f.type, parsed.at("data"));
            if (text.empty()) {
                return;
            }
            body = &rendered_.emplace_back(std::move(text));
        }
        ids_.push_back(
            "id: " + (multi_ ? events::format_cursor(positions) : std::to_string(f.offset)) + "\n"
        );
        bodies_.push_back(body);
    }

    net::awaitable<bool> flush() override {
        if (bodies_.empty()) {
            co_return true;
        }
        std::vector<net::const_buffer> buffers;
        buffers.reserve(bodies_.size() * 2);
        for (std::size_t idx = 0; idx < bodies_.size(); ++idx) {
            buffers.push_back(net::buffer(ids_[idx]));
            buffers.push_back(net::buffer(*bodies_[idx]));
        }
        const bool ok = co_await write_buffers(buffers);
        ids_.clear();
        bodies_.clear();
        rendered_.clear();
        co_return ok;
    }

    net::awaitable<bool> control(std::string op, json::object data) override {
        if (render_) {
            if (op == "end") {
                co_return true;  // the rendered format has its own last event
            }
            data["type"] = op;
        }
        // No id: Last-Event-ID stays the last event's.
        const std::string text =
            (render_ ? "" : "event: " + op + "\n") + "data: " + json::serialize(data) + "\n\n";
        co_return co_await write(text);
    }

    net::awaitable<bool> write(const std::string& text) {
        std::array<net::const_buffer, 1> buffers{net::buffer(text)};
        co_return co_await write_buffers(buffers);
    }

private:
    template <class Buffers>
    net::awaitable<bool> write_buffers(const Buffers& buffers) {
        stream_.expires_after(options_.write_timeout);
        auto [ec, n] =
            co_await net::async_write(stream_, buffers, net::as_tuple(net::use_awaitable));
        if (ec == beast::error::timeout) {
            count_stream_timeout("sse");
        }
        co_return !ec;
    }

    beast::tcp_stream& stream_;
    const stream_options& options_;
    bool multi_;
    sse_renderer render_;  // empty: the native format
    // Pending events: the frames' bodies stay alive in the follower's batch until flushed;
    // rendered bodies live here (a deque does not move them).
    std::vector<std::string> ids_;
    std::vector<const std::string*> bodies_;
    std::deque<std::string> rendered_;
};

// One SSE connection over one or more topics.
class sse_session {
public:
    sse_session(
        beast::tcp_stream& stream,
        events::hub& hub,
        jobs::engine& engine,
        const stream_options& options,
        events::cursor positions,
        bool multi,
        std::string cors_lines,
        sse_renderer render
    )
        : stream_(stream),
          options_(options),
          initial_(std::move(positions)),
          multi_(multi),
          cors_lines_(std::move(cors_lines)),
          out_(stream, options, multi, std::move(render)),
          follower_(hub, engine, options, out_) {}

    net::awaitable<void> run() {
        const std::string head =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            "X-Accel-Buffering: no\r\nConnection: close\r\nServer: conclave\r\n" +
            cors_lines_ + "\r\nretry: " + std::to_string(options_.retry.count()) + "\n\n";
        if (co_await out_.write(head)) {
            co_await follow_all();
        }
        boost::system::error_code ignored;
        stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    }

private:
    net::awaitable<void> follow_all() {
        for (const auto& [topic, after] : initial_) {
            if (!co_await follower_.follow(topic, after)) {
                co_return;
            }
        }
        // A job stream is over after its end; a multi-topic stream once every topic has ended.
        auto over = [&] {
            const auto ended = follower_.ended().size();
            return ended > 0 && (!multi_ || ended == initial_.size());
        };
        while (!over()) {
            const auto seen = follower_.queue().wake().generation();
            bool sent = false;
            if (!co_await follower_.pump(sent)) {
                co_return;
            }
            if (sent) {
                continue;
            }
            co_await follower_.queue().wake().wait(seen, options_.heartbeat);
            if (follower_.queue().wake().generation() == seen &&
                !co_await out_.write(heartbeat())) {
                co_return;
            }
        }
    }

    std::string heartbeat() const {
        std::string line = ": heartbeat";
        for (const auto& [topic, offset] : follower_.positions()) {
            line += " " + topic + "=" + std::to_string(offset);
        }
        return line + "\n\n";
    }

    beast::tcp_stream& stream_;
    const stream_options& options_;
    events::cursor initial_;
    bool multi_;
    std::string cors_lines_;
    sse_sink out_;
    follower follower_;
};

http::response no_content() {
    http::response res{http::bhttp::status::no_content, 11};
    res.prepare_payload();
    return res;
}

// Validates the topics and positions, answers 204 when every job topic is already past its end,
// and otherwise hands the connection to a session.
net::awaitable<http::response> open_stream(
    http::request_context& ctx,
    events::hub& hub,
    jobs::engine& engine,
    const stream_options& options,
    events::cursor positions,
    bool multi,
    sse_renderer render = {}
) {
    std::size_t job_topics = 0;
    std::size_t ended = 0;
    for (auto& [topic, after] : positions) {
        auto probe = co_await engine.events(topic, after, 1);
        if (!probe) {
            co_return http::error_response(probe.error());
        }
        if (!store::is_job_topic(topic)) {
            continue;
        }
        ++job_topics;
        auto job = co_await engine.find(topic.substr(4));
        if (job && store::is_terminal(job->state) && probe->empty()) {
            ++ended;
        }
    }
    if (job_topics > 0 && ended == positions.size()) {
        co_return no_content();  // nothing more will come: EventSource stops reconnecting
    }
    ctx.stream = [&hub,
                  &engine,
                  &options,
                  positions = std::move(positions),
                  multi,
                  cors = http::router::cors_head_lines(ctx.allowed_origin),
                  render = std::move(render
                  )](beast::tcp_stream& stream, beast::flat_buffer&) -> net::awaitable<void> {
        sse_session session(stream, hub, engine, options, positions, multi, cors, render);
        co_await session.run();
    };
    co_return http::response{};
}

// The resume position of a single-topic stream: Last-Event-ID wins over ?after=.
result<std::int64_t> single_position(const http::request_context& ctx) {
    const auto last_id = ctx.req["Last-Event-ID"];
    if (!last_id.empty()) {
        return http::parse_non_negative(last_id, "Last-Event-ID");
    }
    if (auto after = ctx.query("after")) {
        return http::parse_non_negative(*after, "after");
    }
    return 0;
}

net::awaitable<http::response> single_topic(
    http::request_context& ctx,
    events::hub& hub,
    jobs::engine& engine,
    const stream_options& options,
    std::string topic
) {
    auto after = single_position(ctx);
    if (!after) {
        co_return http::error_response(after.error());
    }
    events::cursor positions{{std::move(topic), *after}};
    co_return co_await open_stream(ctx, hub, engine, options, std::move(positions), false);
}

}  // namespace

net::awaitable<http::response> render_job_stream(
    http::request_context& ctx,
    events::hub& hub,
    jobs::engine& engine,
    const stream_options& options,
    const std::string& job_id,
    std::int64_t after,
    sse_renderer render
) {
    events::cursor positions{{store::job_topic(job_id), after}};
    co_return co_await open_stream(
        ctx, hub, engine, options, std::move(positions), false, std::move(render)
    );
}

void add_sse_routes(
    http::router& routes, events::hub& hub, jobs::engine& engine, stream_options options
) {
    auto opts = std::make_shared<const stream_options>(options);
    const std::string sse = "text/event-stream";

    routes.add(
        verb::get,
        "/v1/topics/{topic}/events",
        [&hub, &engine, opts](http::request_context& ctx) -> net::awaitable<http::response> {
            if (!store::is_valid_topic(ctx.params[0])) {
                co_return http::error_response(fail(errc::bad_request, "invalid topic name"));
            }
            co_return co_await single_topic(ctx, hub, engine, *opts, ctx.params[0]);
        },
        sse
    );

    routes.add(
        verb::get,
        "/v1/jobs/{id}/events",
        [&hub, &engine, opts](http::request_context& ctx) -> net::awaitable<http::response> {
            auto job = co_await engine.find(ctx.params[0]);
            if (!job) {
                co_return http::error_response(job.error());
            }
            co_return co_await single_topic(ctx, hub, engine, *opts, store::job_topic(job->id));
        },
        sse
    );

    routes.add(
        verb::get,
        "/v1/stream",
        [&hub, &engine, opts](http::request_context& ctx) -> net::awaitable<http::response> {
            const auto list = ctx.query("topics").value_or("");
            events::cursor positions;
            std::size_t start = 0;
            while (start < list.size()) {
                const auto end = std::min(list.find(',', start), list.size());
                const auto topic = list.substr(start, end - start);
                if (!store::is_valid_topic(topic)) {
                    co_return http::error_response(
                        fail(errc::bad_request, "invalid topic name in 'topics'")
                    );
                }
                if (std::none_of(positions.begin(), positions.end(), [&](const auto& p) {
                        return p.first == topic;
                    })) {
                    positions.emplace_back(topic, 0);
                }
                start = end + 1;
            }
            if (positions.empty() || positions.size() > opts->max_topics) {
                co_return http::error_response(fail(
                    errc::bad_request,
                    "'topics' must name 1 to " + std::to_string(opts->max_topics) + " topics"
                ));
            }
            const auto last_id = ctx.req["Last-Event-ID"];
            const std::string resume =
                !last_id.empty() ? std::string(last_id) : ctx.query("cursor").value_or("");
            auto parsed = events::parse_cursor(resume);
            if (!parsed) {
                co_return http::error_response(
                    fail(errc::bad_request, "malformed cursor (expected topic@offset,…)")
                );
            }
            for (const auto& [topic, offset] : *parsed) {
                for (auto& [name, after] : positions) {
                    if (name == topic) {
                        after = offset;
                    }
                }
            }
            co_return co_await open_stream(ctx, hub, engine, *opts, std::move(positions), true);
        },
        sse
    );
}

}  // namespace conclave::stream
