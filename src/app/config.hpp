// app/config.hpp: the server's configuration — defaults, then a TOML file, then environment
// variables (CONCLAVE_LISTEN, CONCLAVE_DB, CONCLAVE_NODE_ID, CONCLAVE_LOG_LEVEL), then flags.
// With no file at all the defaults serve on 127.0.0.1:8080 with ./data/conclave.db.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "council/council_job.hpp"
#include "events/retention.hpp"
#include "http/auth.hpp"
#include "jobs/engine.hpp"
#include "jobs/registry.hpp"
#include "llm/budget.hpp"
#include "stream/sse.hpp"

namespace conclave::app {

struct type_override {
    std::string name;
    std::optional<std::string> executor;
    std::optional<int> max_attempts, timeout_s, concurrency;
    std::optional<double> backoff_base_s, backoff_cap_s;
};

// [providers.NAME]: an OpenAI-compatible endpoint, or the simulator (NAME "sim").
struct provider_config {
    std::string name;
    std::string base_url;     // empty: OpenRouter's for "openrouter", required otherwise
    std::string api_key_env;  // the environment variable holding the key; empty: none
    int max_concurrency = 16;
    double connect_timeout_s = 10;
    double first_token_timeout_s = 120;
    double idle_timeout_s = 60;
    int max_retries = 3;
    double tokens_per_s = 40;  // "sim" only
    // Budgets (llm/budget.hpp): tokens_per_minute, usd_per_day (0: none), the answer tokens a
    // call reserves until it reports its usage, and the price when the provider reports none.
    llm::budget_limits budget;
};

struct app_config {
    std::string listen = "127.0.0.1:8080";
    std::string db = "sqlite:./data/conclave.db";
    // PostgreSQL: the node's writer connections, each with its own group commit ([store]
    // writers; store/postgres/pg_store.hpp). SQLite has one writer.
    int store_writers = 1;
    std::string log_level = "info";
    std::string log_format = "text";  // or "json": one JSON object per line ([log] format)
    std::size_t max_body_bytes = 1 << 20;
    // The llm-council web client's dev servers, as it expects.
    std::vector<std::string> cors_origins{"http://localhost:5173", "http://localhost:3000"};
    // Connections at once from one client address (0: no limit); loopback is not limited.
    std::size_t max_connections_per_client = 256;
    http::auth_options auth;                 // [[keys]] and [auth]; no keys: open, on loopback only
    std::optional<std::string> config_file;  // where the keys live (reloaded when it changes)
    jobs::engine_options engine;
    stream::stream_options stream;
    std::vector<type_override> types;
    std::vector<std::pair<std::string, int>> queue_limits;
    std::vector<events::retention_rule> retention;  // none: every event is kept
    std::chrono::milliseconds retention_interval{60'000};
    std::string default_provider = "openrouter";
    std::vector<provider_config> providers;
    std::optional<council::council_settings> council;  // none: chosen at start (see models.hpp)
};

// Reads `file` (when given) and the environment over the defaults. Errors: bad_request with
// the offending key named (unknown key, wrong type, unreadable file).
result<app_config> load_config(const std::optional<std::string>& file);

// Splits "HOST:PORT". Errors: bad_request.
result<std::pair<std::string, std::uint16_t>> parse_listen(const std::string& listen);

// A store URL: "sqlite:PATH" (or sqlite://PATH) names a file; "postgres://…" or
// "postgresql://…" a PostgreSQL database (the URL goes to libpq as it is).
struct store_url {
    enum backend { sqlite, postgres } kind;
    std::string target;  // the SQLite path, or the PostgreSQL URL
};
// Errors: bad_request for any other scheme.
result<store_url> parse_store_url(const std::string& db_url);

// The SQLite path of a "sqlite:PATH" URL. Errors: bad_request for other schemes.
result<std::string> sqlite_path(const std::string& db_url);

// The built-in types plus the configured ones. Errors: bad_request (e.g. an in-process
// executor for a type with no built-in handler).
result<jobs::registry> build_registry(
    const app_config& config, jobs::registry base = jobs::builtin_registry()
);

// This machine's host name, the default node id.
std::string default_node_id();

}  // namespace conclave::app
