// fuzz/cursor_topic_fuzz.cpp: what a client names streams and positions with — topic names
// (store::is_valid_topic), a multi-topic stream's cursor (events::parse_cursor, from
// Last-Event-ID or ?cursor=) and the integers of query strings and headers
// (http::parse_non_negative: ?after=, ?limit=, Last-Event-ID).
//
// Input: the text, as is, given to all three.
// Invariants (a violation traps, so libFuzzer saves the input):
//   - is_valid_topic agrees with a reference written from the documented rule: 1..200
//     characters, segments of [A-Za-z0-9_.-] joined by single ':', no empty segment;
//   - parse_cursor agrees with a reference: empty text is the empty cursor, otherwise
//     ','-separated entries `topic@digits` with a valid topic and an offset that fits int64
//     (from_chars also reads "-0" as 0, which is harmless); every topic of a parsed cursor is
//     valid, every offset >= 0, the entries are in the text's order, and format_cursor then
//     parse_cursor gives the same cursor back;
//   - parse_non_negative accepts exactly the decimal integers 0..INT64_MAX (and "-0"), with their
//     value; a refusal is bad_request naming the parameter.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "events/cursor.hpp"
#include "http/json_body.hpp"
#include "store/topic.hpp"

namespace {

using namespace conclave;

void check(bool ok) {
    if (!ok) {
        __builtin_trap();
    }
}

bool topic_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

// The documented rule, written the other way round: split on ':' and check each segment.
bool reference_topic(std::string_view name) {
    if (name.empty() || name.size() > 200) {
        return false;
    }
    std::size_t start = 0;
    for (;;) {
        const auto end = name.find(':', start);
        const auto segment =
            name.substr(start, end == std::string_view::npos ? name.npos : end - start);
        if (segment.empty()) {
            return false;
        }
        for (const char c : segment) {
            if (!topic_char(c)) {
                return false;
            }
        }
        if (end == std::string_view::npos) {
            return true;
        }
        start = end + 1;
    }
}

// A decimal integer in 0..INT64_MAX, digits only (or "-" and zeros, which from_chars reads as 0).
std::optional<std::int64_t> reference_number(std::string_view text) {
    const bool minus = text.starts_with('-');
    if (minus) {
        text.remove_prefix(1);
    }
    if (text.empty()) {
        return std::nullopt;
    }
    std::int64_t value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        const int digit = c - '0';
        if (value > (std::numeric_limits<std::int64_t>::max() - digit) / 10) {
            return std::nullopt;
        }
        value = value * 10 + digit;
    }
    if (minus && value != 0) {
        return std::nullopt;
    }
    return value;
}

std::optional<events::cursor> reference_cursor(std::string_view text) {
    events::cursor out;
    if (text.empty()) {
        return out;
    }
    for (;;) {
        const auto comma = text.find(',');
        const auto entry = text.substr(0, comma);
        const auto at = entry.find('@');  // a valid topic holds no '@'
        if (at == std::string_view::npos || !reference_topic(entry.substr(0, at))) {
            return std::nullopt;
        }
        const auto offset = reference_number(entry.substr(at + 1));
        if (!offset) {
            return std::nullopt;
        }
        out.emplace_back(std::string(entry.substr(0, at)), *offset);
        if (comma == std::string_view::npos) {
            return out;
        }
        text.remove_prefix(comma + 1);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(bytes), size);

    check(store::is_valid_topic(text) == reference_topic(text));

    const auto parsed = events::parse_cursor(text);
    check(parsed == reference_cursor(text));
    if (parsed) {
        for (const auto& [topic, offset] : *parsed) {
            check(store::is_valid_topic(topic) && offset >= 0);
        }
        check(events::parse_cursor(events::format_cursor(*parsed)) == parsed);
    }

    const auto number = http::parse_non_negative(text, "after");
    const auto expected = reference_number(text);
    check(number.has_value() == expected.has_value());
    if (number) {
        check(*number == *expected && *number >= 0);
    } else {
        check(number.error().code == errc::bad_request);
        check(number.error().message.find("'after'") != std::string::npos);
    }
    return 0;
}
