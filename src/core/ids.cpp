#include "core/ids.hpp"

#include <array>
#include <random>
#include <string_view>

namespace conclave {
namespace {

std::uint64_t random_u64() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return rng();
}

constexpr std::string_view hex_digits = "0123456789abcdef";

void append_hex(std::string& out, std::uint64_t value, int nibbles) {
    for (int shift = (nibbles - 1) * 4; shift >= 0; shift -= 4) {
        out.push_back(hex_digits[(value >> shift) & 0xF]);
    }
}

}  // namespace

std::string new_uuid_v7(std::int64_t unix_ms) {
    const auto ms = static_cast<std::uint64_t>(unix_ms) & 0xFFFF'FFFF'FFFFULL;
    const std::uint64_t rand_a = random_u64() & 0x0FFFULL;
    const std::uint64_t rand_b = random_u64() & 0x3FFF'FFFF'FFFF'FFFFULL;
    std::string out;
    out.reserve(36);
    append_hex(out, ms >> 16, 8);
    out.push_back('-');
    append_hex(out, ms & 0xFFFF, 4);
    out.push_back('-');
    append_hex(out, 0x7000 | rand_a, 4);
    out.push_back('-');
    append_hex(out, 0x8000 | (rand_b >> 48), 4);
    out.push_back('-');
    append_hex(out, rand_b & 0xFFFF'FFFF'FFFFULL, 12);
    return out;
}

std::string random_token() {
    std::string out;
    out.reserve(32);
    append_hex(out, random_u64(), 16);
    append_hex(out, random_u64(), 16);
    return out;
}

bool is_uuid(std::string_view s) {
    if (s.size() != 36) {
        return false;
    }
    for (std::size_t idx = 0; idx < s.size(); ++idx) {
        const char c = s[idx];
        if (idx == 8 || idx == 13 || idx == 18 || idx == 23) {
            if (c != '-') {
                return false;
            }
        } else if (hex_digits.find(c) == std::string_view::npos) {
            return false;
        }
    }
    return true;
}

}  // namespace conclave
