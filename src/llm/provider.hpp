// llm/provider.hpp: one interface to every language model — stream a chat completion.
//
// Implementations: the OpenAI-compatible HTTP client (llm/openai_client.hpp: OpenRouter, OpenAI,
// Ollama, vLLM, llama.cpp, LM Studio, tools/fake-llm) and the in-process simulator
// (llm/sim_provider.hpp). `providers` routes a model id to one: "NAME:model" goes to provider
// NAME, anything else to the default provider.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/asio.hpp"
#include "core/error.hpp"

namespace conclave::llm {

struct chat_message {
    std::string role;  // "system", "user", "assistant"
    std::string content;
};

// A call held back by its provider's budget (llm/budget.hpp) before it starts.
struct budget_wait {
    std::string provider;
    std::string budget;         // "tokens_per_minute" or "usd_per_day"
    std::int64_t until_ms = 0;  // Unix ms when it is expected to fit
    double needed = 0;          // what the call reserves (tokens or USD)
    double available = 0;       // what the budget has left now
};

struct chat_request {
    std::string model;  // as the provider knows it (the "NAME:" prefix removed)
    std::vector<chat_message> messages;
    std::optional<double> temperature;
    // Told each time the call starts waiting for a budget (so the caller can show it); unset:
    // the call waits silently.
    std::function<net::awaitable<void>(budget_wait)> on_budget_wait;
};

struct usage {
    std::int64_t prompt_tokens = 0;
    std::int64_t completion_tokens = 0;
    std::optional<double> cost;  // USD, when the provider reports it
};

struct completion {
    std::string text;
    std::string finish_reason;
    llm::usage usage;
    bool simulated = false;
};

// Receives each piece of text as it streams. Awaited, so a slow consumer slows the read.
using delta_sink = std::function<net::awaitable<void>(std::string text)>;

class provider {
public:
    virtual ~provider() = default;
    // Errors: unavailable (connection, 5xx, 429 after retries, timeouts), bad_request (the
    // provider refused the request), unauthorized (auth), internal (a malformed stream). The
    // message is the provider's own where it gave one.
    virtual net::awaitable<result<completion>> stream(
        chat_request request, delta_sink on_delta
    ) = 0;
    virtual bool simulated() const { return false; }
};

// Routes model ids to providers.
class providers {
public:
    void add(std::string name, std::shared_ptr<provider> p);
    void set_default(std::string name) { default_ = std::move(name); }

    struct route {
        provider* target = nullptr;
        std::string model;  // the id without the provider prefix
    };
    // Errors: bad_request naming the model and the known providers.
    result<route> find(const std::string& model_id) const;
    bool contains(const std::string& name) const { return by_name_.contains(name); }

private:
    std::map<std::string, std::shared_ptr<provider>> by_name_;
    std::string default_;
};

}  // namespace conclave::llm
