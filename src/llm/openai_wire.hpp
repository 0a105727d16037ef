// llm/openai_wire.hpp: the OpenAI chat-completions wire format — the request body, the streamed
// chunks, and error bodies. Pure functions, so the parsers can be tested and fuzzed alone.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "llm/provider.hpp"

namespace conclave::llm {

// {"model", "messages", "stream": true, "stream_options": {"include_usage": true}, …}
std::string chat_body(const chat_request& request);

struct chunk {
    std::string content;        // the text this chunk adds (may be empty)
    std::string finish_reason;  // set on the last content chunk
    std::optional<llm::usage> usage;
    std::optional<std::string> error;  // an error reported inside the stream
    bool done = false;                 // the "[DONE]" sentinel
};

// One `data:` payload of the stream; nullopt when it is not a chunk (malformed JSON or shape).
std::optional<chunk> parse_chunk(std::string_view data);

// The provider's message from an error body ({"error": {"message"}} or {"error": "…"} or
// {"detail": …}), else the body itself, shortened.
std::string error_message(int status, std::string_view body);

}  // namespace conclave::llm
