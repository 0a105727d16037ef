#include "llm/openai_client.hpp"

#include <array>
#include <mutex>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include "core/wakeup.hpp"
#include "llm/openai_wire.hpp"
#include "llm/sse_decoder.hpp"

namespace conclave::llm {
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;

namespace {

constexpr std::size_t max_error_body = 64 * 1024;

// What one HTTP exchange gave: a completion, or an error and whether to try again.
struct attempt {
    std::optional<error> failure;
    bool retryable = false;
    std::optional<milliseconds> retry_after;
};

attempt failed(errc code, std::string message, bool retryable) {
    return attempt{error{code, std::move(message)}, retryable, std::nullopt};
}

std::string describe(const boost::system::error_code& ec) {
    return ec == beast::error::timeout ? std::string("timed out") : ec.message();
}

}  // namespace

struct openai_provider::impl {
    openai_options options;
    bool tls = false;
    std::string host;
    std::string port;
    std::string path;  // the base URL's path, without a trailing '/'
    net::ssl::context ssl{net::ssl::context::tls_client};
    std::mutex mutex;
    int running = 0;
    wakeup slot_freed;

    // Streams one exchange over `stream` (plain or TLS); fills `out`.
    template <class Stream>
    net::awaitable<attempt> exchange(
        Stream& stream, const std::string& body, const delta_sink& sink, completion& out
    ) {
        auto& lowest = beast::get_lowest_layer(stream);
        bhttp::request<bhttp::string_body> req{bhttp::verb::post, path + "/chat/completions", 11};
        req.set(bhttp::field::host, host);
        req.set(bhttp::field::user_agent, "conclave");
        req.set(bhttp::field::content_type, "application/json");
        req.set(bhttp::field::accept, "text/event-stream");
        if (!options.api_key.empty()) {
            req.set(bhttp::field::authorization, "Bearer " + options.api_key);
        }
        req.body() = body;
        req.prepare_payload();
        lowest.expires_after(options.connect_timeout);
        auto [wec, wn] =
            co_await bhttp::async_write(stream, req, net::as_tuple(net::use_awaitable));
        if (wec) {
            co_return failed(errc::unavailable, "cannot send the request: " + describe(wec), true);
        }
        beast::flat_buffer buffer;
        bhttp::response_parser<bhttp::buffer_body> parser;
        parser.body_limit(boost::none);
        lowest.expires_after(options.first_token_timeout);
        auto [hec, hn] = co_await bhttp::async_read_header(
            stream, buffer, parser, net::as_tuple(net::use_awaitable)
        );
        if (hec) {
            co_return failed(errc::unavailable, "no response: " + describe(hec), true);
        }
        const int status = static_cast<int>(parser.get().result_int());
        std::array<char, 16 * 1024> chunk{};
        if (status != 200) {
            std::string text;
            while (!parser.is_done() && text.size() < max_error_body) {
                parser.get().body().data = chunk.data();
                parser.get().body().size = chunk.size();
                auto [ec, n] = co_await bhttp::async_read(
                    stream, buffer, parser, net::as_tuple(net::use_awaitable)
                );
                text.append(chunk.data(), chunk.size() - parser.get().body().size);
                if (ec && ec != bhttp::error::need_buffer) {
                    break;
                }
            }
            const auto message =
                "HTTP " + std::to_string(status) + ": " + error_message(status, text);
            attempt a;
            a.retryable = status == 408 || status == 429 || status >= 500;
            a.failure = error{
                status == 401 || status == 403 ? errc::unauthorized
                : a.retryable                  ? errc::unavailable
                                               : errc::bad_request,
                message};
            const auto retry_after = parser.get()[bhttp::field::retry_after];
            if (!retry_after.empty()) {
                try {
                    a.retry_after = milliseconds(
                        static_cast<std::int64_t>(std::stod(std::string(retry_after)) * 1000)
                    );
                } catch (const std::exception&) {
                    // an HTTP date: fall back to our own backoff
                }
            }
            co_return a;
        }
        sse_decoder decoder;
        std::vector<std::string> payloads;
        bool done = false;
        bool streamed = false;
        while (!done && !parser.is_done()) {
            parser.get().body().data = chunk.data();
            parser.get().body().size = chunk.size();
            lowest.expires_after(streamed ? options.idle_timeout : options.first_token_timeout);
            // read_some, not read: read fills the whole buffer before returning, which held
            // tokens back for hundreds of milliseconds (found by bench/council_bench).
            auto [ec, n] = co_await bhttp::async_read_some(
                stream, buffer, parser, net::as_tuple(net::use_awaitable)
            );
            const std::size_t got = chunk.size() - parser.get().body().size;
            payloads.clear();
            const bool fits =
                decoder.feed(std::string_view(chunk.data(), got), [&](std::string_view data) {
                    payloads.emplace_back(data);
                });
            if (!fits) {
                co_return failed(errc::internal, "malformed stream: an overlong line", false);
            }
            // The text of every chunk this read brought goes to the sink in one piece: under
            // load one read holds many chunks, and each sink call costs a coalescer hop.
            std::string text;
            for (const auto& data : payloads) {
                auto c = parse_chunk(data);
                if (!c) {
                    co_return failed(
                        errc::internal, "malformed stream chunk: " + data.substr(0, 200), false
                    );
                }
                if (c->error) {
                    co_return failed(errc::unavailable, *c->error, !streamed);
                }
                if (c->done) {
                    done = true;
                    break;
                }
                if (c->usage) {
                    out.usage = *c->usage;
                }
                if (!c->finish_reason.empty()) {
                    out.finish_reason = c->finish_reason;
                }
                if (!c->content.empty()) {
                    streamed = true;
                    out.text += c->content;
                    text += c->content;
                }
            }
            if (!text.empty()) {
                co_await sink(std::move(text));
            }
            if (ec && ec != bhttp::error::need_buffer) {
                if (done) {
                    break;
                }
                co_return failed(
                    errc::unavailable,
                    "the stream broke after " + std::to_string(out.text.size()) +
                        " bytes: " + describe(ec),
                    !streamed
                );
            }
        }
        if (!done && out.finish_reason.empty()) {
            co_return failed(errc::unavailable, "the stream ended before [DONE]", !streamed);
        }
        co_return attempt{};
    }

    net::awaitable<attempt> once(const std::string& body, const delta_sink& sink, completion& out) {
        const auto exec = co_await net::this_coro::executor;
        tcp::resolver resolver(exec);
        auto [rec, endpoints] =
            co_await resolver.async_resolve(host, port, net::as_tuple(net::use_awaitable));
        if (rec) {
            co_return failed(
                errc::unavailable, "cannot resolve " + host + ": " + rec.message(), true
            );
        }
        if (tls) {
            beast::ssl_stream<beast::tcp_stream> stream(exec, ssl);
            // SNI (SSL_set_tlsext_host_name without its C cast).
            if (SSL_ctrl(
                    stream.native_handle(),
                    SSL_CTRL_SET_TLSEXT_HOSTNAME,
                    TLSEXT_NAMETYPE_host_name,
                    const_cast<char*>(host.c_str())
                ) != 1) {
                co_return failed(errc::unavailable, "cannot set the TLS server name", false);
            }
            stream.set_verify_mode(net::ssl::verify_peer);
            stream.set_verify_callback(net::ssl::host_name_verification(host));
            beast::get_lowest_layer(stream).expires_after(options.connect_timeout);
            auto [cec, ep] = co_await beast::get_lowest_layer(stream).async_connect(
                endpoints, net::as_tuple(net::use_awaitable)
            );
            if (cec) {
                co_return failed(
                    errc::unavailable, "cannot connect to " + host + ": " + describe(cec), true
                );
            }
            auto [hec] = co_await stream.async_handshake(
                net::ssl::stream_base::client, net::as_tuple(net::use_awaitable)
            );
            if (hec) {
                co_return failed(
                    errc::unavailable,
                    "TLS handshake with " + host + " failed: " + hec.message(),
                    false
                );
            }
            co_return co_await exchange(stream, body, sink, out);
        }
        beast::tcp_stream stream(exec);
        stream.expires_after(options.connect_timeout);
        auto [cec, ep] =
            co_await stream.async_connect(endpoints, net::as_tuple(net::use_awaitable));
        if (cec) {
            co_return failed(
                errc::unavailable,
                "cannot connect to " + host + ":" + port + ": " + describe(cec),
                true
            );
        }
        co_return co_await exchange(stream, body, sink, out);
    }
};

result<std::shared_ptr<openai_provider>> openai_provider::create(openai_options options) {
    auto url = boost::urls::parse_absolute_uri(options.base_url);
    if (!url || (url->scheme() != "http" && url->scheme() != "https") || url->host().empty()) {
        return fail(
            errc::bad_request,
            "base_url '" + options.base_url + "' must be http(s)://host[:port][/path]"
        );
    }
    auto p = std::make_unique<impl>();
    p->tls = url->scheme() == "https";
    p->host = std::string(url->host());
    p->port = url->has_port() ? std::string(url->port()) : (p->tls ? "443" : "80");
    p->path = std::string(url->path());
    while (!p->path.empty() && p->path.back() == '/') {
        p->path.pop_back();
    }
    if (options.max_concurrency < 1) {
        return fail(errc::bad_request, "max_concurrency must be at least 1");
    }
    p->ssl.set_default_verify_paths();
    p->options = std::move(options);
    return std::shared_ptr<openai_provider>(new openai_provider(std::move(p)));
}

openai_provider::openai_provider(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
openai_provider::~openai_provider() = default;

net::awaitable<result<completion>> openai_provider::stream(
    chat_request request, delta_sink on_delta
) {
    auto& p = *impl_;
    // A slot among max_concurrency; waiters wake when one frees.
    for (;;) {
        const auto seen = p.slot_freed.generation();
        {
            std::lock_guard lock(p.mutex);
            if (p.running < p.options.max_concurrency) {
                ++p.running;
                break;
            }
        }
        co_await p.slot_freed.wait(seen, milliseconds(1000));
    }
    struct release {
        impl& owner;
        ~release() {
            {
                std::lock_guard lock(owner.mutex);
                --owner.running;
            }
            owner.slot_freed.notify_all();
        }
    } slot{p};

    const auto body = chat_body(request);
    std::mt19937_64 rng(std::random_device{}());
    net::steady_timer timer(co_await net::this_coro::executor);
    attempt last;
    for (int tries = 0; tries <= p.options.max_retries; ++tries) {
        completion out;
        last = co_await p.once(body, on_delta, out);
        if (!last.failure) {
            co_return out;
        }
        if (!last.retryable || tries == p.options.max_retries) {
            break;
        }
        // Full jitter, unless the provider said when.
        const auto cap = std::min(
            p.options.backoff_cap.count(), p.options.backoff_base.count() << std::min(tries, 20)
        );
        std::uniform_int_distribution<std::int64_t> jitter(0, std::max<std::int64_t>(cap, 1));
        const auto delay = last.retry_after ? std::min(*last.retry_after, p.options.backoff_cap)
                                            : milliseconds(jitter(rng));
        timer.expires_after(delay);
        co_await timer.async_wait(net::use_awaitable);
    }
    co_return *last.failure;
}

}  // namespace conclave::llm
