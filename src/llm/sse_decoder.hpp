// llm/sse_decoder.hpp: reads the `data:` payloads of a Server-Sent Events stream incrementally,
// as bytes arrive in pieces of any size (an LLM provider's streaming response).
//
// Lines end in LF, CRLF or CR; a blank line ends an event; several `data:` lines of one event
// are joined with LF; comment lines (`:`) and other fields are ignored. A line longer than
// `max_line` is an error: a malformed or hostile stream cannot grow memory without bound.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace conclave::llm {

class sse_decoder {
public:
    explicit sse_decoder(std::size_t max_line = 1 << 20) : max_line_(max_line) {}

    // Calls on_data for each complete event's data. Returns false once a line is too long
    // (the decoder then stays failed).
    bool feed(std::string_view bytes, const std::function<void(std::string_view data)>& on_data);

private:
    void line(std::string_view text, const std::function<void(std::string_view)>& on_data);

    std::size_t max_line_;
    std::string partial_;  // an unfinished line
    std::string data_;     // the current event's data so far
    bool has_data_ = false;
    bool after_cr_ = false;  // the last byte was CR: a following LF belongs to it
    bool failed_ = false;
};

}  // namespace conclave::llm
