// llm/metered_provider.hpp: a provider that counts every call it forwards (core/metrics.hpp).
//
// Per provider name and model: conclave_llm_calls_total, conclave_llm_errors_total{code} (the
// errc of a failed call, or "exception" for one that threw, e.g. when cancelled),
// conclave_llm_tokens_total{kind="prompt"|"completion"} and conclave_llm_cost_usd_total (what
// the provider reported), plus conclave_llm_call_duration_seconds{provider}. A call is counted
// once, however many times the client retried it. Model names come from requests, so only the
// first 100 distinct models of a provider get their own label; later ones are "other".
#pragma once

#include <memory>
#include <string>

#include "llm/provider.hpp"

namespace conclave::llm {

// `inner`, counted under provider `name`.
std::shared_ptr<provider> metered(std::string name, std::shared_ptr<provider> inner);

}  // namespace conclave::llm
