// llm/sim_provider.hpp: the simulated provider — in-process, deterministic, no network.
//
// "sim:NAME" models stream plausible text at a configurable pace, so a council runs with no
// API key (the default of `make run`) and tests need no server. It recognises the council's
// ranking prompt (it starts "You are evaluating", lists "Response A:", … and asks for a FINAL
// RANKING) and answers in that format, and the title prompt. The same model and prompt always
// give the same text. Everything it writes is marked simulated.
#pragma once

#include "llm/provider.hpp"

namespace conclave::llm {

struct sim_options {
    double tokens_per_s = 40;  // 0: as fast as possible
    int answer_words = 80;
};

class sim_provider final : public provider {
public:
    explicit sim_provider(sim_options options = {}) : options_(options) {}
    net::awaitable<result<completion>> stream(chat_request request, delta_sink on_delta) override;
    bool simulated() const override { return true; }

    // The whole text the model would stream for `request` (tests compare against it).
    std::string text_for(const chat_request& request) const;

private:
    sim_options options_;
};

}  // namespace conclave::llm
