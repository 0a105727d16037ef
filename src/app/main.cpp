// conclave: durable background jobs with live, resumable event streams — one binary for the
// server (`conclave serve`) and its command-line client.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "app/cli_commands.hpp"
#include "app/config.hpp"
#include "app/keys.hpp"
#include "app/serve.hpp"

#ifdef CONCLAVE_WITH_JEMALLOC
// Read by jemalloc at startup (see src/CMakeLists.txt). Its default keeps freed pages for 10 s
// before giving them back, which let a burst (a flood fanned out to stalled SSE clients) pin
// twice glibc's peak RSS; after 1 s, and unmapped at once, the peak is glibc's again while the
// throughput stays jemalloc's (measured with cluster_bench and StreamTest's memory budget test).
extern "C" {
const char* malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";
}
#endif

int main(int argc, char** argv) {
    using namespace conclave::app;
    CLI::App cli{"Conclave: durable background jobs and live, resumable event streams"};
    cli.require_subcommand(1);
    const char* env_url = std::getenv("CONCLAVE_URL");
    std::string server_url = env_url ? env_url : "http://127.0.0.1:8080";
    cli.add_option("--server", server_url, "server URL for client commands (env CONCLAVE_URL)");

    auto* serve_cmd = cli.add_subcommand("serve", "run the server");
    std::optional<std::string> config_file, listen, db, node_id, log_level, log_format;
    std::optional<int> concurrency;
    serve_cmd->add_option("--config", config_file, "TOML configuration file")
        ->check(CLI::ExistingFile);
    serve_cmd->add_option(
        "--listen", listen, "HOST:PORT to listen on (default 127.0.0.1:8080; port 0 picks one)"
    );
    serve_cmd->add_option(
        "--db", db, "store URL: sqlite:PATH (default sqlite:./data/conclave.db) or postgres://…"
    );
    serve_cmd->add_option(
        "--node-id", node_id, "this node's lease owner name (default: host name)"
    );
    serve_cmd->add_option("--log-level", log_level, "trace, debug, info, warn, error");
    serve_cmd->add_option("--log-format", log_format, "text (default) or json: one object per line")
        ->check(CLI::IsMember({"text", "json"}));
    serve_cmd->add_option("--concurrency", concurrency, "in-process jobs running at once")
        ->check(CLI::Range(1, 100'000));

    auto* submit_cmd = cli.add_subcommand("submit", "submit a job");
    submit_args submit;
    submit_cmd->add_option("type", submit.type, "job type")->required();
    submit_cmd->add_option("--payload", submit.payload, "payload JSON");
    submit_cmd->add_option("--queue", submit.queue);
    submit_cmd->add_option("--priority", submit.priority, "higher runs first");
    submit_cmd->add_option("--delay", submit.delay_s, "seconds before it may run");
    submit_cmd->add_option("--max-attempts", submit.max_attempts);
    submit_cmd->add_option("--timeout", submit.timeout_s, "seconds per attempt");
    submit_cmd->add_option("--idempotency-key", submit.idempotency_key);
    submit_cmd->add_flag("--wait", submit.wait, "follow the job's events until it ends");

    auto* jobs_cmd = cli.add_subcommand("jobs", "list jobs, newest first");
    list_args list;
    jobs_cmd->add_option("--state", list.state, "queued, active, succeeded, failed, cancelled");
    jobs_cmd->add_option("--type", list.type);
    jobs_cmd->add_option("--queue", list.queue);
    jobs_cmd->add_option("--limit", list.limit)->check(CLI::Range(1, 1000));

    std::string job_id;
    auto* job_cmd = cli.add_subcommand("job", "show one job");
    job_cmd->add_option("id", job_id)->required();
    auto* cancel_cmd = cli.add_subcommand("cancel", "cancel a queued or active job");
    cancel_cmd->add_option("id", job_id)->required();
    auto* retry_cmd = cli.add_subcommand("retry", "re-queue a failed or cancelled job");
    retry_cmd->add_option("id", job_id)->required();

    auto* watch_cmd = cli.add_subcommand(
        "watch", "print a topic's events live; reconnects and resumes by itself"
    );
    std::string watch_topic;
    std::int64_t watch_after = 0;
    watch_cmd->add_option("topic", watch_topic, "e.g. job:ID or space:acme:runs")->required();
    watch_cmd->add_option("--after", watch_after, "start after this offset")
        ->check(CLI::NonNegativeNumber);

    auto* ask_cmd =
        cli.add_subcommand("ask", "ask the LLM council a question and watch it deliberate live");
    std::string question;
    std::string conversation;
    ask_cmd->add_option("question", question, "what to ask")->required();
    ask_cmd->add_option("--conversation", conversation, "continue this conversation (its id)");

    auto* keys_cmd = cli.add_subcommand(
        "keys", "manage API keys in a configuration file (the server reloads it by itself)"
    );
    keys_cmd->require_subcommand(1);
    std::string keys_file;
    std::string key_name;
    std::string key_scopes;
    double key_rate = 0;
    auto* keys_create = keys_cmd->add_subcommand("create", "create a key; prints it once");
    keys_create->add_option("name", key_name, "the key's name")->required();
    keys_create->add_option("--scopes", key_scopes, "comma-separated: read, submit, worker, admin")
        ->required();
    keys_create->add_option("--rate", key_rate, "requests per second allowed (0: the default)")
        ->check(CLI::NonNegativeNumber);
    keys_create->add_option("--config", keys_file, "the TOML file the server reads (--config)")
        ->required();
    auto* keys_list = keys_cmd->add_subcommand("list", "list the keys (names and scopes)");
    keys_list->add_option("--config", keys_file, "the TOML file")
        ->required()
        ->check(CLI::ExistingFile);
    auto* keys_revoke = keys_cmd->add_subcommand("revoke", "remove a key");
    keys_revoke->add_option("name", key_name, "the key's name")->required();
    keys_revoke->add_option("--config", keys_file, "the TOML file")
        ->required()
        ->check(CLI::ExistingFile);

    auto* migrate_cmd = cli.add_subcommand("migrate", "apply database migrations and exit");
    std::optional<std::string> migrate_db;
    migrate_cmd->add_option(
        "--db", migrate_db, "store URL (default from CONCLAVE_DB or sqlite:./data/conclave.db)"
    );

    CLI11_PARSE(cli, argc, argv);

    if (*serve_cmd) {
        auto config = load_config(config_file);
        if (!config) {
            std::cerr << "error: " << config.error().message << "\n";
            return 2;
        }
        if (listen) {
            config->listen = *listen;
        }
        if (db) {
            config->db = *db;
        }
        if (node_id) {
            config->engine.node_id = *node_id;
        }
        if (log_level) {
            config->log_level = *log_level;
        }
        if (log_format) {
            config->log_format = *log_format;
        }
        if (concurrency) {
            config->engine.concurrency = *concurrency;
        }
        return serve(*config);
    }
    if (*submit_cmd) {
        return cmd_submit(server_url, submit);
    }
    if (*jobs_cmd) {
        return cmd_jobs(server_url, list);
    }
    if (*job_cmd) {
        return cmd_job(server_url, job_id);
    }
    if (*cancel_cmd) {
        return cmd_cancel(server_url, job_id);
    }
    if (*retry_cmd) {
        return cmd_retry(server_url, job_id);
    }
    if (*watch_cmd) {
        return cmd_watch(server_url, watch_topic, watch_after);
    }
    if (*ask_cmd) {
        return cmd_ask(server_url, question, conversation);
    }
    if (*keys_create) {
        return cmd_keys_create(keys_file, key_name, key_scopes, key_rate);
    }
    if (*keys_list) {
        return cmd_keys_list(keys_file);
    }
    if (*keys_revoke) {
        return cmd_keys_revoke(keys_file, key_name);
    }
    if (*migrate_cmd) {
        auto config = load_config(std::nullopt);
        return cmd_migrate(migrate_db.value_or(config ? config->db : "sqlite:./data/conclave.db"));
    }
    return 0;
}
