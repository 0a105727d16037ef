// Durable job throughput: submit → claim → complete with the `noop` handler, on SQLite with
// synchronous=FULL (every commit fsynced), measured three ways:
//   (a) in-process through the engine API, (b) over HTTP with /v1/jobs:batch,
//   (c) over HTTP one job per request;
// plus claim latency (created → started) at a steady arrival rate, and the server's peak RSS
// holding 1,000,000 finished and 100,000 queued jobs. Prints a table; see bench/README.md.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include <CLI/CLI.hpp>

#include "http/client.hpp"
#include "jobs/engine.hpp"
#include "store/sqlite/sqlite_db.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/proc_status.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace conclave::bench {
namespace {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

double seconds_since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

struct latency {
    double p50 = 0, p99 = 0;
};

// created → started of every job in the database, in milliseconds.
latency claim_latency(const std::string& db_path) {
    store::sqlite::connection db(db_path);
    auto q = db.prepare("SELECT started_at - created_at FROM jobs WHERE started_at IS NOT NULL");
    std::vector<std::int64_t> values;
    while (q.step()) {
        values.push_back(q.int64_at(0));
    }
    if (values.empty()) {
        return {};
    }
    std::sort(values.begin(), values.end());
    auto at = [&](double p) {
        return static_cast<double>(
            values[static_cast<std::size_t>(p * static_cast<double>(values.size() - 1))]
        );
    };
    return {at(0.50), at(0.99)};
}

json::value noop_batch(int n) {
    json::array jobs;
    for (int idx = 0; idx < n; ++idx) {
        jobs.push_back(json::object{{"type", "noop"}});
    }
    return json::object{{"jobs", std::move(jobs)}};
}

// An engine with its store in `dir`, run on two threads, counting job.succeeded events.
class in_process {
public:
    explicit in_process(const test::temp_dir& dir)
        : db_(store::sqlite::open_sqlite_store({.path = dir.file("inproc.db")})),
          types_(jobs::builtin_registry()),
          engine_(*db_, types_, clock_, options()) {
        db_->set_commit_listener([this](const std::vector<store::event>& events) {
            for (const auto& e : events) {
                if (e.type == "job.succeeded") {
                    ++succeeded_;
                }
            }
        });
        auto start = [this]() -> net::awaitable<void> {
            co_await engine_.start(ioc_.get_executor());
        };
        net::co_spawn(ioc_, start, net::detached);
        for (int idx = 0; idx < 2; ++idx) {
            threads_.emplace_back([this] { ioc_.run(); });
        }
    }
    ~in_process() {
        engine_.stop();
        work_.reset();
        ioc_.stop();
        for (auto& t : threads_) {
            t.join();
        }
    }

    static jobs::engine_options options() {
        jobs::engine_options o;
        o.node_id = "bench";
        o.concurrency = 1024;
        o.claim_batch = 512;
        return o;
    }

    // Runs `producer(engine)` on `producers` strands and waits until `total` jobs succeeded.
    template <class F>
    double run(int producers, std::int64_t total, F producer) {
        const auto start = clock_type::now();
        const std::int64_t base = succeeded_.load();
        for (int idx = 0; idx < producers; ++idx) {
            auto task = [this, producer, idx]() -> net::awaitable<void> {
                co_await producer(engine_, idx);
            };
            net::co_spawn(net::make_strand(ioc_), task, net::detached);
        }
        while (succeeded_.load() - base < total) {
            std::this_thread::sleep_for(2ms);
        }
        return seconds_since(start);
    }

private:
    net::io_context ioc_;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{
        ioc_.get_executor()};
    std::unique_ptr<store::store> db_;
    jobs::registry types_;
    system_clock clock_;
    jobs::engine engine_;
    std::atomic<std::int64_t> succeeded_{0};
    std::vector<std::thread> threads_;
};

net::awaitable<void> pause(std::chrono::microseconds d) {
    net::steady_timer timer(co_await net::this_coro::executor, d);
    co_await timer.async_wait(net::use_awaitable);
}

std::int64_t succeeded_over_http(http::client& c) {
    return json::parse(c.get("/v1/stats").body).at("jobs").at("succeeded").as_int64();
}

// Waits until the server reports `total` succeeded jobs.
void wait_succeeded(const std::string& url, std::int64_t total) {
    http::client c(url);
    while (succeeded_over_http(c) < total) {
        std::this_thread::sleep_for(20ms);
    }
}

void row(const std::string& name, std::int64_t jobs, double secs, const latency& lat) {
    std::printf(
        "%-44s %9lld jobs %8.2f s %10.0f jobs/s   claim p50 %5.0f ms  p99 %6.0f ms\n",
        name.c_str(),
        static_cast<long long>(jobs),
        secs,
        static_cast<double>(jobs) / secs,
        lat.p50,
        lat.p99
    );
    std::fflush(stdout);
}

}  // namespace
}  // namespace conclave::bench

int main(int argc, char** argv) {
    using namespace conclave;
    using namespace conclave::bench;
    using test::status_kib;
    CLI::App cli{"Conclave durable job throughput benchmark"};
    std::int64_t total = 100'000;
    std::int64_t rss_finished = 1'000'000;
    std::int64_t rss_queued = 100'000;
    bool skip_rss = false;
    int http_single_threads = 16;
    cli.add_option("--jobs", total, "jobs per throughput run");
    cli.add_option("--rss-finished", rss_finished, "finished jobs held for the RSS figure");
    cli.add_option("--rss-queued", rss_queued, "queued jobs held for the RSS figure");
    cli.add_option("--http-threads", http_single_threads, "client threads for one-job-per-request");
    cli.add_flag("--skip-rss", skip_rss, "skip the (slow) RSS run");
    CLI11_PARSE(cli, argc, argv);

    std::printf(
        "SQLite, synchronous=FULL (fsync per commit), %u hardware threads\n\n",
        std::thread::hardware_concurrency()
    );

    {  // (a1) in-process, batches of 1000
        test::temp_dir dir;
        double secs = 0;
        {
            in_process p(dir);
            const auto per_producer = total / 4;
            secs = p.run(
                4,
                per_producer * 4,
                [per_producer](jobs::engine& e, int) -> net::awaitable<void> {
                    const auto batch = noop_batch(1000);
                    for (std::int64_t sent = 0; sent < per_producer; sent += 1000) {
                        auto r = co_await e.submit_batch(batch);
                        if (!r) {
                            throw std::runtime_error(r.error().message);
                        }
                    }
                }
            );
        }
        row("(a) in-process, engine API, batches of 1000",
            total,
            secs,
            claim_latency(dir.file("inproc.db")));
    }
    {  // (a2) in-process, one job per submit from 256 concurrent producers (group commit)
        test::temp_dir dir;
        double secs = 0;
        const int producers = 256;
        const auto per_producer = total / 2 / producers;
        {
            in_process p(dir);
            secs = p.run(
                producers,
                per_producer * producers,
                [per_producer](jobs::engine& e, int) -> net::awaitable<void> {
                    const json::value one = json::object{{"type", "noop"}};
                    for (std::int64_t sent = 0; sent < per_producer; ++sent) {
                        auto r = co_await e.submit(one);
                        if (!r) {
                            throw std::runtime_error(r.error().message);
                        }
                    }
                }
            );
        }
        row("(a) in-process, single submits x256 producers",
            per_producer * producers,
            secs,
            claim_latency(dir.file("inproc.db")));
    }
    {  // claim latency at a steady 2,000 jobs/s, below capacity
        test::temp_dir dir;
        constexpr int rate = 2000;
        constexpr int seconds = 3;
        double secs = 0;
        {
            in_process p(dir);
            secs = p.run(1, rate * seconds, [](jobs::engine& e, int) -> net::awaitable<void> {
                const json::value one = json::object{{"type", "noop"}};
                const auto start = clock_type::now();
                for (int sent = 0; sent < rate * seconds; ++sent) {
                    const auto due = start + std::chrono::microseconds(1'000'000LL * sent / rate);
                    if (due > clock_type::now()) {
                        co_await pause(std::chrono::duration_cast<std::chrono::microseconds>(
                            due - clock_type::now()
                        ));
                    }
                    co_await e.submit(one);
                }
            });
        }
        row("claim latency at a steady 2,000 jobs/s",
            rate * seconds,
            secs,
            claim_latency(dir.file("inproc.db")));
    }
    {  // (b) HTTP, /v1/jobs:batch of 1000 from 4 connections
        test::temp_dir dir;
        double secs = 0;
        {
            test::server_process server(dir.file("http.db"), {"--concurrency", "1024"});
            const auto body = json::serialize(noop_batch(1000));
            const auto start = clock_type::now();
            std::vector<std::thread> clients;
            for (int t = 0; t < 4; ++t) {
                clients.emplace_back([&] {
                    http::client c(server.url());
                    for (std::int64_t sent = 0; sent < total / 4; sent += 1000) {
                        auto res = c.post("/v1/jobs:batch", body);
                        if (res.status != 201) {
                            std::cerr << "batch refused: " << res.body << "\n";
                            std::exit(1);
                        }
                    }
                });
            }
            for (auto& t : clients) {
                t.join();
            }
            wait_succeeded(server.url(), total);
            secs = seconds_since(start);
        }
        row("(b) HTTP, /v1/jobs:batch of 1000, 4 connections",
            total,
            secs,
            claim_latency(dir.file("http.db")));
    }
    {  // (c) HTTP, one job per request
        test::temp_dir dir;
        const std::int64_t count = total / 5;
        double secs = 0;
        {
            test::server_process server(dir.file("single.db"), {"--concurrency", "1024"});
            const auto start = clock_type::now();
            std::vector<std::thread> clients;
            for (int t = 0; t < http_single_threads; ++t) {
                clients.emplace_back([&] {
                    http::client c(server.url());
                    for (std::int64_t sent = 0; sent < count / http_single_threads; ++sent) {
                        auto res = c.post("/v1/jobs", R"({"type":"noop"})");
                        if (res.status != 201) {
                            std::cerr << "submit refused: " << res.body << "\n";
                            std::exit(1);
                        }
                    }
                });
            }
            for (auto& t : clients) {
                t.join();
            }
            wait_succeeded(server.url(), count / http_single_threads * http_single_threads);
            secs = seconds_since(start);
        }
        row("(c) HTTP, one job per request, " + std::to_string(http_single_threads) +
                " connections",
            count / http_single_threads * http_single_threads,
            secs,
            claim_latency(dir.file("single.db")));
    }
    if (!skip_rss) {
        test::temp_dir dir;
        test::server_process server(dir.file("rss.db"), {"--concurrency", "1024"});
        const auto body = json::serialize(noop_batch(1000));
        std::vector<std::thread> clients;
        for (int t = 0; t < 4; ++t) {
            clients.emplace_back([&] {
                http::client c(server.url());
                for (std::int64_t sent = 0; sent < rss_finished / 4; sent += 1000) {
                    c.post("/v1/jobs:batch", body);
                }
            });
        }
        for (auto& t : clients) {
            t.join();
        }
        wait_succeeded(server.url(), rss_finished);
        json::array queued;
        for (int idx = 0; idx < 1000; ++idx) {
            queued.push_back(json::object{{"type", "noop"}, {"delay_s", 86400}});
        }
        const auto queued_body = json::serialize(json::object{{"jobs", std::move(queued)}});
        http::client c(server.url());
        for (std::int64_t sent = 0; sent < rss_queued; sent += 1000) {
            c.post("/v1/jobs:batch", queued_body);
        }
        std::printf(
            "server holding %lld finished + %lld queued jobs: peak RSS %.1f MiB, now RssAnon %.1f "
            "MiB, "
            "RssFile %.1f MiB\n",
            static_cast<long long>(rss_finished),
            static_cast<long long>(rss_queued),
            static_cast<double>(status_kib(server.pid(), "VmHWM")) / 1024.0,
            static_cast<double>(status_kib(server.pid(), "RssAnon")) / 1024.0,
            static_cast<double>(status_kib(server.pid(), "RssFile")) / 1024.0
        );
    }
    return 0;
}
