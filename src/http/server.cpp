#include "http/server.hpp"

#include <array>
#include <map>
#include <mutex>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "core/logging.hpp"
#include "http/observability.hpp"

namespace conclave::http {
namespace beast = boost::beast;
using tcp = net::ip::tcp;

namespace {

// Writes `res` and reports whether the connection may carry another request.
net::awaitable<bool> send(
    beast::tcp_stream& stream, response res, bool keep_alive, std::chrono::seconds timeout
) {
    res.keep_alive(keep_alive);
    res.set(bhttp::field::server, "conclave");
    stream.expires_after(timeout);
    auto [ec, n] = co_await bhttp::async_write(stream, res, net::as_tuple(net::use_awaitable));
    co_return !ec && keep_alive;
}

// After an error response on a connection we will not read from again: stop sending, then
// read and drop what the client is still sending (briefly), so that it sees our response
// instead of a connection reset.
net::awaitable<void> linger_close(beast::tcp_stream& stream) {
    constexpr std::size_t max_drain_bytes = 8 << 20;
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    std::array<char, 16 << 10> sink;
    std::size_t drained = 0;
    stream.expires_after(std::chrono::seconds(2));
    while (drained < max_drain_bytes) {
        auto [ec, n] =
            co_await stream.async_read_some(net::buffer(sink), net::as_tuple(net::use_awaitable));
        if (ec) {
            break;
        }
        drained += n;
    }
}

// What to answer when reading a request failed: an error to send before closing, or nothing
// when the peer went away (EOF, reset, idle timeout, shutdown).
std::optional<error> read_failure(boost::system::error_code ec, std::size_t max_body_bytes) {
    if (ec == bhttp::error::header_limit) {
        return fail(errc::header_too_large, "request headers are too large");
    }
    if (ec == bhttp::error::body_limit) {
        return fail(
            errc::payload_too_large,
            "request body is larger than " + std::to_string(max_body_bytes) + " bytes"
        );
    }
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::error::eof ||
        ec == net::error::operation_aborted || ec == bhttp::error::partial_message) {
        return std::nullopt;
    }
    return fail(errc::bad_request, "malformed HTTP request: " + ec.message());
}

// Reads one request: headers first (so an oversized Content-Length is refused before its body
// arrives), then `100 Continue` if asked, then the body.
net::awaitable<boost::system::error_code> read_request(
    beast::tcp_stream& stream,
    beast::flat_buffer& buffer,
    bhttp::request_parser<bhttp::string_body>& parser,
    std::chrono::seconds timeout
) {
    stream.expires_after(timeout);
    auto [ec, n] = co_await bhttp::async_read_header(
        stream, buffer, parser, net::as_tuple(net::use_awaitable)
    );
    if (ec) {
        co_return ec;
    }
    if (parser.get()[bhttp::field::expect] == "100-continue") {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
        stream.expires_after(timeout);
        auto [cec, cn] =
            co_await bhttp::async_write(stream, cont, net::as_tuple(net::use_awaitable));
        if (cec) {
            co_return cec;
        }
    }
    stream.expires_after(timeout);
    auto [bec, bn] =
        co_await bhttp::async_read(stream, buffer, parser, net::as_tuple(net::use_awaitable));
    co_return bec;
}

net::awaitable<void> run_session(
    beast::tcp_stream stream, const router& routes, server_options options
) {
    const connection_scope counted;
    beast::flat_buffer buffer;
    for (;;) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.body_limit(options.max_body_bytes);
        parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
        const auto ec = co_await read_request(stream, buffer, parser, options.idle_timeout);
        const auto started = std::chrono::steady_clock::now();
        if (ec) {
            const auto failure = read_failure(ec, options.max_body_bytes);
            if (failure) {
                response res = error_response(*failure);
                res.set(request_id_header, assign_request_id(parser.get()));
                record_request(parser.get(), "unmatched", res.result_int(), started);
                co_await send(stream, std::move(res), false, options.idle_timeout);
                co_await linger_close(stream);
                co_return;
            }
            break;
        }
        request req = parser.release();
        const auto id = assign_request_id(req);
        const bool keep_alive = req.keep_alive();
        routed reply = co_await routes.handle(req);
        if (reply.stream) {
            // The handler streams its own response; the connection ends with it.
            const bool upgrade = !req[bhttp::field::upgrade].empty();
            record_request(req, reply.route, upgrade ? 101 : reply.res.result_int(), started);
            req = {};  // not needed while the stream lasts (the handler kept what it needs)
            stream.expires_never();
            co_await reply.stream(stream, buffer);
            break;
        }
        reply.res.version(req.version());
        reply.res.set(request_id_header, id);
        const auto status = reply.res.result_int();
        const bool again =
            co_await send(stream, std::move(reply.res), keep_alive, options.idle_timeout);
        record_request(req, reply.route, status, started);
        if (!again) {
            break;
        }
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace

struct server::impl : std::enable_shared_from_this<impl> {
    impl(net::io_context& context, const router& r, server_options o)
        : ioc(context), routes(r), options(std::move(o)), acceptor(net::make_strand(context)) {}

    // Counts a new connection from `address`; false when that address is at its limit.
    bool admit(const net::ip::address& address) {
        if (options.max_connections_per_client == 0 || address.is_loopback()) {
            return true;
        }
        std::lock_guard lock(clients_mutex);
        auto& count = clients[address];
        if (count >= options.max_connections_per_client) {
            return false;
        }
        ++count;
        return true;
    }

    void release(const net::ip::address& address) {
        if (options.max_connections_per_client == 0 || address.is_loopback()) {
            return;
        }
        std::lock_guard lock(clients_mutex);
        auto it = clients.find(address);
        if (it != clients.end() && --it->second == 0) {
            clients.erase(it);
        }
    }

    net::awaitable<void> accept_loop() {
        auto self = shared_from_this();
        for (;;) {
            auto strand = net::make_strand(ioc);
            auto [ec, socket] =
                co_await acceptor.async_accept(strand, net::as_tuple(net::use_awaitable));
            if (ec == net::error::operation_aborted || !acceptor.is_open()) {
                break;
            }
            if (ec) {
                logger("http")->warn("accept: {}", ec.message());
                continue;
            }
            auto executor = socket.get_executor();
            boost::system::error_code peer_ec;
            const auto peer = socket.remote_endpoint(peer_ec).address();
            if (!peer_ec && !admit(peer)) {
                count_refused("too_many_connections");
                logger("http")->warn(
                    "refused a connection from {}: at its limit", peer.to_string()
                );
                auto refuse = [stream = beast::tcp_stream(std::move(socket)), this, peer](
                              ) mutable -> net::awaitable<void> {
                    auto res = error_response(fail(
                        errc::rate_limited,
                        "too many connections from " + peer.to_string() + " (at most " +
                            std::to_string(options.max_connections_per_client) + ")"
                    ));
                    res.set(bhttp::field::retry_after, "1");
                    co_await send(stream, std::move(res), false, std::chrono::seconds(5));
                    co_await linger_close(stream);
                };
                net::co_spawn(executor, std::move(refuse), net::detached);
                continue;
            }
            auto session = [stream = beast::tcp_stream(std::move(socket)),
                            self,
                            peer,
                            counted = !peer_ec]() mutable -> net::awaitable<void> {
                struct release_on_exit {
                    impl& owner;
                    net::ip::address address;
                    bool counted;
                    ~release_on_exit() {
                        if (counted) {
                            owner.release(address);
                        }
                    }
                } guard{*self, peer, counted};
                co_await run_session(std::move(stream), self->routes, self->options);
            };
            net::co_spawn(executor, std::move(session), [](std::exception_ptr e) {
                if (!e) {
                    return;
                }
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    logger("http")->error("connection ended by: {}", ex.what());
                }
            });
        }
    }

    net::io_context& ioc;
    const router& routes;
    server_options options;
    tcp::acceptor acceptor;
    std::mutex clients_mutex;
    std::map<net::ip::address, std::size_t> clients;  // open connections per limited address
};

server::server(net::io_context& ioc, const router& routes, server_options options)
    : impl_(std::make_shared<impl>(ioc, routes, std::move(options))) {}

server::~server() {
    stop();
}

tcp::endpoint server::listen() {
    const tcp::endpoint endpoint{net::ip::make_address(impl_->options.host), impl_->options.port};
    auto& acceptor = impl_->acceptor;
    acceptor.open(endpoint.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(net::socket_base::max_listen_connections);
    return acceptor.local_endpoint();
}

void server::start() {
    auto self = impl_;
    net::co_spawn(
        impl_->acceptor.get_executor(), [self] { return self->accept_loop(); }, net::detached
    );
}

void server::stop() {
    auto self = impl_;
    net::post(impl_->acceptor.get_executor(), [self] {
        boost::system::error_code ignored;
        self->acceptor.close(ignored);
    });
}

}  // namespace conclave::http
