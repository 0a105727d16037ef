// tests/support/ws_client.hpp: a blocking WebSocket client for /v1/ws (tests and the CLI-free
// tools). Blocks its thread: never use it inside the server.
//
// One read is always pending while the client waits (in receive() or send()), so messages that
// arrive during a send are kept for the next receive(), and the server's pings are answered.
// Not thread-safe: one client per thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

namespace conclave::test {

class ws_client {
public:
    // Connects to `base_url` (http://HOST:PORT) and upgrades GET `target`. `timeout` bounds the
    // connect + handshake and is receive()'s default. Throws std::runtime_error on failure (its
    // message names the HTTP status of a refused upgrade).
    explicit ws_client(
        const std::string& base_url,
        std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000),
        const std::string& target = "/v1/ws"
    );
    ~ws_client();
    ws_client(const ws_client&) = delete;
    ws_client& operator=(const ws_client&) = delete;

    // Sends one text message (waits until it is written). On a connection that is gone it
    // does nothing: closed() tells.
    void send(const std::string& text);
    void send(const boost::json::object& message);

    // The next message, parsed (throws std::runtime_error if it is not a JSON object);
    // nullopt on timeout or when the connection is closed.
    std::optional<boost::json::object> receive();
    std::optional<boost::json::object> receive(std::chrono::milliseconds timeout);

    // Receives until pred(message) is true, the timeout passes or the connection closes;
    // returns every message received, the matching one (if any) last.
    std::vector<boost::json::object> receive_until(
        const std::function<bool(const boost::json::object&)>& pred,
        std::chrono::milliseconds timeout
    );

    // The connection is gone (closed by the server, failed, or close() was called).
    bool closed() const;
    // The close code the server sent when it closed the connection (e.g. 1009); 0 if none.
    int close_code() const;

    // Abrupt close of the TCP socket, no close handshake (for random-disconnect tests).
    void close();

private:
    struct impl;
    std::chrono::milliseconds timeout_;
    std::unique_ptr<impl> impl_;
};

}  // namespace conclave::test
