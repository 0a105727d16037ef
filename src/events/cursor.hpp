// events/cursor.hpp: the compact cursor of a multi-topic stream, "topic@offset,topic@offset".
// It is the SSE `id:` of every event on such a stream, so the browser's own reconnect
// (Last-Event-ID) resumes every topic; a refreshed page passes it back as ?cursor=.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace conclave::events {

using cursor = std::vector<std::pair<std::string, std::int64_t>>;

std::string format_cursor(const cursor& c);

// nullopt for anything malformed: a bad topic name, a negative or non-numeric offset, an empty
// entry. Topic names never contain '@' or ','.
std::optional<cursor> parse_cursor(std::string_view text);

}  // namespace conclave::events
