// fuzz/llm_stream_fuzz.cpp: a provider's streaming response, byte by hostile byte — the SSE
// decoder fed in pieces of any size, each payload parsed as an OpenAI chunk, the body also read
// as an error body.
//
// Input: two control bytes, then the stream.
//   byte 0: bits 0-5 → the largest piece (1..64); bits 6-7 → max_line (1 MiB, 16, 64, 256),
//           small limits to reach the overlong-line path.
//   byte 1: seed of the piece sizes (each 0..largest: empty feeds are legal too).
// Invariant, whatever the splitting: the payloads of the split feeding equal those of one feed
// of the whole stream; when the split feeding failed (a line over max_line), they are a prefix of
// them, and the decoder stays failed. A violation traps, so libFuzzer saves the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llm/openai_wire.hpp"
#include "llm/sse_decoder.hpp"

namespace {

using conclave::llm::sse_decoder;

void check(bool ok) {
    if (!ok) {
        __builtin_trap();
    }
}

constexpr std::size_t max_lines[] = {std::size_t{1} << 20, 16, 64, 256};

// Each payload through the chunk parser, with what must hold for any parsed chunk.
void parse(std::string_view data) {
    const auto c = conclave::llm::parse_chunk(data);
    if (data == "[DONE]") {
        check(c && c->done);
    } else if (c) {
        check(!c->done);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    const std::size_t largest = (bytes[0] & 0x3f) + 1;
    const std::size_t max_line = max_lines[bytes[0] >> 6];
    std::uint32_t rng = 0x9e3779b9U ^ bytes[1];  // xorshift32: never 0, so never stuck
    const std::string_view stream(reinterpret_cast<const char*>(bytes) + 2, size - 2);

    // One feed of the whole stream: the reference.
    std::vector<std::string> whole;
    sse_decoder whole_decoder(max_line);
    const bool whole_ok =
        whole_decoder.feed(stream, [&](std::string_view data) { whole.emplace_back(data); });

    // The same stream in pieces: state (a partial line, a CR awaiting its LF, an event's data
    // lines) must carry across feed() calls exactly.
    std::vector<std::string> split;
    sse_decoder split_decoder(max_line);
    bool split_ok = true;
    for (std::size_t pos = 0; pos <= stream.size();) {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        const std::size_t piece = rng % (largest + 1);
        const auto before = split.size();
        const bool ok = split_decoder.feed(stream.substr(pos, piece), [&](std::string_view data) {
            split.emplace_back(data);
        });
        if (!split_ok) {
            check(!ok && split.size() == before);  // failed stays failed, and silent
        }
        split_ok = split_ok && ok;
        if (pos == stream.size()) {
            break;  // one (empty) feed at the end too
        }
        pos += std::min(piece, stream.size() - pos);
    }

    if (split_ok) {
        // Limits are checked only at the end of a feed, and the last piece ends in the same
        // state as the whole feed: so if every piece passed, the whole feed passes too.
        check(whole_ok);
        check(split == whole);
    } else {
        // The failing feed still decoded its own bytes; later ones decode nothing.
        check(split.size() <= whole.size());
        check(std::equal(split.begin(), split.end(), whole.begin()));
    }
    for (const auto& data : whole) {
        parse(data);
    }
    parse(stream);  // raw JSON too: not every input happens to spell "data:"

    // A non-2xx response's body; the status only shows when the body is empty.
    const int status = 400 + bytes[1] % 200;
    const auto message = conclave::llm::error_message(status, stream);
    if (stream.empty()) {
        check(message == "HTTP " + std::to_string(status));
    }
    return 0;
}
