#include "http/client.hpp"

#include <cstdlib>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>

#include "core/asio.hpp"

namespace conclave::http {
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

struct client::impl {
    net::io_context ioc;
    std::optional<beast::tcp_stream> stream;
    beast::flat_buffer buffer;
};

client::client(const std::string& base_url, std::chrono::seconds timeout)
    : timeout_(timeout), impl_(std::make_unique<impl>()) {
    auto url = boost::urls::parse_uri(base_url);
    if (!url || url->scheme() != "http" || url->host().empty()) {
        throw std::invalid_argument(
            "server URL must look like http://HOST:PORT, not '" + base_url + "'"
        );
    }
    host_ = std::string(url->host());
    port_ = url->has_port() ? std::string(url->port()) : "80";
}

client::~client() = default;

client_response client::request(
    const std::string& method,
    const std::string& target,
    const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers
) {
    for (int attempt = 0;; ++attempt) {
        const bool reused = impl_->stream.has_value();
        try {
            if (!impl_->stream) {
                tcp::resolver resolver(impl_->ioc);
                impl_->stream.emplace(impl_->ioc);
                impl_->stream->expires_after(timeout_);
                impl_->stream->connect(resolver.resolve(host_, port_));
                impl_->buffer.clear();
            }
            bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
            req.set(bhttp::field::host, host_ + ":" + port_);
            req.set(bhttp::field::user_agent, "conclave-cli");
            if (const char* key = std::getenv("CONCLAVE_API_KEY"); key != nullptr && *key != 0) {
                req.set(bhttp::field::authorization, std::string("Bearer ") + key);
            }
            if (!body.empty()) {
                req.set(bhttp::field::content_type, "application/json");
            }
            for (const auto& [name, value] : headers) {
                req.set(name, value);
            }
            req.body() = body;
            req.prepare_payload();
            impl_->stream->expires_after(timeout_);
            bhttp::write(*impl_->stream, req);
            bhttp::response_parser<bhttp::string_body> parser;
            parser.body_limit(1ULL << 30);
            // A response to HEAD announces a body it does not carry.
            parser.skip(req.method() == bhttp::verb::head);
            bhttp::read(*impl_->stream, impl_->buffer, parser);
            auto res = parser.release();
            client_response out;
            out.status = static_cast<int>(res.result_int());
            out.body = std::move(res.body());
            for (const auto& field : res) {
                out.headers.emplace_back(
                    std::string(field.name_string()), std::string(field.value())
                );
            }
            if (!res.keep_alive()) {
                impl_->stream.reset();
            }
            return out;
        } catch (const boost::system::system_error& e) {
            impl_->stream.reset();
            if (!reused || attempt > 0) {
                throw std::runtime_error(
                    "cannot reach conclave at http://" + host_ + ":" + port_ + ": " +
                    e.code().message()
                );
            }
        }
    }
}

std::string client::raw(const std::string& bytes) {
    tcp::resolver resolver(impl_->ioc);
    beast::tcp_stream stream(impl_->ioc);
    stream.expires_after(timeout_);
    stream.connect(resolver.resolve(host_, port_));
    net::write(stream, net::buffer(bytes));
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    boost::system::error_code ec;
    bhttp::read(stream, buffer, parser, ec);
    if (ec) {
        return "";
    }
    const auto& res = parser.get();
    return std::to_string(res.result_int()) + "\n" + res.body();
}

}  // namespace conclave::http
