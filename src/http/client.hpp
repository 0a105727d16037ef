// http/client.hpp: a small blocking HTTP/1.1 client for the CLI, tests and load tools.
//
// Not for use inside the server: it blocks its thread. One instance holds one keep-alive
// connection and is not thread-safe; use one per thread. With CONCLAVE_API_KEY set, every
// request carries it as a bearer token (headers passed to request() take precedence).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace conclave::http {

struct client_response {
    int status = 0;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

class client {
public:
    // `base_url` like "http://127.0.0.1:8080" (plain HTTP only).
    explicit client(
        const std::string& base_url, std::chrono::seconds timeout = std::chrono::seconds(30)
    );
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    // Sends one request, reconnecting once if the kept-alive connection was closed.
    // Throws std::runtime_error when the server cannot be reached.
    client_response request(
        const std::string& method,
        const std::string& target,
        const std::string& body = {},
        const std::vector<std::pair<std::string, std::string>>& headers = {}
    );

    client_response get(const std::string& target) { return request("GET", target); }
    client_response post(const std::string& target, const std::string& body) {
        return request("POST", target, body);
    }

    // Sends raw bytes and returns the raw reply up to the first response's end (for tests
    // of malformed requests). Uses a fresh connection.
    std::string raw(const std::string& bytes);

    const std::string& host() const { return host_; }
    const std::string& port() const { return port_; }

private:
    struct impl;
    std::string host_;
    std::string port_;
    std::chrono::seconds timeout_;
    std::unique_ptr<impl> impl_;
};

}  // namespace conclave::http
