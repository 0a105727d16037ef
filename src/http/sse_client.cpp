#include "http/sse_client.hpp"

#include <cstdlib>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace conclave::http {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

sse_result read_sse(const std::string& base_url, const sse_request& request) {
    const auto host_start = base_url.find("//") + 2;
    const auto colon = base_url.rfind(':');
    const std::string host = base_url.substr(host_start, colon - host_start);
    const std::string port = base_url.substr(colon + 1);
    asio::io_context ioc;
    tcp::socket socket(ioc);
    tcp::resolver resolver(ioc);
    boost::system::error_code connect_error;
    asio::connect(socket, resolver.resolve(host, port, connect_error), connect_error);
    if (connect_error) {
        throw std::runtime_error(
            "cannot reach conclave at " + base_url + ": " + connect_error.message()
        );
    }
    std::string req = request.method + " " + request.target + " HTTP/1.1\r\nHost: " + host +
                      "\r\nAccept: text/event-stream\r\n";
    if (const char* key = std::getenv("CONCLAVE_API_KEY"); key != nullptr && *key != 0) {
        req += std::string("Authorization: Bearer ") + key + "\r\n";
    }
    if (!request.last_event_id.empty()) {
        req += "Last-Event-ID: " + request.last_event_id + "\r\n";
    }
    if (!request.body.empty()) {
        req += "Content-Type: application/json\r\nContent-Length: " +
               std::to_string(request.body.size()) + "\r\n";
    }
    req += "\r\n" + request.body;
    asio::write(socket, asio::buffer(req));

    sse_result out;
    std::string buffer;
    bool headers_done = false;
    std::size_t body_bytes = 0;
    sse_event current;
    bool has_field = false;
    const auto deadline = std::chrono::steady_clock::now() + request.timeout;
    char chunk[4096];
    for (;;) {
        if (std::chrono::steady_clock::now() > deadline) {
            return out;
        }
        socket.non_blocking(true);
        boost::system::error_code ec;
        std::size_t n = socket.read_some(asio::buffer(chunk), ec);
        if (ec == asio::error::would_block) {
            socket.non_blocking(false);
            socket.wait(tcp::socket::wait_read, ec);  // bounded by the server's heartbeat
            continue;
        }
        if (ec) {
            out.closed_by_server = true;
            return out;
        }
        if (headers_done && body_bytes + n > request.max_bytes) {
            n = request.max_bytes - body_bytes;  // drop the connection mid-event
            buffer.append(chunk, n);
            body_bytes += n;
        } else {
            buffer.append(chunk, n);
            if (headers_done) {
                body_bytes += n;
            }
        }
        if (!headers_done) {
            const auto end = buffer.find("\r\n\r\n");
            if (end == std::string::npos) {
                continue;
            }
            out.status = std::stoi(buffer.substr(9, 3));
            body_bytes = buffer.size() - (end + 4);
            buffer.erase(0, end + 4);
            headers_done = true;
            if (out.status != 200) {
                return out;
            }
        }
        std::size_t line_end;
        while ((line_end = buffer.find('\n')) != std::string::npos) {
            const std::string line = buffer.substr(0, line_end);
            buffer.erase(0, line_end + 1);
            if (line.empty()) {
                if (has_field) {
                    if (current.type.empty()) {
                        current.type = "message";
                    }
                    out.events.push_back(current);
                    const bool go_on = !request.on_event || request.on_event(current);
                    current = {};
                    has_field = false;
                    if (!go_on || out.events.size() >= request.max_events) {
                        return out;
                    }
                }
                continue;
            }
            if (line[0] == ':') {
                out.comments.push_back(line);
                continue;
            }
            const auto sep = line.find(':');
            const std::string field = line.substr(0, sep);
            std::string value = sep == std::string::npos ? "" : line.substr(sep + 1);
            if (!value.empty() && value[0] == ' ') {
                value.erase(0, 1);
            }
            if (field == "id") {
                current.id = value;
                has_field = true;
            } else if (field == "event") {
                current.type = value;
                has_field = true;
            } else if (field == "data") {
                current.data += value;
                has_field = true;
            }
        }
        if (body_bytes >= request.max_bytes) {
            return out;  // partial event discarded, as a browser would
        }
    }
}

}  // namespace conclave::http
