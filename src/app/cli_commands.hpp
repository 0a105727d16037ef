// app/cli_commands.hpp: the client subcommands of the `conclave` binary. Each talks to a
// running server over HTTP, prints for people, and returns the process exit code
// (0 success, 1 the server refused or the job failed, 2 usage or connection problems).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace conclave::app {

struct submit_args {
    std::string type;
    std::string payload = "{}";
    std::optional<std::string> queue;
    std::optional<int> priority;
    std::optional<double> delay_s;
    std::optional<int> max_attempts;
    std::optional<int> timeout_s;
    std::optional<std::string> idempotency_key;
    bool wait = false;
};

struct list_args {
    std::optional<std::string> state, type, queue;
    int limit = 20;
};

int cmd_submit(const std::string& server, const submit_args& args);
int cmd_jobs(const std::string& server, const list_args& args);
int cmd_job(const std::string& server, const std::string& id);
int cmd_cancel(const std::string& server, const std::string& id);
int cmd_retry(const std::string& server, const std::string& id);
// Prints a topic's events live from after `after`, reconnecting and resuming by itself.
int cmd_watch(const std::string& server, const std::string& topic, std::int64_t after);
int cmd_migrate(const std::string& db_url);
// Asks the council `question` (in a new conversation, or continuing `conversation`) and shows
// it live. Exit 0 when the council answered.
int cmd_ask(const std::string& server, const std::string& question, std::string conversation);

}  // namespace conclave::app
