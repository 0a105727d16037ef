// council/council_job.hpp: the LLM council as a durable job (type `council`).
//
// Payload: {question, history?: [{role, content}], members?, chairman?, chairman_fallback?,
// self_ranking?, title_model?, conversation_id?, title?} — absent settings come from the
// server's [council] configuration. With a conversation_id, the earlier turns are read from the
// conversation (the messages before the one this job answers); with title: true, the title
// model names the conversation alongside stage 1 (step "title", event `title {title, model}`).
//   Stage 1: every member answers (with the earlier turns), streaming `stage1.delta` into part
//            "stage1/MODEL"; each answer is a step, so a retried job never pays for it twice.
//   Stage 2: the answers, labelled "Response A…" in an order shuffled by the job id (the same on
//            every attempt), are ranked by every member (`stage2.delta`, part "stage2/MODEL");
//            rankings are parsed strictly then leniently and aggregated by mean position.
//   Stage 3: the chairman (or, if it fails, the fallback) writes the final answer
//            (`stage3.delta`, part "stage3/MODEL").
// Events: stageN.start, stage1.model_complete / stage2.model_complete {model, error?},
// stage1.complete {results: [{model, response, error?}]}, stage2.complete {label_to_model,
// aggregate_rankings, results: [{model, ranking, parsed_ranking, error?}]}, stage3.complete
// {model, response, error?} — each complete event carries its stage whole, so a client that
// joins late (or the llm-council wire format) needs no other event.
// A member that fails is reported with its error and the council goes on; if every member
// fails, the result says so. The result: {stage1, stage2, stage3, metadata}.
#pragma once

#include <string>
#include <vector>

#include "jobs/registry.hpp"
#include "llm/provider.hpp"

namespace conclave::council {

struct council_settings {
    std::vector<std::string> members;
    std::string chairman;
    std::string chairman_fallback;  // empty: none
    std::string title_model;
    bool self_ranking = true;
};

// The simulated council: used when no provider has an API key.
council_settings simulated_council();

// Registers the in-process `council` type. `models` and `defaults` outlive the registry.
void add_council_type(
    jobs::registry& types, const llm::providers& models, const council_settings& defaults
);

}  // namespace conclave::council
