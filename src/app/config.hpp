// app/config.hpp: the server's configuration — defaults, then a TOML file, then environment
// variables (CONCLAVE_LISTEN, CONCLAVE_DB, CONCLAVE_NODE_ID, CONCLAVE_LOG_LEVEL), then flags.
// With no file at all the defaults serve on 127.0.0.1:8080 with ./data/conclave.db.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "events/retention.hpp"
#include "jobs/engine.hpp"
#include "jobs/registry.hpp"
#include "stream/sse.hpp"

namespace conclave::app {

struct type_override {
    std::string name;
    std::optional<std::string> executor;
    std::optional<int> max_attempts, timeout_s, concurrency;
    std::optional<double> backoff_base_s, backoff_cap_s;
};

struct app_config {
    std::string listen = "127.0.0.1:8080";
    std::string db = "sqlite:./data/conclave.db";
    std::string log_level = "info";
    std::size_t max_body_bytes = 1 << 20;
    jobs::engine_options engine;
    stream::stream_options stream;
    std::vector<type_override> types;
    std::vector<std::pair<std::string, int>> queue_limits;
    std::vector<events::retention_rule> retention;  // none: every event is kept
    std::chrono::milliseconds retention_interval{60'000};
};

// Reads `file` (when given) and the environment over the defaults. Errors: bad_request with
// the offending key named (unknown key, wrong type, unreadable file).
result<app_config> load_config(const std::optional<std::string>& file);

// Splits "HOST:PORT". Errors: bad_request.
result<std::pair<std::string, std::uint16_t>> parse_listen(const std::string& listen);

// The SQLite path of a "sqlite:PATH" URL. Errors: bad_request for other schemes.
result<std::string> sqlite_path(const std::string& db_url);

// The built-in types plus the configured ones. Errors: bad_request (e.g. an in-process
// executor for a type with no built-in handler).
result<jobs::registry> build_registry(const app_config& config);

// This machine's host name, the default node id.
std::string default_node_id();

}  // namespace conclave::app
