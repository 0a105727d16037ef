// core/text.hpp: telling text from bytes. Names, ids, keys and messages reach the stores as
// text: PostgreSQL refuses invalid UTF-8 and cuts a text parameter at its first NUL, so both
// are refused where requests come in, before either store sees them.
#pragma once

#include <cstddef>
#include <string_view>

namespace conclave {

// The length of the valid UTF-8 sequence of two to four bytes starting at s[at], or 0 when
// there is none (ASCII bytes are not looked at: callers handle them first). Overlong forms,
// surrogates and code points past U+10FFFF are not UTF-8.
std::size_t utf8_sequence(std::string_view s, std::size_t at) noexcept;

// True when `s` is valid UTF-8 without a NUL character.
bool is_text(std::string_view s) noexcept;

}  // namespace conclave
