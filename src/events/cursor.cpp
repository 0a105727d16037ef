#include "events/cursor.hpp"

#include <charconv>

#include "store/topic.hpp"

namespace conclave::events {

std::string format_cursor(const cursor& c) {
    std::string out;
    for (const auto& [topic, offset] : c) {
        if (!out.empty()) {
            out += ',';
        }
        out += topic;
        out += '@';
        out += std::to_string(offset);
    }
    return out;
}

std::optional<cursor> parse_cursor(std::string_view text) {
    cursor out;
    if (text.empty()) {
        return out;
    }
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto end = std::min(text.find(',', start), text.size());
        const auto entry = text.substr(start, end - start);
        const auto at = entry.rfind('@');
        if (at == std::string_view::npos) {
            return std::nullopt;
        }
        const auto topic = entry.substr(0, at);
        const auto number = entry.substr(at + 1);
        std::int64_t offset = 0;
        auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), offset);
        if (!store::is_valid_topic(topic) || number.empty() || ec != std::errc() ||
            ptr != number.data() + number.size() || offset < 0) {
            return std::nullopt;
        }
        out.emplace_back(std::string(topic), offset);
        start = end + 1;
    }
    return out;
}

}  // namespace conclave::events
