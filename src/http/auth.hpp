// http/auth.hpp: who may call what — API keys with scopes, short-lived subscribe tokens, and
// per-key request rates.
//
// Keys are configured by their SHA-256 (the server never holds a key itself) with scopes
// `read`, `submit`, `worker`, `admin` (admin implies the others). Every route needs one scope,
// derived from its method and pattern (`required_scope`); health checks and the UI's files are
// public. Without any key the server is open, which `serve` allows only on loopback.
//
// A subscribe token (`POST /v1/tokens/subscribe`) lets a browser read the topics named in it
// and nothing else, until it expires: "cst_" + base64url(JSON {t: [topics], exp}) + "." +
// base64url(HMAC-SHA256(secret, that JSON)). It is checked on every request and on every
// WebSocket subscribe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "http/message.hpp"

namespace conclave::http {

enum scope : unsigned {
    scope_read = 1U,
    scope_submit = 2U,
    scope_worker = 4U,
    scope_admin = 8U,
};

// "read,submit" → bits. Errors: bad_request naming the unknown scope.
result<unsigned> parse_scopes(std::string_view list);
std::string scopes_text(unsigned scopes);

struct api_key {
    std::string name;
    std::string sha256;  // hex of the key's SHA-256
    unsigned scopes = 0;
    double rate_per_s = 0;  // 0: the server's default
};

// A new random key ("ck_" + 43 base64url characters) and the hex SHA-256 to configure.
std::pair<std::string, std::string> new_api_key();
std::string sha256_hex(std::string_view data);

// Who made a request.
struct caller {
    std::string name;  // the key's name; "anonymous" when the server is open; "token"
    unsigned scopes = 0;
    // A subscribe token: only these topics, until `expires_at` (unix seconds).
    std::optional<std::vector<std::string>> topics;
    std::int64_t expires_at = 0;
    double rate_per_s = 0;  // the key's own rate (0: the server's default)

    bool is_token() const { return topics.has_value(); }
    // Whether this caller may read `topic` now. Errors: unauthorized (token expired),
    // forbidden (topic not in the token, or no read scope).
    std::optional<error> may_read(std::string_view topic, std::int64_t now_s) const;
};

// What a route needs: 0 for public routes.
unsigned required_scope(bhttp::verb method, std::string_view pattern);
// Routes a subscribe token may call (its topics' streams and snapshots).
bool token_route(bhttp::verb method, std::string_view pattern);

struct auth_options {
    std::vector<api_key> keys;  // none: open (serve allows that only on loopback)
    std::string token_secret;   // empty: a random one per process
    double rate_per_s = 0;      // per key, 0: unlimited
    double burst_s = 2;         // a key may burst this many seconds of its rate
    std::int64_t max_token_ttl_s = 3600;
    // Never open: with no keys nobody gets in (a server on the network whose last key was
    // revoked stays closed).
    bool require_keys = false;
};

class authenticator {
public:
    explicit authenticator(auth_options options);

    bool open() const;
    // Replaces the keys (config reloaded; a revoked key stops working at once).
    void set_keys(std::vector<api_key> keys);

    // Who sent `req` (Authorization: Bearer KEY|TOKEN, or ?token=TOKEN for browsers, whose
    // EventSource and WebSocket cannot set headers). Errors: unauthorized.
    result<caller> identify(
        const request& req, std::optional<std::string> query_token, std::int64_t now_s
    ) const;
    // Identifies and checks `scope` for a route; then the caller's rate. Errors:
    // unauthorized (401), forbidden (403), rate_limited (429, `retry_after_s` set).
    result<caller> authorize(
        const request& req,
        std::optional<std::string> query_token,
        bhttp::verb method,
        std::string_view pattern,
        std::chrono::steady_clock::time_point now,
        std::int64_t now_s,
        double* retry_after_s
    );

    // A token for `topics`, valid `ttl_s` seconds from `now_s`.
    std::string issue_token(
        const std::vector<std::string>& topics, std::int64_t ttl_s, std::int64_t now_s
    ) const;
    std::int64_t max_token_ttl_s() const { return options_.max_token_ttl_s; }

private:
    result<caller> verify_token(std::string_view token, std::int64_t now_s) const;
    bool take(
        const std::string& key,
        double rate,
        std::chrono::steady_clock::time_point now,
        double* retry_after_s
    );

    auth_options options_;
    std::shared_ptr<const std::vector<api_key>> keys_;
    mutable std::mutex mutex_;  // keys_ and buckets_
    struct bucket {
        double tokens = 0;
        std::chrono::steady_clock::time_point at{};
    };
    std::map<std::string, bucket> buckets_;
};

}  // namespace conclave::http
