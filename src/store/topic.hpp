// store/topic.hpp: topic names, `segment(:segment)*`, e.g. "job:0192…", "space:acme:runs".
#pragma once

#include <string_view>

namespace conclave::store {

constexpr std::size_t max_topic_length = 200;

// true when `name` is a valid topic name: 1..200 characters, segments of [A-Za-z0-9_.-]
// separated by single ':' characters, no empty segment.
bool is_valid_topic(std::string_view name) noexcept;

}  // namespace conclave::store
