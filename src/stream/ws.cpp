#include "stream/ws.hpp"

#include <array>
#include <deque>
#include <sstream>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include "core/wakeup.hpp"
#include "http/json_body.hpp"
#include "jobs/engine.hpp"
#include "stream/follower.hpp"
#include "stream/ws_command.hpp"

namespace conclave::stream {
namespace json = boost::json;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using http::bhttp::verb;
using namespace std::chrono_literals;

namespace {

using ws_stream = websocket::stream<beast::tcp_stream>;

json::object message(std::string_view op) {
    return json::object{{"op", op}};
}

json::object error_message(std::string_view code, std::string_view text) {
    auto m = message("error");
    m["code"] = code;
    m["message"] = text;
    return m;
}

// Writes a follower's output as WebSocket text messages, one per event.
class ws_sink final : public sink {
public:
    explicit ws_sink(ws_stream& ws) : ws_(ws) {}

    const char* transport() const override { return "ws"; }

    void add(const events::frame& f, const events::cursor&) override {
        bodies_.push_back(&f.ws_body);
    }

    net::awaitable<bool> flush() override {
        bool ok = true;
        for (const auto* body : bodies_) {
            if (ok) {
                ok = co_await write_text(*body);
            }
        }
        bodies_.clear();
        co_return ok;
    }

    net::awaitable<bool> control(std::string op, json::object data) override {
        auto m = message(op);
        for (auto& [key, value] : data) {
            m[key] = std::move(value);
        }
        co_return co_await send(m);
    }

    net::awaitable<bool> send(const json::object& m) {
        const auto text = json::serialize(m);
        co_return co_await write_text(text);
    }

private:
    net::awaitable<bool> write_text(const std::string& text) {
        auto [ec, n] =
            co_await ws_.async_write(net::buffer(text), net::as_tuple(net::use_awaitable));
        co_return !ec;
    }

    ws_stream& ws_;
    std::vector<const std::string*> bodies_;
};

// One WebSocket connection. A reader coroutine parses client messages into the inbox; the
// session's own coroutine is the only writer: it runs the commands (so a subscription's replay
// and the live events of other topics never interleave mid-message) and pumps live events.
// Both run on the connection's strand.
class ws_session {
public:
    ws_session(
        beast::tcp_stream stream,
        events::hub& hub,
        jobs::engine& engine,
        const stream_options& options,
        http::caller who
    )
        : ws_(std::move(stream)),
          engine_(engine),
          options_(options),
          who_(std::move(who)),
          out_(ws_),
          follower_(hub, engine, options, out_) {}

    // `handshake`: the upgrade request's bytes, and any that followed it.
    net::awaitable<void> run(std::string handshake) {
        beast::get_lowest_layer(ws_).expires_never();  // the WebSocket's own timeouts rule
        ws_.set_option(websocket::stream_base::timeout{
            .handshake_timeout = 10s,
            .idle_timeout = options_.write_timeout,
            .keep_alive_pings = true,
        });
        // The message limit is enforced by read_loop, which answers 1009 with a proper close
        // handshake. Beast's own limit (kept far above it, for frames that announce a huge
        // length) fails the connection through a teardown that in Boost 1.81 reads one chunk
        // and closes with the client's bytes unread: the reset that follows can destroy the
        // close frame before the client reads its 1009.
        ws_.read_message_max(options_.ws_max_message * 64);
        ws_.text(true);
        auto [ec] =
            co_await ws_.async_accept(net::buffer(handshake), net::as_tuple(net::use_awaitable));
        std::string().swap(handshake);  // this frame lasts as long as the connection
        if (ec) {
            co_return;
        }
        auto exec = co_await net::this_coro::executor;
        net::co_spawn(exec, read_loop(), [this](std::exception_ptr) {
            reader_done_ = true;
            wake().notify_all();
        });
        co_await write_loop();
        auto& tcp = beast::get_lowest_layer(ws_);
        boost::system::error_code ignored;
        if (too_big_) {
            // 1009 through the close handshake (no write is running now: this is the writer):
            // Beast reads and drops the rest of the client's message until its close frame, so
            // nothing is left unread when the socket closes.
            auto reason = websocket::close_reason(websocket::close_code::too_big);
            co_await ws_.async_close(reason, net::as_tuple(net::use_awaitable));
        }
        if (closed_) {
            // The reader saw the end (the client's close, a timeout, a message over the limit,
            // answered with a close frame). Closing now, with bytes of the client's still
            // unread, would send a reset that can destroy our close frame before the client
            // reads it: stop sending, drain briefly, then close.
            co_await wait_for_reader();
            tcp.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
            tcp.expires_after(2s);
            std::array<char, 4096> sink{};
            for (;;) {
                auto [drained, n] = co_await tcp.async_read_some(
                    net::buffer(sink), net::as_tuple(net::use_awaitable)
                );
                if (drained) {
                    break;
                }
            }
        }
        // Stop the reader (its read fails once the socket is closed) and wait for it: it uses
        // this session.
        tcp.socket().close(ignored);
        co_await wait_for_reader();
    }

private:
    net::awaitable<void> wait_for_reader() {
        while (!reader_done_) {
            const auto seen = wake().generation();
            if (reader_done_) {
                break;
            }
            co_await wake().wait(seen, 100ms);
        }
    }

    wakeup& wake() { return follower_.queue().wake(); }

    net::awaitable<void> read_loop() {
        for (;;) {
            beast::flat_buffer buffer;
            bool too_big = false;
            boost::system::error_code ec;
            // One message, piece by piece, so one over the limit is caught before it is all
            // buffered.
            do {
                auto [read_ec, n] = co_await ws_.async_read_some(
                    buffer, 16 * 1024, net::as_tuple(net::use_awaitable)
                );
                ec = read_ec;
                too_big = !ec && buffer.size() > options_.ws_max_message;
            } while (!ec && !too_big && !ws_.is_message_done());
            if (too_big) {
                too_big_ = true;  // run() closes with 1009 once the writer has stopped
                break;
            }
            if (ec) {
                // Closed by the client or a timeout: the session ends.
                if (ec == beast::error::timeout) {
                    count_stream_timeout("ws");
                }
                break;
            }
            inbox_.push_back(beast::buffers_to_string(buffer.data()));
            wake().notify_all();
        }
        closed_ = true;
    }

    net::awaitable<void> write_loop() {
        while (!closed_) {
            const auto seen = wake().generation();
            while (!inbox_.empty()) {
                auto text = std::move(inbox_.front());
                inbox_.pop_front();
                if (!co_await handle(text)) {
                    co_return;
                }
                drop_ended();
            }
            bool sent = false;
            if (!co_await follower_.pump(sent)) {
                co_return;
            }
            drop_ended();
            if (!sent && inbox_.empty() && !closed_) {
                co_await wake().wait(seen, 1s);
            }
        }
    }

    // A job topic that sent its `end` is dropped at once, so it no longer counts against the
    // limit and the next message may subscribe to it again.
    void drop_ended() {
        while (!follower_.ended().empty()) {
            follower_.unfollow(*follower_.ended().begin());
        }
    }

    // Runs one client message. false: the connection is gone.
    net::awaitable<bool> handle(const std::string& text) {
        const auto parsed = parse_ws_message(text);
        json::object reply;
        if (parsed.command) {
            reply = co_await run_command(*parsed.command);
        } else {
            reply = error_message(parsed.command.error().code, parsed.command.error().message);
        }
        if (parsed.id) {
            reply["id"] = *parsed.id;
        }
        if (!co_await out_.send(reply)) {
            co_return false;
        }
        if (reply["op"] == "subscribed") {
            // The reply goes first; then the replay and, for a job already over, its end.
            co_return co_await follower_.follow(parsed.command->topic, after_);
        }
        co_return true;
    }

    // Runs a command parse_ws_message accepted: what depends on the connection and the store.
    net::awaitable<json::object> run_command(const ws_command& cmd) {
        if (cmd.op == ws_op::ping) {
            co_return message("pong");
        }
        const std::string& topic = cmd.topic;
        if (cmd.op == ws_op::unsubscribe) {
            if (!follower_.follows(topic)) {
                co_return error_message("not_subscribed", "not subscribed to " + topic);
            }
            follower_.unfollow(topic);
            auto m = message("unsubscribed");
            m["topic"] = topic;
            co_return m;
        }
        after_ = cmd.after;
        const bool from_now = cmd.from_now;
        const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch()
        )
                               .count();
        if (auto refused = who_.may_read(topic, now_s)) {
            co_return error_message(to_string(refused->code), refused->message);
        }
        if (follower_.follows(topic)) {
            co_return error_message("conflict", "already subscribed to " + topic);
        }
        if (follower_.positions().size() >= options_.max_topics) {
            co_return error_message(
                "too_many_subscriptions",
                "at most " + std::to_string(options_.max_topics) +
                    " subscriptions per connection; unsubscribe first"
            );
        }
        if (from_now) {
            // Only what is appended from now on (a live list): the topic need not exist yet.
            after_ = co_await engine_.last_offset(topic);
        } else {
            auto probe = co_await engine_.events(topic, after_, 1);
            if (!probe) {
                co_return error_message(to_string(probe.error().code), probe.error().message);
            }
        }
        auto m = message("subscribed");
        m["topic"] = topic;
        m["after"] = after_;
        co_return m;
    }

    ws_stream ws_;
    jobs::engine& engine_;
    const stream_options& options_;
    bool too_big_ = false;  // the reader saw a message over ws_max_message
    http::caller who_;  // a subscribe token's caller may follow only its topics, until it expires
    ws_sink out_;
    follower follower_;
    std::deque<std::string> inbox_;
    std::int64_t after_ = 0;  // of the subscription run_command just accepted
    bool closed_ = false;
    bool reader_done_ = false;
};

// The upgrade request as received, then whatever the client sent after it.
std::string upgrade_bytes(const http::request& req, const beast::flat_buffer& pending) {
    std::ostringstream raw;
    raw << req;
    std::string bytes = std::move(raw).str();
    bytes.append(static_cast<const char*>(pending.data().data()), pending.size());
    return bytes;
}

}  // namespace

void add_ws_route(
    http::router& routes, events::hub& hub, jobs::engine& engine, stream_options options
) {
    auto opts = std::make_shared<const stream_options>(options);
    routes.add(
        verb::get,
        "/v1/ws",
        [&hub, &engine, opts](http::request_context& ctx) -> net::awaitable<http::response> {
            if (!websocket::is_upgrade(ctx.req)) {
                co_return http::error_response(fail(
                    errc::bad_request, "GET /v1/ws is a WebSocket endpoint: send an upgrade request"
                ));
            }
            ctx.stream = [&hub, &engine, opts, req = ctx.req, who = ctx.who](
                             beast::tcp_stream& stream, beast::flat_buffer& pending
                         ) mutable -> net::awaitable<void> {
                // The handshake is answered from the request as received, followed by whatever
                // the client already sent after it. Neither the request nor the server's read
                // buffer is needed after that: they are let go rather than held for as long as
                // the connection lasts (idle connections are counted in KiB).
                auto bytes = upgrade_bytes(std::exchange(req, {}), pending);
                pending.clear();
                pending.shrink_to_fit();
                ws_session session(std::move(stream), hub, engine, *opts, who);
                co_await session.run(std::move(bytes));
            };
            co_return http::response{};
        }
    );
}

}  // namespace conclave::stream
