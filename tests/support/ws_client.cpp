#include "support/ws_client.hpp"

#include <algorithm>
#include <deque>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace conclave::test {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using clock_type = std::chrono::steady_clock;

struct ws_client::impl {
    // Declared first, destroyed last: the stream's pending operations belong to it.
    asio::io_context ioc;
    websocket::stream<beast::tcp_stream> ws{ioc};
    beast::flat_buffer buffer;
    std::deque<std::string> inbox;
    bool reading = false;
    bool closed = false;
    int close_code = 0;

    ~impl() { abort(); }

    // Keeps one read pending: what arrives waits in `inbox`.
    void start_read() {
        if (reading || closed) {
            return;
        }
        reading = true;
        ws.async_read(buffer, [this](error_code ec, std::size_t) {
            reading = false;
            if (ec) {
                fail();
                return;
            }
            inbox.push_back(beast::buffers_to_string(buffer.data()));
            buffer.consume(buffer.size());
            start_read();
        });
    }

    void fail() {
        if (closed) {
            return;
        }
        closed = true;
        // Set when the server's close frame was read (e.g. 1009 for a message too big).
        close_code = static_cast<int>(ws.reason().code);
        error_code ignored;
        beast::get_lowest_layer(ws).socket().close(ignored);
    }

    // Closes the socket and lets the pending operations finish (with operation_aborted).
    void abort() {
        closed = true;
        error_code ignored;
        beast::get_lowest_layer(ws).socket().close(ignored);
        ioc.restart();
        ioc.run_for(std::chrono::seconds(1));
    }

    // Runs handlers until done() or the deadline; returns done().
    template <class Done>
    bool run_until(const Done& done, clock_type::time_point deadline) {
        while (!done()) {
            if (ioc.stopped()) {
                ioc.restart();
            }
            if (ioc.run_one_until(deadline) == 0) {
                break;  // the deadline passed, or nothing is left to run
            }
        }
        return done();
    }
};

ws_client::ws_client(
    const std::string& base_url, std::chrono::milliseconds timeout, const std::string& target
)
    : timeout_(timeout), impl_(std::make_unique<impl>()) {
    const auto scheme_end = base_url.find("://");
    const auto host_start = scheme_end == std::string::npos ? 0 : scheme_end + 3;
    const auto colon = base_url.rfind(':');
    if (base_url.rfind("http://", 0) != 0 || colon == std::string::npos || colon < host_start) {
        throw std::invalid_argument(
            "server URL must look like http://HOST:PORT, not '" + base_url + "'"
        );
    }
    const std::string host = base_url.substr(host_start, colon - host_start);
    std::string port = base_url.substr(colon + 1);
    if (const auto slash = port.find('/'); slash != std::string::npos) {
        port.resize(slash);
    }
    const auto deadline = clock_type::now() + timeout;
    auto& ws = impl_->ws;

    error_code ec;
    tcp::resolver resolver(impl_->ioc);
    const auto endpoints = resolver.resolve(host, port, ec);
    if (ec) {
        throw std::runtime_error("cannot resolve " + base_url + ": " + ec.message());
    }
    bool done = false;
    beast::get_lowest_layer(ws).async_connect(endpoints, [&](error_code e, const tcp::endpoint&) {
        ec = e;
        done = true;
    });
    if (!impl_->run_until([&] { return done; }, deadline) || ec) {
        impl_->abort();
        throw std::runtime_error(
            "cannot reach conclave at " + base_url + ": " +
            (done ? ec.message() : std::string("timed out"))
        );
    }
    beast::get_lowest_layer(ws).socket().set_option(tcp::no_delay(true), ec);

    ws.read_message_max(std::size_t{1} << 30);
    ws.text(true);
    websocket::response_type res;
    done = false;
    ws.async_handshake(res, host + ":" + port, target, [&](error_code e) {
        ec = e;
        done = true;
    });
    if (!impl_->run_until([&] { return done; }, deadline) || ec) {
        impl_->abort();
        std::string why = done ? ec.message() : "timed out";
        if (res.result_int() != 0) {
            why += " (HTTP " + std::to_string(res.result_int()) + " " + res.body() + ")";
        }
        throw std::runtime_error("WebSocket handshake with " + base_url + " failed: " + why);
    }
    impl_->start_read();
}

ws_client::~ws_client() = default;

void ws_client::send(const std::string& text) {
    if (impl_->closed) {
        return;
    }
    impl_->start_read();  // so a close frame or a ping is seen while writing
    bool done = false;
    impl_->ws.async_write(asio::buffer(text), [&](error_code ec, std::size_t) {
        done = true;
        // A write that fails because the server closed (say, 1009 for a message too big) can
        // complete before the pending read has taken in the close frame; closing here would
        // lose its code. The read ends the connection itself, with the code.
        if (ec && !impl_->reading) {
            impl_->fail();
        }
    });
    if (!impl_->run_until([&] { return done; }, clock_type::now() + timeout_)) {
        impl_->abort();  // completes the write (aborted) before `text` and `done` go away
        throw std::runtime_error("WebSocket send timed out");
    }
}

void ws_client::send(const json::object& message) {
    send(json::serialize(message));
}

std::optional<json::object> ws_client::receive() {
    return receive(timeout_);
}

std::optional<json::object> ws_client::receive(std::chrono::milliseconds timeout) {
    auto& self = *impl_;
    if (self.inbox.empty() && !self.closed) {
        self.start_read();
        self.run_until(
            [&] { return !self.inbox.empty() || self.closed; }, clock_type::now() + timeout
        );
    }
    if (self.inbox.empty()) {
        return std::nullopt;
    }
    const auto text = std::move(self.inbox.front());
    self.inbox.pop_front();
    error_code ec;
    auto value = json::parse(text, ec);
    if (ec || !value.is_object()) {
        throw std::runtime_error("the server sent a message that is not a JSON object: " + text);
    }
    return std::move(value.get_object());
}

std::vector<json::object> ws_client::receive_until(
    const std::function<bool(const json::object&)>& pred, std::chrono::milliseconds timeout
) {
    const auto deadline = clock_type::now() + timeout;
    std::vector<json::object> out;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        auto m = receive(std::max(left, std::chrono::milliseconds(0)));
        if (!m) {
            return out;
        }
        out.push_back(std::move(*m));
        if (pred(out.back())) {
            return out;
        }
    }
}

bool ws_client::closed() const {
    return impl_->closed;
}

int ws_client::close_code() const {
    return impl_->close_code;
}

void ws_client::close() {
    impl_->abort();
}

}  // namespace conclave::test
