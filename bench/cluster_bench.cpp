// Scale-out on PostgreSQL: durable job throughput (submit → claim → complete, `noop`, the same
// workload as jobs_bench's HTTP batch run) with 1, 2 and 3 `conclave serve` nodes sharing one
// PostgreSQL on this machine, and cross-node event delivery latency (an event posted on one node,
// read over SSE from another). Run through scripts/with-postgres.sh (bench/run.sh does), which
// provides CONCLAVE_TEST_PG_URL. Prints a table; see bench/README.md.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include <boost/json.hpp>

#include <CLI/CLI.hpp>

#include "http/client.hpp"
#include "http/sse_client.hpp"
#include "support/metrics_text.hpp"
#include "support/pg_database.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace conclave::bench {
namespace {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

int writers = 1;            // [store] writers of every node (--writers)
bool commit_stats = false;  // print what each node's writers did (--commit-stats)

std::vector<std::unique_ptr<test::server_process>> start_nodes(const test::pg_database& db, int n) {
    static const test::temp_dir dir;  // kept while nodes run: they watch their config file
    const auto config = (dir.path() / "conclave.toml").string();
    std::ofstream(config) << "[store]\nwriters = " << writers << "\n";
    std::vector<std::unique_ptr<test::server_process>> nodes;
    for (int i = 0; i < n; ++i) {
        nodes.push_back(std::make_unique<test::server_process>(
            test::server_process::db_url,
            db.url(),
            std::vector<std::string>{
                "--node-id",
                "bench-" + std::to_string(i),
                "--concurrency",
                "1024",
                "--config",
                config}
        ));
    }
    return nodes;
}

std::string noop_batch(int n) {
    json::array jobs;
    for (int i = 0; i < n; ++i) {
        jobs.push_back(json::object{{"type", "noop"}});
    }
    return json::serialize(json::object{{"jobs", std::move(jobs)}});
}

std::int64_t succeeded(const std::string& url) {
    return json::parse(http::client(url).get("/v1/stats").body)
        .at("jobs")
        .at("succeeded")
        .as_int64();
}

// The state of job `id` as node `url` reads it.
std::string state_of(http::client& c, const std::string& id) {
    auto res = c.get("/v1/jobs/" + id);
    return res.status == 200 ? std::string(json::parse(res.body).at("state").as_string()) : "";
}

// What the nodes' writers did in a run: commits, writes per commit, time per commit.
void print_commit_stats(const std::vector<std::unique_ptr<test::server_process>>& nodes) {
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        const auto text = http::client(nodes[i]->url()).get("/metrics").body;
        const auto commits = test::metric_sum(text, "conclave_store_commit_seconds_count");
        const auto seconds = test::metric_sum(text, "conclave_store_commit_seconds_sum");
        const auto writes = test::metric_sum(text, "conclave_store_commit_batch_size_sum");
        std::printf(
            "    node %zu: %.0f commits, %.1f writes each, %.2f ms each (BEGIN to COMMIT)\n",
            i + 1,
            commits,
            commits > 0 ? writes / commits : 0.0,
            commits > 0 ? seconds * 1000 / commits : 0.0
        );
    }
}

// Prints jobs per second with `n` nodes: `total` noop jobs in batches of 1000 from 4 connections
// spread over the nodes, until every one has succeeded. The end is watched cheaply: first the
// last job of each connection (a lookup by id every 5 ms), then the count of succeeded jobs
// (which reads the whole table: polled alone every 20 ms it took a share of the database's CPU
// away from the work being measured).
void throughput(int n, std::int64_t total) {
    test::pg_database db;
    auto nodes = start_nodes(db, n);
    const auto body = noop_batch(1000);
    const auto start = clock_type::now();
    std::vector<std::thread> clients;
    std::vector<std::string> last_ids(4);
    for (int t = 0; t < 4; ++t) {
        clients.emplace_back([&, t] {
            http::client c(nodes[static_cast<std::size_t>(t % n)]->url());
            for (std::int64_t sent = 0; sent < total / 4; sent += 1000) {
                auto res = c.post("/v1/jobs:batch", body);
                if (res.status != 201) {
                    std::cerr << "batch refused: " << res.status << " " << res.body << "\n";
                    std::exit(1);
                }
                const auto created = json::parse(res.body);
                last_ids[static_cast<std::size_t>(t)] =
                    created.at("jobs").as_array().back().at("id").as_string();
            }
        });
    }
    for (auto& c : clients) {
        c.join();
    }
    http::client watch(nodes[0]->url());
    for (const auto& id : last_ids) {
        while (state_of(watch, id) != "succeeded") {
            std::this_thread::sleep_for(5ms);
        }
    }
    while (succeeded(nodes[0]->url()) < total) {
        std::this_thread::sleep_for(20ms);
    }
    const double rate = static_cast<double>(total) /
                        std::chrono::duration<double>(clock_type::now() - start).count();
    std::printf("%d node(s): %8.0f jobs/s\n", n, rate);
    if (commit_stats) {
        print_commit_stats(nodes);
    }
    std::fflush(stdout);
}

// Milliseconds from posting an event on node 0 to reading it over SSE on node 1, for `count`
// events posted 10 ms apart.
std::pair<double, double> cross_node_latency(int count) {
    test::pg_database db;
    auto nodes = start_nodes(db, 2);
    std::vector<double> ms;
    http::client c(nodes[0]->url());
    // A topic exists once it has an event: the first is not measured.
    c.post("/v1/topics/bench:latency/events", R"({"type":"open","data":{}})");
    std::thread reader([&] {
        http::read_sse(
            nodes[1]->url(),
            {.target = "/v1/topics/bench:latency/events?after=1",
             .timeout = 120s,
             .on_event =
                 [&](const http::sse_event& e) {
                     const auto sent = json::parse(e.data).at("data").at("t").as_int64();
                     const auto now = clock_type::now().time_since_epoch().count();
                     ms.push_back(static_cast<double>(now - sent) / 1e6);
                     return static_cast<int>(ms.size()) < count;
                 }}
        );
    });
    std::this_thread::sleep_for(500ms);  // the subscription is in place
    for (int i = 0; i < count; ++i) {
        const json::object event{
            {"type", "tick"},
            {"data", json::object{{"t", clock_type::now().time_since_epoch().count()}}}};
        c.post("/v1/topics/bench:latency/events", json::serialize(event));
        std::this_thread::sleep_for(10ms);
    }
    reader.join();
    if (ms.empty()) {
        return {0, 0};
    }
    std::sort(ms.begin(), ms.end());
    auto at = [&](double p) {
        return ms[std::min(
            ms.size() - 1, static_cast<std::size_t>(p * static_cast<double>(ms.size()))
        )];
    };
    return {at(0.5), at(0.99)};
}

}  // namespace
}  // namespace conclave::bench

int main(int argc, char** argv) {
    using namespace conclave::bench;
    CLI::App cli{"Conclave on PostgreSQL: throughput with 1-3 nodes and cross-node latency"};
    std::int64_t total = 100'000;  // as jobs_bench's HTTP batch run
    int events = 500;
    std::vector<int> node_counts{1, 2, 3};
    cli.add_option("--jobs", total, "jobs per throughput run");
    cli.add_option("--events", events, "events for the cross-node latency (0: not measured)");
    cli.add_option("--nodes", node_counts, "the node counts to measure throughput with")
        ->check(CLI::Range(1, 8));
    cli.add_option("--writers", writers, "writer connections per node ([store] writers)")
        ->check(CLI::Range(1, 16));
    cli.add_flag("--commit-stats", commit_stats, "print each node's commits after its run");
    CLI11_PARSE(cli, argc, argv);
    std::printf(
        "PostgreSQL (fsync on, same machine), %u hardware threads, %lld noop jobs per run, "
        "/v1/jobs:batch of 1000 from 4 connections over the nodes, %d writer(s) per node\n",
        std::thread::hardware_concurrency(),
        static_cast<long long>(total),
        writers
    );
    for (const int n : node_counts) {
        throughput(n, total);
    }
    if (events <= 0) {
        return 0;
    }
    const auto [p50, p99] = cross_node_latency(events);
    std::printf(
        "cross-node event delivery (post on node 1, SSE on node 2), %d events: p50 %.1f ms, p99 "
        "%.1f ms\n",
        events,
        p50,
        p99
    );
    return 0;
}
