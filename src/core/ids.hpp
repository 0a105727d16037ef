// core/ids.hpp: identifiers. Thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace conclave {

// A UUIDv7 (RFC 9562) in its canonical 36-character form. Time-ordered: ids made later sort
// later, which keeps B-tree inserts at the right edge of the index.
std::string new_uuid_v7(std::int64_t unix_ms);

// 32 hex characters of cryptographically irrelevant but unpredictable randomness (lease tokens).
std::string random_token();

// true when `s` is a canonical lower-case UUID (any version).
bool is_uuid(std::string_view s);

}  // namespace conclave
