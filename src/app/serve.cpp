#include "app/serve.hpp"

#include <atomic>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>

#include "app/api_config.hpp"
#include "app/keys.hpp"
#include "app/models.hpp"
#include "chat/chat.hpp"
#include "chat/routes.hpp"
#include "core/logging.hpp"
#include "core/metrics.hpp"
#include "events/hub.hpp"
#include "events/remote_feed.hpp"
#include "events/retention.hpp"
#include "http/api_jobs.hpp"
#include "http/api_stats.hpp"
#include "http/guard.hpp"
#include "http/server.hpp"
#include "jobs/throughput.hpp"
#include "store/postgres/pg_store.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "stream/sse.hpp"
#include "stream/ws.hpp"
#include "web/assets.hpp"
#include "web/routes.hpp"

namespace conclave::app {

namespace {

// One thread running its own io_context until destroyed.
struct fanout_thread {
    net::io_context context{1};
    net::executor_work_guard<net::io_context::executor_type> work{context.get_executor()};
    std::thread thread{[this] { context.run(); }};

    ~fanout_thread() {
        work.reset();
        context.stop();
        thread.join();
    }
};

// Wakes the engine for the store's cluster listener, until forget() (the engine is going).
class engine_waker {
public:
    explicit engine_waker(jobs::engine* e) : engine_(e) {}
    void wake() {
        std::lock_guard lock(mutex_);
        if (engine_) {
            engine_->wake();
        }
    }
    // Another node committed events on `topic`: a job topic's job may run here.
    void committed(const std::string& topic) {
        const auto job = store::job_of_topic(topic);
        if (job.empty()) {
            return;
        }
        std::lock_guard lock(mutex_);
        if (engine_) {
            engine_->changed_elsewhere(std::string(job));
        }
    }
    void reconnected() {
        std::lock_guard lock(mutex_);
        if (engine_) {
            engine_->wake();
            engine_->check_running();
        }
    }
    void forget() {
        std::lock_guard lock(mutex_);
        engine_ = nullptr;
    }

private:
    std::mutex mutex_;
    jobs::engine* engine_;
};

// Whether `host` names this machine only (an address in 127/8 or ::1, or "localhost").
bool is_loopback_host(const std::string& host) {
    if (host == "localhost") {
        return true;
    }
    boost::system::error_code ec;
    const auto address = net::ip::make_address(host, ec);
    return !ec && address.is_loopback();
}

// Reloads the keys when the configuration file changes, so `conclave keys create|revoke`
// takes effect without a restart. A file that no longer parses keeps the keys in force.
net::awaitable<void> watch_keys(
    std::string file, http::authenticator& auth, const std::atomic<bool>& stopping
) {
    auto log = logger("auth");
    std::error_code fec;
    auto seen = std::filesystem::last_write_time(file, fec);
    net::steady_timer timer(co_await net::this_coro::executor);
    while (!stopping) {
        timer.expires_after(std::chrono::seconds(1));
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        const auto now = std::filesystem::last_write_time(file, fec);
        if (fec || now == seen) {
            continue;
        }
        seen = now;
        auto keys = load_keys(file);
        if (!keys) {
            log->error("keys not reloaded: {}", keys.error().message);
            continue;
        }
        log->info("reloaded {} API key(s) from {}", keys->size(), file);
        auth.set_keys(std::move(*keys));
    }
}

}  // namespace

int serve(const app_config& config) {
    init_logging(config.log_level, parse_log_format(config.log_format).value_or(log_format::text));
    auto log = logger("app");
    auto listen = parse_listen(config.listen);
    if (!listen) {
        log->error("{}", listen.error().message);
        return 2;
    }
    const bool loopback = is_loopback_host(listen->first);
    if (config.auth.keys.empty() && !loopback) {
        log->error(
            "refusing to listen on {} without API keys: anyone who reaches it could run paid LLM "
            "calls and read every conversation. Create a key (conclave keys create NAME --scopes "
            "admin --config FILE) and start with --config FILE, or listen on 127.0.0.1",
            config.listen
        );
        return 2;
    }
    auto db_url = parse_store_url(config.db);
    if (!db_url) {
        log->error("{}", db_url.error().message);
        return 2;
    }
    auto llm_models = build_models(config);
    if (!llm_models) {
        log->error("{}", llm_models.error().message);
        return 2;
    }
    const auto& council_models = **llm_models;
    auto base = jobs::builtin_registry();
    council::add_council_type(base, council_models.providers, council_models.council);
    auto types = build_registry(config, std::move(base));
    if (!types) {
        log->error("{}", types.error().message);
        return 2;
    }

    const unsigned threads = std::max(2U, std::thread::hardware_concurrency());
    net::io_context ioc(static_cast<int>(threads));
    events::hub hub;
    // Fan-out runs on a thread of its own, neither on the store's writer (which goes on to its
    // next commit at once) nor behind the connections' work on the I/O threads; one thread
    // keeps commits in order. (A subscriber that joins before a commit reaches the hub reads it
    // from the store and drops the live copy as a duplicate.) Declared before the store, so it
    // outlives every commit.
    fanout_thread fanout;
    system_clock clk;
    // Jobs ended per 10 s for GET /v1/stats, counted on the writer thread as each commit lands
    // (a scan of the batch and one short lock). Also declared before the store.
    jobs::throughput ended(clk);
    std::unique_ptr<store::store> db;
    try {
        if (db_url->kind == store_url::postgres) {
            db = store::postgres::open_postgres_store(
                {.url = db_url->target,
                 .writer_connections = config.store_writers,
                 .node_id = config.engine.node_id}
            );
        } else {
            db = store::sqlite::open_sqlite_store({.path = db_url->target});
        }
    } catch (const std::exception& e) {
        log->error("cannot open the store {}: {}", config.db, e.what());
        return 1;
    }
    auto& appended = metrics::global().counter(
        "conclave_events_appended_total", {}, "Events committed to the store (all topics)"
    );
    db->set_commit_listener(
        [&hub, &fanout, &ended, &appended](const std::vector<store::event>& committed) {
            appended.inc(committed.size());
            ended.record(committed);
            net::post(fanout.context, [&hub, committed] { hub.publish(committed); });
        }
    );
    jobs::engine engine(*db, *types, clk, config.engine);
    // Other nodes on the same database: their commits reach this node's subscribers through
    // the feed, their new jobs wake this node's workers. (SQLite has no other nodes.)
    // The store (and its listening thread) outlives the engine: wake-ups reach the engine
    // through `waking`, emptied before the engine goes.
    auto feed = std::make_shared<events::remote_feed>(hub, *db, fanout.context.get_executor());
    struct stop_at_exit {
        std::shared_ptr<events::remote_feed> feed;
        ~stop_at_exit() { feed->stop(); }
    } stop_feed{feed};  // declared after the store: the feed reads nothing once the store goes
    auto waking = std::make_shared<engine_waker>(&engine);
    struct forget_at_exit {
        std::shared_ptr<engine_waker> waker;
        ~forget_at_exit() { waker->forget(); }
    } forget_waking{waking};  // declared after the engine: runs before it is destroyed
    db->set_cluster_listener({
        .events_committed =
            [feed, waking](const std::string& topic, std::int64_t offset) {
                feed->committed(topic, offset);
                waking->committed(topic);  // cancelled elsewhere: stop its handler here
            },
        .jobs_queued = [waking] { waking->wake(); },
        .reconnected =
            [feed, waking] {
                feed->resync();
                waking->reconnected();
            },
    });
    std::atomic<bool> ready{false};
    std::atomic<bool> start_failed{false};
    http::router routes;
    auto auth_options = config.auth;
    auth_options.require_keys = !loopback;  // revoking the last key must not open the server
    http::authenticator auth(auth_options);
    routes.set_guard(http::access_guard(auth));
    http::add_token_route(routes, auth);
    http::add_health_routes(routes, ready, *db);
    // The stream routes go before the JSON routes they shadow.
    stream::add_sse_routes(routes, hub, engine, config.stream);
    stream::add_ws_route(routes, hub, engine, config.stream);
    http::add_job_routes(routes, engine);
    http::job_group_cache job_groups(engine);  // shared by /v1/stats and /metrics
    http::add_stats_route(routes, engine, ended, job_groups);
    http::add_metrics_route(routes, engine, job_groups);
    add_config_route(routes, config, council_models);
    chat::chat conversations(engine, *db, council_models.providers);
    chat::add_conversation_routes(routes, conversations);
    chat::add_llm_council_routes(routes, conversations, hub, engine, config.stream);
    // Last: the UI answers only what no API route matches.
    web::add_web_routes(routes);
    routes.set_cors_origins(config.cors_origins);
    http::server server(
        ioc,
        routes,
        {.host = listen->first,
         .port = listen->second,
         .max_body_bytes = config.max_body_bytes,
         .max_connections_per_client = config.max_connections_per_client}
    );
    net::ip::tcp::endpoint bound;
    try {
        bound = server.listen();
    } catch (const std::exception& e) {
        log->error("cannot listen on {}: {}", config.listen, e.what());
        return 1;
    }

    std::atomic<bool> stopping{false};
    auto startup = [&]() -> net::awaitable<void> {
        co_await engine.start(ioc.get_executor());
        if (!config.retention.empty()) {
            net::co_spawn(
                net::make_strand(ioc),
                events::retention_loop(
                    *db, clk, config.retention, config.retention_interval, stopping
                ),
                net::detached
            );
        }
        if (config.config_file) {
            net::co_spawn(
                net::make_strand(ioc),
                watch_keys(*config.config_file, auth, stopping),
                net::detached
            );
        }
        server.start();
        ready = true;
        const std::string host = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                                         : bound.address().to_string();
        std::cout << "conclave listening on http://" << host << ":" << bound.port() << std::endl;
        log->info(
            "serving {} with store {} as node '{}'", config.listen, config.db, config.engine.node_id
        );
        if (!web::ui_built()) {
            log->info(
                "the web UI was not built into this binary (make build); serving a placeholder"
            );
        }
        if (council_models.simulated) {
            log->info(
                "no API key for provider '{}': councils default to simulated models (sim:*)",
                config.default_provider
            );
        }
    };
    net::co_spawn(ioc, startup, [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                log->error("start-up failed: {}", ex.what());
            }
            start_failed = true;
            ioc.stop();
        }
    });

    net::signal_set signals(ioc, SIGINT, SIGTERM);
    net::steady_timer drain(ioc);
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (ec) {
            return;
        }
        log->info("shutting down");
        ready = false;
        stopping = true;
        server.stop();
        engine.stop();
        drain.expires_after(std::chrono::milliseconds(200));
        drain.async_wait([&](boost::system::error_code) { ioc.stop(); });
    });

    std::vector<std::thread> pool;
    for (unsigned idx = 1; idx < threads; ++idx) {
        pool.emplace_back([&ioc] { ioc.run(); });
    }
    ioc.run();
    for (auto& t : pool) {
        t.join();
    }
    return start_failed ? 1 : 0;
}

}  // namespace conclave::app
