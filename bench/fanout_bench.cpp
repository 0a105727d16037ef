// Event fan-out over SSE and WebSocket: N concurrent subscribers (half of each by default)
// spread over T topics on one server.
// Reports server memory per idle connection, event deliveries per second, and the latency from
// an event's commit (its `time`, set by the store's writer) to a subscriber reading it.
// The load client is one Asio thread; see bench/README.md.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <CLI/CLI.hpp>

#include "http/client.hpp"
#include "support/proc_status.hpp"
#include "support/producer.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch()
    )
        .count();
}

// Milliseconds since midnight UTC of an RFC 3339 time "….THH:MM:SS.mmmZ".
std::int64_t ms_of_day(std::string_view t) {
    const auto at = t.find('T');
    auto num = [&](std::size_t pos, std::size_t len) {
        return std::stoll(std::string(t.substr(at + pos, len)));
    };
    return ((num(1, 2) * 60 + num(4, 2)) * 60 + num(7, 2)) * 1000 + num(10, 3);
}

struct stats {
    std::atomic<std::int64_t> delivered{0};
    std::vector<std::int64_t> latencies;  // touched by the client thread only
    bool record = false;
};

// A client-to-server WebSocket frame (masked, as RFC 6455 requires) of `opcode`.
std::string ws_frame(unsigned char opcode, std::string_view payload) {
    std::string f;
    f.push_back(static_cast<char>(0x80U | opcode));
    if (payload.size() < 126) {
        f.push_back(static_cast<char>(0x80U | payload.size()));
    } else {
        f.push_back(static_cast<char>(0x80U | 126U));
        f.push_back(static_cast<char>((payload.size() >> 8) & 0xFFU));
        f.push_back(static_cast<char>(payload.size() & 0xFFU));
    }
    const std::array<unsigned char, 4> mask{0x12, 0x34, 0x56, 0x78};
    f.append(reinterpret_cast<const char*>(mask.data()), 4);
    for (std::size_t idx = 0; idx < payload.size(); ++idx) {
        f.push_back(static_cast<char>(static_cast<unsigned char>(payload[idx]) ^ mask[idx % 4]));
    }
    return f;
}

// One subscriber over SSE or WebSocket: counts events and samples commit→read latency.
class subscriber : public std::enable_shared_from_this<subscriber> {
public:
    subscriber(asio::io_context& ioc, stats& s, bool ws) : socket_(ioc), stats_(s), ws_(ws) {}

    void start(const tcp::endpoint& ep, const std::string& topic) {
        if (ws_) {
            request_ =
                "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
                "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n" +
                ws_frame(1, R"({"op":"subscribe","topic":")" + topic + R"(","after":2})");
        } else {
            request_ = "GET /v1/topics/" + topic +
                       "/events?after=2 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n";
        }
        socket_.async_connect(ep, [self = shared_from_this()](boost::system::error_code ec) {
            if (ec) {
                return;
            }
            asio::async_write(
                self->socket_,
                asio::buffer(self->request_),
                [self](boost::system::error_code wec, std::size_t) {
                    if (!wec) {
                        self->read();
                    }
                }
            );
        });
    }

private:
    void read() {
        socket_.async_read_some(
            asio::buffer(chunk_),
            [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                if (ec) {
                    return;
                }
                self->parse(n);
                self->read();
            }
        );
    }

    void parse(std::size_t n) {
        buffer_.append(chunk_.data(), n);
        if (ws_) {
            parse_ws();
            return;
        }
        std::size_t end;
        while ((end = buffer_.find("\n\n")) != std::string::npos) {
            const auto frame = std::string_view(buffer_).substr(0, end);
            const auto t = frame.find("\"time\":\"");
            if (frame.find("\nevent: tick") != std::string_view::npos &&
                t != std::string_view::npos) {
                stats_.delivered.fetch_add(1, std::memory_order_relaxed);
                if (stats_.record) {
                    const auto sent = ms_of_day(frame.substr(t + 8, 24));
                    stats_.latencies.push_back((now_ms() % 86'400'000) - sent);
                }
            }
            buffer_.erase(0, end + 2);
        }
    }

    void count(std::string_view message) {
        const auto t = message.find("\"time\":\"");
        if (message.find("\"type\":\"tick\"") == std::string_view::npos ||
            t == std::string_view::npos) {
            return;
        }
        stats_.delivered.fetch_add(1, std::memory_order_relaxed);
        if (stats_.record) {
            const auto sent = ms_of_day(message.substr(t + 8, 24));
            stats_.latencies.push_back((now_ms() % 86'400'000) - sent);
        }
    }

    // The 101 response, then unmasked server frames: text messages are counted, pings
    // answered (the server closes a connection that stops answering).
    void parse_ws() {
        std::size_t pos = 0;
        if (!upgraded_) {
            const auto end = buffer_.find("\r\n\r\n");
            if (end == std::string::npos) {
                return;
            }
            upgraded_ = true;
            pos = end + 4;
        }
        for (;;) {
            if (buffer_.size() - pos < 2) {
                break;
            }
            const auto b0 = static_cast<unsigned char>(buffer_[pos]);
            std::uint64_t len = static_cast<unsigned char>(buffer_[pos + 1]) & 0x7FU;
            std::size_t header = 2;
            if (len == 126) {
                if (buffer_.size() - pos < 4) {
                    break;
                }
                len = (static_cast<std::uint64_t>(static_cast<unsigned char>(buffer_[pos + 2]))
                       << 8) |
                      static_cast<unsigned char>(buffer_[pos + 3]);
                header = 4;
            } else if (len == 127) {
                if (buffer_.size() - pos < 10) {
                    break;
                }
                len = 0;
                for (int idx = 0; idx < 8; ++idx) {
                    len = (len << 8) | static_cast<unsigned char>(buffer_[pos + 2 + idx]);
                }
                header = 10;
            }
            if (buffer_.size() - pos < header + len) {
                break;
            }
            const auto payload = std::string_view(buffer_).substr(pos + header, len);
            const auto opcode = b0 & 0x0FU;
            if (opcode == 1) {
                count(payload);
            } else if (opcode == 9) {
                auto pong = std::make_shared<std::string>(ws_frame(10, payload));
                asio::async_write(socket_, asio::buffer(*pong), [pong](auto, auto) {});
            }
            pos += header + len;
        }
        buffer_.erase(0, pos);
    }

    tcp::socket socket_;
    stats& stats_;
    bool ws_;
    bool upgraded_ = false;
    std::string request_;
    std::string buffer_;
    std::array<char, 8192> chunk_{};
};

}  // namespace

int main(int argc, char** argv) {
    using namespace conclave;
    using test::status_kib;
    CLI::App cli{"Conclave SSE fan-out benchmark"};
    int subscribers = 10'000;
    int topics = 10;
    std::string protocol = "mixed";
    cli.add_option("--protocol", protocol, "sse, ws, or mixed (half each)")
        ->check(CLI::IsMember({"sse", "ws", "mixed"}));
    int events_per_topic = 200;
    cli.add_option("--subscribers", subscribers);
    cli.add_option("--topics", topics);
    cli.add_option("--events", events_per_topic, "events posted per topic");
    int steady_rate = 10;
    int steady_seconds = 5;
    cli.add_option("--steady-rate", steady_rate, "events per second per topic in the steady phase");
    cli.add_option("--steady-seconds", steady_seconds);
    CLI11_PARSE(cli, argc, argv);

    test::temp_dir dir;
    test::server_process server(
        dir.file("fanout.db"), {"--config", test::write_producer_config(dir)}
    );

    // One producer per topic: a remote job whose "worker" posts events to fan:N.
    std::vector<std::unique_ptr<test::producer>> producers;
    for (int t = 0; t < topics; ++t) {
        producers.push_back(
            std::make_unique<test::producer>(server.url(), "fan:" + std::to_string(t))
        );
    }

    const long rss_before = status_kib(server.pid(), "VmRSS");
    asio::io_context ioc;
    stats s;
    const auto port = server.port();
    const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
    std::vector<std::shared_ptr<subscriber>> subs;
    for (int idx = 0; idx < subscribers; ++idx) {
        const bool ws = protocol == "ws" || (protocol == "mixed" && idx % 2 == 1);
        subs.push_back(std::make_shared<subscriber>(ioc, s, ws));
        subs.back()->start(ep, "fan:" + std::to_string((idx / 2) % topics));
    }
    std::thread client_thread([&] { ioc.run(); });
    std::this_thread::sleep_for(3s);  // all connected and idle
    const long rss_idle = status_kib(server.pid(), "VmRSS");
    std::printf(
        "subscribers %d (%s) on %d topics: server RSS %.1f MiB -> %.1f MiB, %.1f KiB per idle "
        "connection\n",
        subscribers,
        protocol.c_str(),
        topics,
        rss_before / 1024.0,
        rss_idle / 1024.0,
        static_cast<double>(rss_idle - rss_before) / subscribers
    );

    s.record = true;
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> posters;
    for (auto& p : producers) {
        posters.emplace_back([&p, events_per_topic] { p->post(events_per_topic, 0, 10); });
    }
    for (auto& p : posters) {
        p.join();
    }
    const std::int64_t expected = static_cast<std::int64_t>(events_per_topic) * subscribers;
    while (s.delivered.load() < expected && std::chrono::steady_clock::now() - start < 120s) {
        std::this_thread::sleep_for(5ms);
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::int64_t burst_delivered = s.delivered.load();
    auto& lat = s.latencies;
    std::sort(lat.begin(), lat.end());  // the client thread is idle: the burst is fully read
    auto pct = [&](double p) {
        return lat.empty()
                   ? 0.0
                   : static_cast<double>(
                         lat[static_cast<std::size_t>(p * static_cast<double>(lat.size() - 1))]
                     );
    };
    std::printf(
        "burst: %lld of %lld deliveries in %.2f s: %.0f deliveries/s; commit->client p50 %.0f ms, "
        "p99 %.0f ms, max %.0f ms\n",
        static_cast<long long>(burst_delivered),
        static_cast<long long>(expected),
        secs,
        static_cast<double>(burst_delivered) / secs,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    // Steady phase: a fixed rate per topic, well inside capacity; the latency that users see.
    asio::post(ioc, [&s] { s.latencies.clear(); });
    const std::int64_t before_steady = s.delivered.load();
    std::vector<std::thread> steady;
    for (auto& p : producers) {
        steady.emplace_back([&p, steady_rate, steady_seconds] {
            const auto begin = std::chrono::steady_clock::now();
            for (int n = 0; n < steady_rate * steady_seconds; ++n) {
                std::this_thread::sleep_until(
                    begin + std::chrono::microseconds(1'000'000LL * n / steady_rate)
                );
                p->post(1, 0);
            }
        });
    }
    for (auto& t : steady) {
        t.join();
    }
    const std::int64_t steady_expected =
        before_steady + static_cast<std::int64_t>(steady_rate) * steady_seconds * subscribers;
    while (s.delivered.load() < steady_expected && std::chrono::steady_clock::now() - start < 240s
    ) {
        std::this_thread::sleep_for(5ms);
    }
    ioc.stop();
    client_thread.join();
    std::sort(lat.begin(), lat.end());
    std::printf(
        "steady %d events/s per topic (%d deliveries/s) for %d s: commit->client p50 %.0f ms, p99 "
        "%.0f ms, max %.0f ms\n",
        steady_rate,
        steady_rate * subscribers,
        steady_seconds,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    std::printf("server peak RSS %.1f MiB\n", status_kib(server.pid(), "VmHWM") / 1024.0);
    return s.delivered.load() == steady_expected ? 0 : 1;
}
