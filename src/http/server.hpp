// http/server.hpp: the HTTP/1.1 listener and its connections (Beast, on coroutines).
//
// Each connection runs as one coroutine on its own strand: read a request (with size limits
// and an idle timeout), route it, write the response, repeat while keep-alive holds. Bad
// framing gets its status (400, 413, 431) and the connection closes; nothing a client sends
// can take the server down. Thread-safe: start() and stop() may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/asio.hpp"
#include "http/router.hpp"

namespace conclave::http {

struct server_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;  // 0: any free port (see listen())
    std::size_t max_body_bytes = 1 << 20;
    std::size_t max_header_bytes = 16 << 10;
    std::chrono::seconds idle_timeout{60};
    // Connections at once from one address (0: no limit); loopback is never limited. One more
    // is answered 429 and closed.
    std::size_t max_connections_per_client = 0;
};

class server {
public:
    server(net::io_context& ioc, const router& routes, server_options options);
    ~server();

    // Binds and listens. Returns the bound endpoint (the real port when options.port is 0).
    // Throws on failure (address in use, bad host).
    net::ip::tcp::endpoint listen();
    // Starts accepting connections. REQUIRES: listen() succeeded.
    void start();
    // Stops accepting; open connections finish their current request.
    void stop();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace conclave::http
