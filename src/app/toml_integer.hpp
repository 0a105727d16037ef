// app/toml_integer.hpp: a TOML value read as an integer without toml++'s undefined behaviour.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>

#include <toml++/toml.h>

namespace conclave::app {

// `node` as an integer: a TOML integer, or a float holding an integral value in range (`30.0`).
// toml++ 3.3's own value<int64_t>() converts any integral float with a plain cast, undefined
// for one out of range (config_keys_fuzz found `max_token_ttl_s = 9.2e77`).
inline std::optional<std::int64_t> toml_integer(const toml::node& node) {
    if (auto v = node.value_exact<std::int64_t>()) {
        return v;
    }
    if (auto d = node.value_exact<double>()) {
        // ±2^63 are exact doubles: every integral double in [-2^63, 2^63) fits.
        constexpr double limit = 9223372036854775808.0;
        if (std::isfinite(*d) && *d >= -limit && *d < limit && std::trunc(*d) == *d) {
            return static_cast<std::int64_t>(*d);
        }
    }
    return std::nullopt;
}

}  // namespace conclave::app
