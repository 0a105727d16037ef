#include "app/models.hpp"

#include <cstdlib>

#include "llm/budget.hpp"
#include "llm/metered_provider.hpp"
#include "llm/openai_client.hpp"
#include "llm/sim_provider.hpp"

namespace conclave::app {

namespace {

std::chrono::milliseconds seconds_of(double s) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000));
}

// The budgets' clock: they outlive any one request, so a static.
const clock& wall_clock() {
    static const system_clock clk;
    return clk;
}

std::string env_or_empty(const std::string& name) {
    if (name.empty()) {
        return {};
    }
    const char* v = std::getenv(name.c_str());
    return v != nullptr ? v : "";
}

}  // namespace

result<std::unique_ptr<models>> build_models(const app_config& config) {
    auto out = std::make_unique<models>();
    std::vector<provider_config> configured = config.providers;
    auto named = [&](const std::string& name) {
        return std::find_if(configured.begin(), configured.end(), [&](const auto& p) {
            return p.name == name;
        });
    };
    if (named("openrouter") == configured.end()) {
        configured.push_back({.name = "openrouter", .api_key_env = "OPENROUTER_API_KEY"});
    }
    if (named("sim") == configured.end()) {
        configured.push_back({.name = "sim"});
    }
    bool default_has_key = false;
    for (const auto& p : configured) {
        out->provider_list.push_back(provider_info{
            .name = p.name,
            .base_url = p.name == "sim"      ? ""
                        : p.base_url.empty() ? llm::openai_options{}.base_url
                                             : p.base_url,
            .api_key_env = p.api_key_env,
            .simulated = p.name == "sim",
            .has_key = !env_or_empty(p.api_key_env).empty(),
        });
        if (p.name == "sim") {
            auto sim = std::make_shared<llm::sim_provider>(llm::sim_options{
                .tokens_per_s = p.tokens_per_s, .answer_words = 80});
            out->providers.add(
                "sim", llm::budgeted("sim", p.budget, llm::metered("sim", sim), wall_clock())
            );
            continue;
        }
        llm::openai_options options;
        if (!p.base_url.empty()) {
            options.base_url = p.base_url;
        } else if (p.name != "openrouter") {
            return fail(
                errc::bad_request, "config: 'providers." + p.name + ".base_url' is required"
            );
        }
        options.api_key = env_or_empty(p.api_key_env);
        options.max_concurrency = p.max_concurrency;
        options.connect_timeout = seconds_of(p.connect_timeout_s);
        options.first_token_timeout = seconds_of(p.first_token_timeout_s);
        options.idle_timeout = seconds_of(p.idle_timeout_s);
        options.max_retries = p.max_retries;
        auto created = llm::openai_provider::create(std::move(options));
        if (!created) {
            return fail(
                errc::bad_request, "config: 'providers." + p.name + "': " + created.error().message
            );
        }
        if (p.name == config.default_provider && !env_or_empty(p.api_key_env).empty()) {
            default_has_key = true;
        }
        out->providers.add(
            p.name,
            llm::budgeted(p.name, p.budget, llm::metered(p.name, std::move(*created)), wall_clock())
        );
    }
    if (!out->providers.contains(config.default_provider)) {
        return fail(
            errc::bad_request,
            "config: 'default_provider' names '" + config.default_provider +
                "', which is not configured under [providers]"
        );
    }
    out->providers.set_default(config.default_provider);
    if (config.council) {
        out->council = *config.council;
    } else if (default_has_key) {
        out->council = council::council_settings{
            .members =
                {"openai/gpt-5.1",
                 "google/gemini-3-pro-preview",
                 "anthropic/claude-sonnet-4.5",
                 "x-ai/grok-4"},
            .chairman = "google/gemini-3-pro-preview",
            .chairman_fallback = "openai/gpt-5.1",
            .title_model = "google/gemini-2.5-flash",
            .self_ranking = true,
        };
    } else {
        out->council = council::simulated_council();
        out->simulated = true;
    }
    std::vector<std::pair<std::string, std::string>> used;
    for (const auto& m : out->council.members) {
        used.emplace_back("council.members", m);
    }
    used.emplace_back("council.chairman", out->council.chairman);
    if (!out->council.chairman_fallback.empty()) {
        used.emplace_back("council.chairman_fallback", out->council.chairman_fallback);
    }
    for (const auto& [key, model] : used) {
        // An explicit "NAME:" prefix must name a configured provider.
        const auto colon = model.find(':');
        if (colon != std::string::npos && model.find('/') > colon &&
            !out->providers.contains(model.substr(0, colon))) {
            return fail(
                errc::bad_request,
                "config: '" + key + "' model '" + model + "' names provider '" +
                    model.substr(0, colon) + "', which is not configured under [providers]"
            );
        }
    }
    return out;
}

}  // namespace conclave::app
