#include "core/text.hpp"

namespace conclave {

std::size_t utf8_sequence(std::string_view s, std::size_t at) noexcept {
    const auto byte = [&](std::size_t idx) { return static_cast<unsigned char>(s[idx]); };
    const unsigned char lead = byte(at);
    std::size_t len = 0;
    unsigned min = 0;
    unsigned code = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
        len = 2, min = 0x80, code = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        len = 3, min = 0x800, code = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        len = 4, min = 0x10000, code = lead & 0x07;
    } else {
        return 0;
    }
    if (at + len > s.size()) {
        return 0;
    }
    for (std::size_t idx = 1; idx < len; ++idx) {
        const unsigned char c = byte(at + idx);
        if ((c & 0xC0) != 0x80) {
            return 0;
        }
        code = (code << 6) | (c & 0x3F);
    }
    if (code < min || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) {
        return 0;
    }
    return len;
}

bool is_text(std::string_view s) noexcept {
    for (std::size_t at = 0; at < s.size();) {
        const auto c = static_cast<unsigned char>(s[at]);
        if (c == 0) {
            return false;
        }
        if (c < 0x80) {
            ++at;
            continue;
        }
        const auto len = utf8_sequence(s, at);
        if (len == 0) {
            return false;
        }
        at += len;
    }
    return true;
}

}  // namespace conclave
