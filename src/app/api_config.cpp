#include "app/api_config.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#ifndef CONCLAVE_VERSION
#define CONCLAVE_VERSION "unknown"
#endif

namespace conclave::app {
namespace {

namespace json = boost::json;

json::value model_or_null(const std::string& model) {
    return model.empty() ? json::value(nullptr) : json::value(model);
}

// The URL without what could carry a secret (user:password@, ?key=…, #…); "" when unparsable.
std::string public_url(const std::string& base_url) {
    auto parsed = boost::urls::parse_uri(base_url);
    if (!parsed) {
        return "";
    }
    boost::urls::url url(*parsed);
    url.remove_userinfo();
    url.remove_query();
    url.remove_fragment();
    return std::string(url.buffer());
}

}  // namespace

json::value config_body(const app_config& config, const models& llm_models) {
    const auto& c = llm_models.council;
    json::array members;
    for (const auto& m : c.members) {
        members.emplace_back(m);
    }
    json::array providers;
    for (const auto& p : llm_models.provider_list) {
        json::object item{{"name", p.name}, {"simulated", p.simulated}, {"has_key", p.has_key}};
        if (auto url = public_url(p.base_url); !url.empty()) {
            item["base_url"] = url;
        }
        if (!p.api_key_env.empty()) {
            item["api_key_env"] = p.api_key_env;
        }
        providers.push_back(std::move(item));
    }
    return json::object{
        {"council",
         json::object{
             {"members", std::move(members)},
             {"chairman", c.chairman},
             {"chairman_fallback", model_or_null(c.chairman_fallback)},
             {"title_model", model_or_null(c.title_model)},
             {"self_ranking", c.self_ranking},
         }},
        {"providers", std::move(providers)},
        {"default_provider", config.default_provider},
        {"simulated", llm_models.simulated},
        {"version", CONCLAVE_VERSION},
    };
}

void add_config_route(http::router& routes, const app_config& config, const models& llm_models) {
    auto body = std::make_shared<const json::value>(config_body(config, llm_models));
    routes.add(
        http::bhttp::verb::get,
        "/v1/config",
        [body](http::request_context&) -> net::awaitable<http::response> {
            co_return http::json_response(http::bhttp::status::ok, *body);
        }
    );
}

}  // namespace conclave::app
