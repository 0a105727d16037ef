// app/models.hpp: the language models this server can call, from the configuration.
//
// Always: the simulator "sim" ([providers.sim] tokens_per_s). "openrouter" is configured by
// default (base URL https://openrouter.ai/api/v1, key in OPENROUTER_API_KEY); every other
// [providers.NAME] is an OpenAI-compatible endpoint. The council's default: [council] if
// configured; else, when the default provider has its API key, the design's four members;
// else the simulated council, so `make run` works with no key (its output is labelled).
#pragma once

#include <memory>

#include "app/config.hpp"
#include "council/council_job.hpp"
#include "llm/provider.hpp"

namespace conclave::app {

// What a provider is, for GET /v1/config: never its key.
struct provider_info {
    std::string name;
    std::string base_url;     // as configured (empty for "sim"); may hold secrets, see api_config
    std::string api_key_env;  // the variable's name; empty: none
    bool simulated = false;   // the built-in simulator
    bool has_key = false;     // api_key_env is set and not empty
};

struct models {
    llm::providers providers;
    std::vector<provider_info> provider_list;  // in configuration order, then openrouter, sim
    council::council_settings council;
    bool simulated = false;  // the council's default members are simulated
};

// Errors: bad_request naming the key (a bad base_url, a council model no provider serves).
result<std::unique_ptr<models>> build_models(const app_config& config);

}  // namespace conclave::app
