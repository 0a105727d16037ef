// app/api_config.hpp: GET /v1/config — what a UI needs to offer council settings.
#pragma once

#include <boost/json/value.hpp>

#include "app/config.hpp"
#include "app/models.hpp"
#include "http/router.hpp"

namespace conclave::app {

// {council: {members, chairman, chairman_fallback, title_model, self_ranking},
//  providers: [{name, base_url?, api_key_env?, simulated, has_key}], default_provider,
//  simulated, version}. Never an API key: base_url loses its user info, query and fragment.
// An empty chairman_fallback or title_model is null.
boost::json::value config_body(const app_config& config, const models& llm_models);

// Adds GET /v1/config, answering config_body computed once (the configuration is fixed).
void add_config_route(http::router& routes, const app_config& config, const models& llm_models);

}  // namespace conclave::app
