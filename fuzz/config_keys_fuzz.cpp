// fuzz/config_keys_fuzz.cpp: the configuration file's access control — TOML text through
// toml::parse (toml++), then app::parse_keys ([[keys]]) and app::parse_auth ([auth]), the way
// the server reads and reloads its config.
//
// Input: the TOML text, as is. toml::parse_error is the normal refusal of bad TOML.
// Invariants (a violation traps, so libFuzzer saves the input):
//   - accepted keys have unique names of 1-64 [A-Za-z0-9_.-], a SHA-256 of 64 lowercase hex
//     digits, scopes that are a non-empty subset of read|submit|worker|admin and a rate that is
//     a finite number >= 0; there is one per [[keys]] table; written back as TOML they read the
//     same; a refusal is bad_request with a message naming the config;
//   - an accepted [auth] has a secret of at least 32 characters (or none: a random one), finite
//     rates >= 0 and a token ttl >= 1, and works: a token issued with the longest ttl it allows
//     is accepted now (a now decades ahead) and refused once that ttl is over; the server is
//     open exactly when no key is configured.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "app/keys.hpp"
#include "http/auth.hpp"

namespace {

using namespace conclave;

void check(bool ok) {
    if (!ok) {
        __builtin_trap();
    }
}

// Now, in unix seconds, as the server would see it for decades to come.
constexpr std::int64_t now = 4'000'000'000;

bool key_name(const std::string& name) {
    if (name.empty() || name.size() > 64) {
        return false;
    }
    for (const char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

void check_keys(const toml::table& root, const std::vector<http::api_key>& keys) {
    const auto* list = root["keys"].as_array();
    check(list != nullptr ? list->size() == keys.size() : keys.empty());
    std::set<std::string> names;
    for (const auto& k : keys) {
        check(key_name(k.name) && names.insert(k.name).second);
        check(k.sha256.size() == 64);
        check(k.sha256.find_first_not_of("0123456789abcdef") == std::string::npos);
        check(k.scopes != 0 && k.scopes <= 15);
        check(std::isfinite(k.rate_per_s) && k.rate_per_s >= 0);
    }

    // Written back, the way `conclave keys create` spells a key, they read the same.
    toml::array tables;
    for (const auto& k : keys) {
        toml::array scopes;
        for (const auto& s : {"read", "submit", "worker", "admin"}) {
            if (http::scopes_text(k.scopes).find(s) != std::string::npos) {
                scopes.push_back(s);
            }
        }
        toml::table t{{"name", k.name}, {"sha256", k.sha256}, {"scopes", scopes}};
        if (k.rate_per_s > 0) {
            t.insert("rate_per_s", k.rate_per_s);
        }
        tables.push_back(std::move(t));
    }
    std::ostringstream text;
    text << toml::table{{"keys", std::move(tables)}};
    const auto again = app::parse_keys(toml::parse(text.str()));
    check(again.has_value() && again->size() == keys.size());
    for (std::size_t idx = 0; idx < keys.size(); ++idx) {
        const auto& a = keys[idx];
        const auto& b = (*again)[idx];
        check(a.name == b.name && a.sha256 == b.sha256 && a.scopes == b.scopes);
        check(a.rate_per_s == b.rate_per_s);
    }
}

void check_auth(const http::auth_options& options, const std::vector<http::api_key>& keys) {
    check(options.token_secret.empty() || options.token_secret.size() >= 32);
    check(std::isfinite(options.rate_per_s) && options.rate_per_s >= 0);
    check(std::isfinite(options.burst_s) && options.burst_s >= 0);
    check(options.max_token_ttl_s >= 1);

    auto with_keys = options;
    with_keys.keys = keys;
    const http::authenticator auth(with_keys);
    const std::int64_t ttl = options.max_token_ttl_s;
    const auto token = auth.issue_token({"space:fuzz"}, ttl, now);
    http::request req{http::bhttp::verb::get, "/v1/stream", 11};
    const auto who = auth.identify(req, token, now);
    check(who.has_value() && who->is_token() && who->expires_at == now + ttl);
    check(!auth.identify(req, token, now + ttl));
    check(auth.open() == keys.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(bytes), size);
    toml::table root;
    try {
        root = toml::parse(text);
    } catch (const toml::parse_error&) {
        return 0;
    }

    const auto keys = app::parse_keys(root);
    if (keys) {
        check_keys(root, *keys);
    } else {
        check(keys.error().code == errc::bad_request);
        check(keys.error().message.starts_with("config: "));
    }

    http::auth_options options;
    const auto refused = app::parse_auth(root, options);
    if (refused) {
        check(refused->code == errc::bad_request && refused->message.starts_with("config: "));
        return 0;
    }
    check_auth(options, keys ? *keys : std::vector<http::api_key>{});
    return 0;
}
