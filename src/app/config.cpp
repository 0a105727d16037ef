#include "app/config.hpp"

#include <charconv>
#include <cstdlib>
#include <limits>
#include <set>
#include <utility>

#include <toml++/toml.h>
#include <unistd.h>

#include "app/keys.hpp"
#include "app/toml_integer.hpp"
#include "core/logging.hpp"
#include "jobs/submission.hpp"

namespace conclave::app {
namespace {

error bad(std::string message) {
    return fail(errc::bad_request, std::move(message));
}

// Refuses keys of `table` not in `known`, naming them with `where`.
std::optional<error> check_keys(
    const toml::table& table, const std::string& where, const std::set<std::string>& known
) {
    for (const auto& [key, value] : table) {
        if (!known.contains(std::string(key.str()))) {
            return bad("config: unknown key '" + where + std::string(key.str()) + "'");
        }
    }
    return std::nullopt;
}

template <class T>
std::optional<error> read_value(
    const toml::table& table, const char* key, const std::string& where, T& out
) {
    const auto* node = table.get(key);
    if (!node) {
        return std::nullopt;
    }
    if constexpr (std::is_same_v<T, std::string>) {
        if (auto v = node->value<std::string>()) {
            out = *v;
            return std::nullopt;
        }
        return bad("config: '" + where + key + "' must be a string");
    } else if constexpr (std::is_same_v<T, bool>) {
        if (auto v = node->value_exact<bool>()) {
            out = *v;
            return std::nullopt;
        }
        return bad("config: '" + where + key + "' must be true or false");
    } else if constexpr (std::is_floating_point_v<T>) {
        if (auto v = node->value<double>()) {
            out = *v;
            return std::nullopt;
        }
        return bad("config: '" + where + key + "' must be a number");
    } else {
        if (auto v = toml_integer(*node)) {
            if (!std::in_range<T>(*v)) {
                return bad(
                    "config: '" + where + key + "' must be an integer from " +
                    std::to_string(std::numeric_limits<T>::min()) + " to " +
                    std::to_string(std::numeric_limits<T>::max())
                );
            }
            out = static_cast<T>(*v);
            return std::nullopt;
        }
        return bad("config: '" + where + key + "' must be an integer");
    }
}

template <class T>
std::optional<error> read_optional(
    const toml::table& table, const char* key, const std::string& where, std::optional<T>& out
) {
    if (!table.contains(key)) {
        return std::nullopt;
    }
    T value{};
    auto e = read_value(table, key, where, value);
    if (!e) {
        out = value;
    }
    return e;
}

// [log] format = "text" | "json"
std::optional<error> read_log(const toml::table& root, app_config& config) {
    const auto* log = root["log"].as_table();
    if (log == nullptr) {
        return std::nullopt;
    }
    if (auto e = check_keys(*log, "log.", {"format"})) {
        return e;
    }
    if (auto e = read_value(*log, "format", "log.", config.log_format)) {
        return e;
    }
    if (!parse_log_format(config.log_format)) {
        return bad("config: 'log.format' must be \"text\" or \"json\"");
    }
    return std::nullopt;
}

std::optional<error> apply_file(app_config& config, const toml::table& root) {
    if (auto e = check_keys(
            root,
            "",
            {"server",
             "store",
             "engine",
             "types",
             "queues",
             "stream",
             "retention",
             "log_level",
             "log",
             "default_provider",
             "providers",
             "council",
             "keys",
             "auth"}
        )) {
        return e;
    }
    if (auto e = read_value(root, "log_level", "", config.log_level)) {
        return e;
    }
    if (auto e = read_log(root, config)) {
        return e;
    }
    auto keys = parse_keys(root);
    if (!keys) {
        return keys.error();
    }
    config.auth.keys = std::move(*keys);
    if (auto e = parse_auth(root, config.auth)) {
        return e;
    }
    if (const auto* server = root["server"].as_table()) {
        if (auto e = check_keys(
                *server,
                "server.",
                {"listen", "max_body_bytes", "cors_origins", "max_connections_per_client"}
            )) {
            return e;
        }
        if (auto e = read_value(
                *server, "max_connections_per_client", "server.", config.max_connections_per_client
            )) {
            return e;
        }
        if (auto e = read_value(*server, "listen", "server.", config.listen)) {
            return e;
        }
        if (auto e = read_value(*server, "max_body_bytes", "server.", config.max_body_bytes)) {
            return e;
        }
        if (const auto* origins = server->get("cors_origins")) {
            const auto* list = origins->as_array();
            if (list == nullptr) {
                return bad("config: 'server.cors_origins' must be a list of origins");
            }
            config.cors_origins.clear();
            for (const auto& o : *list) {
                auto origin = o.value<std::string>();
                // An origin is scheme://host[:port]; "*" is refused: the API is not for any site.
                if (!origin ||
                    !(origin->starts_with("http://") || origin->starts_with("https://")) ||
                    origin->ends_with("/")) {
                    return bad(
                        "config: 'server.cors_origins' entries must be origins like "
                        "\"http://localhost:5173\" (no wildcard, no trailing slash)"
                    );
                }
                config.cors_origins.push_back(*origin);
            }
        }
    }
    if (const auto* store = root["store"].as_table()) {
        if (auto e = check_keys(*store, "store.", {"url", "writers"})) {
            return e;
        }
        if (auto e = read_value(*store, "url", "store.", config.db)) {
            return e;
        }
        if (auto e = read_value(*store, "writers", "store.", config.store_writers)) {
            return e;
        }
        if (config.store_writers < 1 || config.store_writers > 16) {
            return bad("config: 'store.writers' must be 1-16");
        }
    }
    if (const auto* engine = root["engine"].as_table()) {
        if (auto e = check_keys(
                *engine, "engine.", {"node_id", "concurrency", "lease_s", "remote_lease_s"}
            )) {
            return e;
        }
        if (auto e = read_value(*engine, "node_id", "engine.", config.engine.node_id)) {
            return e;
        }
        if (auto e = read_value(*engine, "concurrency", "engine.", config.engine.concurrency)) {
            return e;
        }
        double lease_s = static_cast<double>(config.engine.lease_ms) / 1000;
        double remote_lease_s = static_cast<double>(config.engine.remote_lease_ms) / 1000;
        if (auto e = read_value(*engine, "lease_s", "engine.", lease_s)) {
            return e;
        }
        if (auto e = read_value(*engine, "remote_lease_s", "engine.", remote_lease_s)) {
            return e;
        }
        if (config.engine.concurrency < 1) {
            return bad("config: 'engine.concurrency' must be at least 1");
        }
        if (!(lease_s >= 1 && lease_s <= 3600) ||
            !(remote_lease_s >= 1 && remote_lease_s <= 3600)) {
            return bad(
                "config: 'engine.lease_s' and 'engine.remote_lease_s' must be between 1 and 3600"
            );
        }
        config.engine.lease_ms = static_cast<unix_ms>(lease_s * 1000);
        config.engine.remote_lease_ms = static_cast<unix_ms>(remote_lease_s * 1000);
    }
    if (const auto* types = root["types"].as_table()) {
        for (const auto& [name, node] : *types) {
            const auto* t = node.as_table();
            const std::string where = "types." + std::string(name.str()) + ".";
            if (!t) {
                return bad("config: '" + where + "' must be a table");
            }
            if (auto e = check_keys(
                    *t,
                    where,
                    {"executor",
                     "max_attempts",
                     "timeout_s",
                     "backoff_base_s",
                     "backoff_cap_s",
                     "concurrency"}
                )) {
                return e;
            }
            type_override o;
            o.name = std::string(name.str());
            for (auto e :
                 {read_optional(*t, "executor", where, o.executor),
                  read_optional(*t, "max_attempts", where, o.max_attempts),
                  read_optional(*t, "timeout_s", where, o.timeout_s),
                  read_optional(*t, "concurrency", where, o.concurrency),
                  read_optional(*t, "backoff_base_s", where, o.backoff_base_s),
                  read_optional(*t, "backoff_cap_s", where, o.backoff_cap_s)}) {
                if (e) {
                    return e;
                }
            }
            config.types.push_back(std::move(o));
        }
    }
    if (const auto* stream = root["stream"].as_table()) {
        if (auto e = check_keys(
                *stream,
                "stream.",
                {"heartbeat_s",
                 "queue_bytes",
                 "max_topics",
                 "retention_interval_s",
                 "delta_interval_ms"}
            )) {
            return e;
        }
        // How long token deltas gather before they are written as one event: lower is
        // snappier, higher writes fewer events (bench/README.md has the trade-off).
        std::int64_t delta_ms = config.engine.deltas.flush_interval.count();
        if (auto e = read_value(*stream, "delta_interval_ms", "stream.", delta_ms)) {
            return e;
        }
        if (delta_ms < 1 || delta_ms > 10'000) {
            return bad("config: [stream] delta_interval_ms must be 1-10000");
        }
        config.engine.deltas.flush_interval = std::chrono::milliseconds(delta_ms);
        double retention_s = static_cast<double>(config.retention_interval.count()) / 1000;
        if (auto e = read_value(*stream, "retention_interval_s", "stream.", retention_s)) {
            return e;
        }
        if (!(retention_s >= 0.1 && retention_s <= 86400)) {
            return bad("config: [stream] retention_interval_s must be 0.1-86400");
        }
        config.retention_interval =
            std::chrono::milliseconds(static_cast<std::int64_t>(retention_s * 1000));
        double heartbeat_s = static_cast<double>(config.stream.heartbeat.count()) / 1000;
        if (auto e = read_value(*stream, "heartbeat_s", "stream.", heartbeat_s)) {
            return e;
        }
        if (auto e = read_value(*stream, "queue_bytes", "stream.", config.stream.queue_bytes)) {
            return e;
        }
        if (auto e = read_value(*stream, "max_topics", "stream.", config.stream.max_topics)) {
            return e;
        }
        if (!(heartbeat_s >= 0.05 && heartbeat_s <= 3600) || config.stream.queue_bytes < 4096 ||
            config.stream.max_topics < 1) {
            return bad(
                "config: [stream] heartbeat_s must be 0.05-3600, queue_bytes at least 4096, "
                "max_topics at least 1"
            );
        }
        config.stream.heartbeat =
            std::chrono::milliseconds(static_cast<std::int64_t>(heartbeat_s * 1000));
    }
    if (auto e = read_value(root, "default_provider", "", config.default_provider)) {
        return e;
    }
    if (const auto* providers = root["providers"].as_table()) {
        for (const auto& [name, node] : *providers) {
            const auto* t = node.as_table();
            const std::string where = "providers." + std::string(name.str()) + ".";
            if (!t) {
                return bad("config: '" + where + "' must be a table");
            }
            if (auto e = check_keys(
                    *t,
                    where,
                    {"base_url",
                     "api_key_env",
                     "max_concurrency",
                     "connect_timeout_s",
                     "first_token_timeout_s",
                     "idle_timeout_s",
                     "max_retries",
                     "tokens_per_s",
                     "tokens_per_minute",
                     "usd_per_day",
                     "reserve_output_tokens",
                     "usd_per_million_tokens"}
                )) {
                return e;
            }
            provider_config p;
            p.name = std::string(name.str());
            for (auto e :
                 {read_value(*t, "base_url", where, p.base_url),
                  read_value(*t, "api_key_env", where, p.api_key_env),
                  read_value(*t, "max_concurrency", where, p.max_concurrency),
                  read_value(*t, "connect_timeout_s", where, p.connect_timeout_s),
                  read_value(*t, "first_token_timeout_s", where, p.first_token_timeout_s),
                  read_value(*t, "idle_timeout_s", where, p.idle_timeout_s),
                  read_value(*t, "max_retries", where, p.max_retries),
                  read_value(*t, "tokens_per_s", where, p.tokens_per_s),
                  read_value(*t, "tokens_per_minute", where, p.budget.tokens_per_minute),
                  read_value(*t, "usd_per_day", where, p.budget.usd_per_day),
                  read_value(*t, "reserve_output_tokens", where, p.budget.reserve_output_tokens),
                  read_value(
                      *t, "usd_per_million_tokens", where, p.budget.usd_per_million_tokens
                  )}) {
                if (e) {
                    return e;
                }
            }
            if (p.max_concurrency < 1 || p.max_retries < 0 || p.max_retries > 10 ||
                !(p.connect_timeout_s > 0) || !(p.first_token_timeout_s > 0) ||
                !(p.idle_timeout_s > 0) || !(p.tokens_per_s >= 0)) {
                return bad(
                    "config: '" + where +
                    "' needs max_concurrency >= 1, max_retries 0-10, positive timeouts, "
                    "tokens_per_s >= 0"
                );
            }
            const auto& b = p.budget;
            // Written as !(x >= 0) so NaN is refused too.
            if (b.tokens_per_minute < 0 || !(b.usd_per_day >= 0) || b.reserve_output_tokens < 0 ||
                !(b.usd_per_million_tokens >= 0) || b.usd_per_day > 1e9 ||
                b.usd_per_million_tokens > 1e9) {
                return bad(
                    "config: '" + where +
                    "' needs tokens_per_minute, usd_per_day, reserve_output_tokens and "
                    "usd_per_million_tokens >= 0 (0: no budget) and below 1e9"
                );
            }
            config.providers.push_back(std::move(p));
        }
    }
    if (const auto* c = root["council"].as_table()) {
        if (auto e = check_keys(
                *c,
                "council.",
                {"members", "chairman", "chairman_fallback", "title_model", "self_ranking"}
            )) {
            return e;
        }
        council::council_settings settings;
        if (const auto* members = c->get("members")) {
            const auto* list = members->as_array();
            if (list == nullptr || list->empty()) {
                return bad("config: 'council.members' must be a non-empty list of model ids");
            }
            for (const auto& m : *list) {
                auto id = m.value<std::string>();
                if (!id || id->empty()) {
                    return bad("config: 'council.members' must be a list of model ids");
                }
                settings.members.push_back(*id);
            }
        }
        for (auto e :
             {read_value(*c, "chairman", "council.", settings.chairman),
              read_value(*c, "chairman_fallback", "council.", settings.chairman_fallback),
              read_value(*c, "title_model", "council.", settings.title_model),
              read_value(*c, "self_ranking", "council.", settings.self_ranking)}) {
            if (e) {
                return e;
            }
        }
        if (settings.members.empty() || settings.chairman.empty()) {
            return bad("config: [council] needs 'members' and 'chairman'");
        }
        config.council = std::move(settings);
    }
    if (const auto* node = root.get("retention")) {
        const auto* rules = node->as_array();
        if (rules == nullptr) {
            return bad("config: 'retention' must be an array of tables ([[retention]])");
        }
        for (std::size_t idx = 0; idx < rules->size(); ++idx) {
            const auto* rule = rules->get(idx)->as_table();
            const std::string where = "retention[" + std::to_string(idx) + "].";
            if (rule == nullptr) {
                return bad("config: '" + where + "' must be a table");
            }
            if (auto e = check_keys(*rule, where, {"prefix", "max_age_s", "max_events"})) {
                return e;
            }
            events::retention_rule r;
            std::int64_t max_age_s = 0;
            for (auto e :
                 {read_value(*rule, "prefix", where, r.prefix),
                  read_value(*rule, "max_age_s", where, max_age_s),
                  read_value(*rule, "max_events", where, r.max_events)}) {
                if (e) {
                    return e;
                }
            }
            if (max_age_s < 0 || r.max_events < 0 || (max_age_s == 0 && r.max_events == 0)) {
                return bad(
                    "config: '" + where +
                    "' needs max_age_s and/or max_events, each positive (0 or absent: no limit)"
                );
            }
            r.max_age = std::chrono::seconds(max_age_s);
            config.retention.push_back(std::move(r));
        }
    }
    if (const auto* queues = root["queues"].as_table()) {
        for (const auto& [name, node] : *queues) {
            const auto* q = node.as_table();
            const std::string where = "queues." + std::string(name.str()) + ".";
            if (!q) {
                return bad("config: '" + where + "' must be a table");
            }
            if (auto e = check_keys(*q, where, {"concurrency"})) {
                return e;
            }
            int concurrency = 0;
            if (auto e = read_value(*q, "concurrency", where, concurrency)) {
                return e;
            }
            config.queue_limits.emplace_back(std::string(name.str()), concurrency);
        }
    }
    return std::nullopt;
}

void apply_env(app_config& config) {
    auto env = [](const char* name) -> std::optional<std::string> {
        const char* v = std::getenv(name);
        return v && *v ? std::optional<std::string>(v) : std::nullopt;
    };
    if (auto v = env("CONCLAVE_LISTEN")) {
        config.listen = *v;
    }
    if (auto v = env("CONCLAVE_DB")) {
        config.db = *v;
    }
    if (auto v = env("CONCLAVE_NODE_ID")) {
        config.engine.node_id = *v;
    }
    if (auto v = env("CONCLAVE_LOG_LEVEL")) {
        config.log_level = *v;
    }
}

}  // namespace

std::string default_node_id() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') {
        return "node";
    }
    return name;
}

result<app_config> load_config(const std::optional<std::string>& file) {
    app_config config;
    config.engine.node_id = default_node_id();
    if (file) {
        try {
            const toml::table root = toml::parse_file(*file);
            if (auto e = apply_file(config, root)) {
                return *e;
            }
            config.config_file = *file;
        } catch (const toml::parse_error& e) {
            return bad("config " + *file + ": " + std::string(e.description()));
        }
    }
    apply_env(config);
    return config;
}

result<std::pair<std::string, std::uint16_t>> parse_listen(const std::string& listen) {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos || colon == 0) {
        return bad("listen address must be HOST:PORT, not '" + listen + "'");
    }
    std::string host = listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    const std::string port_text = listen.substr(colon + 1);
    unsigned port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() ||
        port > 65535) {
        return bad("listen port must be 0-65535, not '" + port_text + "'");
    }
    return std::pair{host, static_cast<std::uint16_t>(port)};
}

result<store_url> parse_store_url(const std::string& db_url) {
    if (db_url.starts_with("sqlite://")) {
        return store_url{store_url::sqlite, db_url.substr(9)};
    }
    if (db_url.starts_with("sqlite:")) {
        return store_url{store_url::sqlite, db_url.substr(7)};
    }
    if (db_url.starts_with("postgres://") || db_url.starts_with("postgresql://")) {
        return store_url{store_url::postgres, db_url};
    }
    return bad(
        "database URL must be sqlite:PATH or postgres://USER@HOST:PORT/DB, not '" + db_url + "'"
    );
}

result<std::string> sqlite_path(const std::string& db_url) {
    auto url = parse_store_url(db_url);
    if (!url) {
        return url.error();
    }
    if (url->kind != store_url::sqlite) {
        return bad("'" + db_url + "' is not a SQLite database");
    }
    return url->target;
}

result<jobs::registry> build_registry(const app_config& config, jobs::registry base) {
    jobs::registry types = std::move(base);
    for (const auto& o : config.types) {
        const jobs::type_config* existing = types.find(o.name);
        jobs::type_config t;
        if (existing) {
            t = *existing;
        }
        t.name = o.name;
        if (o.executor) {
            if (*o.executor == "remote") {
                if (existing && existing->exec == jobs::executor::in_process) {
                    return bad("config: types." + o.name + " is built in and runs in-process");
                }
                t.exec = jobs::executor::remote;
            } else if (*o.executor == "in_process" || *o.executor == "in-process") {
                if (!existing || existing->exec != jobs::executor::in_process) {
                    return bad(
                        "config: types." + o.name + ".executor: no in-process handler named '" +
                        o.name + "'"
                    );
                }
            } else {
                return bad(
                    "config: types." + o.name + ".executor must be \"remote\" or \"in_process\""
                );
            }
        } else if (!existing) {
            return bad("config: types." + o.name + " needs executor = \"remote\"");
        }
        // The bounds a submission's own settings have (jobs/submission.hpp).
        if (o.max_attempts) {
            if (*o.max_attempts < 1 || *o.max_attempts > jobs::max_attempts_limit) {
                return bad(
                    "config: types." + o.name + ".max_attempts must be 1-" +
                    std::to_string(jobs::max_attempts_limit)
                );
            }
            t.max_attempts = *o.max_attempts;
        }
        if (o.timeout_s && (*o.timeout_s < 0 || *o.timeout_s > jobs::max_timeout_s)) {
            return bad(
                "config: types." + o.name + ".timeout_s must be 0-" +
                std::to_string(jobs::max_timeout_s) + " (0: none)"
            );
        }
        t.timeout_s = o.timeout_s.value_or(t.timeout_s);
        t.concurrency = o.concurrency.value_or(t.concurrency);
        t.backoff_base_s = o.backoff_base_s.value_or(t.backoff_base_s);
        t.backoff_cap_s = o.backoff_cap_s.value_or(t.backoff_cap_s);
        types.add(std::move(t));
    }
    for (const auto& [queue, limit] : config.queue_limits) {
        types.set_queue_limit(queue, limit);
    }
    return types;
}

}  // namespace conclave::app
