// tests/support/fake_llm_stats.hpp: what tools/fake-llm says it served (GET /stats).
#pragma once

#include <string>

#include <boost/json.hpp>

#include "http/client.hpp"

namespace conclave::test {

// The calls of `kind` ("answer", "ranking", "synthesis", "title") fake-llm at `url` served
// for `model`; 0 when none.
inline int fake_llm_calls(
    const std::string& url, const std::string& model, const std::string& kind
) {
    const auto stats = boost::json::parse(http::client(url).get("/stats").body);
    const auto* m = stats.at("calls").as_object().if_contains(model);
    const auto* n = m ? m->as_object().if_contains(kind) : nullptr;
    return n ? static_cast<int>(n->as_int64()) : 0;
}

}  // namespace conclave::test
