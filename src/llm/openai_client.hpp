// llm/openai_client.hpp: an OpenAI-compatible chat-completions provider over HTTP or HTTPS.
//
// Works with any base URL that speaks the protocol: OpenRouter (the default), OpenAI, Ollama,
// vLLM, llama.cpp's server, LM Studio, and tools/fake-llm. Streams (`stream: true`) and reads
// SSE chunks until `[DONE]`: content deltas, finish_reason, usage and cost, in-stream errors.
// HTTPS verifies the server's certificate against the system's roots and its host name.
//
// Retries connect errors, 429 and 5xx — before any text has streamed — with exponential
// backoff that honours Retry-After; never 4xx auth or request errors. A stream that breaks
// after text has gone out is not retried (the text is already with the reader): that call
// fails with what happened. At most `max_concurrency` calls run at once per provider.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "llm/provider.hpp"

namespace conclave::llm {

struct openai_options {
    std::string base_url = "https://openrouter.ai/api/v1";
    std::string api_key;  // empty: no Authorization header (local servers)
    int max_concurrency = 16;
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds first_token_timeout{120'000};
    std::chrono::milliseconds idle_timeout{60'000};
    int max_retries = 3;
    std::chrono::milliseconds backoff_base{1'000};
    std::chrono::milliseconds backoff_cap{30'000};
};

class openai_provider final : public provider {
public:
    // Errors: bad_request for a base URL that is not http(s)://host[:port][/path].
    static result<std::shared_ptr<openai_provider>> create(openai_options options);

    net::awaitable<result<completion>> stream(chat_request request, delta_sink on_delta) override;

    ~openai_provider() override;

private:
    struct impl;
    explicit openai_provider(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace conclave::llm
