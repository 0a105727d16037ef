#include "http/auth.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include <boost/json.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

namespace conclave::http {
namespace json = boost::json;
namespace {

constexpr std::string_view key_prefix = "ck_";
constexpr std::string_view token_prefix = "cst_";

std::string base64url(const unsigned char* data, std::size_t size) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((size * 4 + 2) / 3);
    std::size_t idx = 0;
    for (; idx + 2 < size; idx += 3) {
        const unsigned v = (data[idx] << 16U) | (data[idx + 1] << 8U) | data[idx + 2];
        out += alphabet[(v >> 18U) & 63U];
        out += alphabet[(v >> 12U) & 63U];
        out += alphabet[(v >> 6U) & 63U];
        out += alphabet[v & 63U];
    }
    if (size - idx == 1) {
        const unsigned v = data[idx] << 16U;
        out += alphabet[(v >> 18U) & 63U];
        out += alphabet[(v >> 12U) & 63U];
    } else if (size - idx == 2) {
        const unsigned v = (data[idx] << 16U) | (data[idx + 1] << 8U);
        out += alphabet[(v >> 18U) & 63U];
        out += alphabet[(v >> 12U) & 63U];
        out += alphabet[(v >> 6U) & 63U];
    }
    return out;
}

std::string base64url(std::string_view text) {
    return base64url(reinterpret_cast<const unsigned char*>(text.data()), text.size());
}

std::optional<std::string> unbase64url(std::string_view text) {
    std::string out;
    unsigned acc = 0;
    int bits = 0;
    for (const char c : text) {
        int v = -1;
        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';
        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;
        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;
        } else if (c == '-') {
            v = 62;
        } else if (c == '_') {
            v = 63;
        } else {
            return std::nullopt;
        }
        acc = (acc << 6U) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> static_cast<unsigned>(bits)) & 0xFFU);
        }
    }
    return out;
}

std::string hmac(const std::string& secret, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int size = 0;
    HMAC(
        EVP_sha256(),
        secret.data(),
        static_cast<int>(secret.size()),
        reinterpret_cast<const unsigned char*>(data.data()),
        data.size(),
        mac.data(),
        &size
    );
    return base64url(mac.data(), size);
}

bool equal_in_constant_time(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_text(std::size_t bytes) {
    std::vector<unsigned char> buf(bytes);
    if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) {
        throw std::runtime_error("no randomness for keys");
    }
    return base64url(buf.data(), buf.size());
}

// The bearer credential of a request, if any.
std::optional<std::string> bearer(const request& req) {
    const auto value = req[bhttp::field::authorization];
    if (value.empty()) {
        return std::nullopt;
    }
    constexpr std::string_view scheme = "Bearer ";
    if (value.size() <= scheme.size() ||
        !std::equal(scheme.begin(), scheme.end(), value.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
        })) {
        return std::string();  // present but not a bearer credential: refused below
    }
    return std::string(value.substr(scheme.size()));
}

// The caller of an open server (no keys, on loopback): allowed everything.
caller anonymous() {
    return caller{
        .name = "anonymous", .scopes = scope_read | scope_submit | scope_worker | scope_admin};
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
    std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (const auto b : digest) {
        out += hex[b >> 4U];
        out += hex[b & 15U];
    }
    return out;
}

std::pair<std::string, std::string> new_api_key() {
    auto key = std::string(key_prefix) + random_text(32);
    auto hash = sha256_hex(key);
    return {std::move(key), std::move(hash)};
}

result<unsigned> parse_scopes(std::string_view list) {
    unsigned bits = 0;
    std::size_t start = 0;
    while (start <= list.size()) {
        auto end = list.find(',', start);
        if (end == std::string_view::npos) {
            end = list.size();
        }
        auto name = list.substr(start, end - start);
        while (!name.empty() && name.front() == ' ') {
            name.remove_prefix(1);
        }
        while (!name.empty() && name.back() == ' ') {
            name.remove_suffix(1);
        }
        if (name == "read") {
            bits |= scope_read;
        } else if (name == "submit") {
            bits |= scope_submit;
        } else if (name == "worker") {
            bits |= scope_worker;
        } else if (name == "admin") {
            bits |= scope_admin;
        } else {
            return fail(
                errc::bad_request,
                "unknown scope '" + std::string(name) + "' (expected read, submit, worker, admin)"
            );
        }
        start = end + 1;
    }
    return bits;
}

std::string scopes_text(unsigned scopes) {
    std::string out;
    const std::pair<unsigned, const char*> names[] = {
        {scope_read, "read"},
        {scope_submit, "submit"},
        {scope_worker, "worker"},
        {scope_admin, "admin"}};
    for (const auto& [bit, name] : names) {
        if ((scopes & bit) != 0U) {
            out += out.empty() ? "" : ",";
            out += name;
        }
    }
    return out;
}

std::optional<error> caller::may_read(std::string_view topic, std::int64_t now_s) const {
    if (!topics) {
        if ((scopes & (scope_read | scope_admin)) == 0U) {
            return fail(errc::forbidden, "this key may not read (it lacks the read scope)");
        }
        return std::nullopt;
    }
    if (now_s >= expires_at) {
        return fail(errc::unauthorized, "the subscribe token has expired; ask for a new one");
    }
    if (std::find(topics->begin(), topics->end(), topic) == topics->end()) {
        return fail(
            errc::forbidden, "the subscribe token does not name topic " + std::string(topic)
        );
    }
    return std::nullopt;
}

unsigned required_scope(bhttp::verb method, std::string_view pattern) {
    if (pattern.empty() || pattern == "/healthz" || pattern == "/readyz") {
        return 0;  // health checks and the UI's files
    }
    const bool worker_route =
        pattern == "/v1/workers/claim" || pattern == "/v1/jobs/{id}/heartbeat" ||
        pattern == "/v1/jobs/{id}/complete" || pattern == "/v1/jobs/{id}/fail" ||
        pattern.starts_with("/v1/jobs/{id}/steps") ||
        (pattern == "/v1/jobs/{id}/events" && method == bhttp::verb::post);
    if (worker_route) {
        return scope_worker;
    }
    if (pattern == "/v1/jobs:retry") {
        return scope_admin;
    }
    if (method == bhttp::verb::get || method == bhttp::verb::head) {
        return scope_read;
    }
    if (pattern == "/v1/tokens/subscribe") {
        return scope_read;  // a reader may hand a browser some of what it may read itself
    }
    return scope_submit;
}

bool token_route(bhttp::verb method, std::string_view pattern) {
    if (method != bhttp::verb::get) {
        return false;
    }
    return pattern == "/v1/topics/{topic}/events" || pattern == "/v1/jobs/{id}/events" ||
           pattern == "/v1/jobs/{id}/snapshot" || pattern == "/v1/stream" || pattern == "/v1/ws";
}

authenticator::authenticator(auth_options options)
    : options_(std::move(options)),
      keys_(std::make_shared<const std::vector<api_key>>(options_.keys)) {
    if (options_.token_secret.empty()) {
        options_.token_secret = random_text(32);
    }
}

bool authenticator::open() const {
    std::lock_guard lock(mutex_);
    return keys_->empty() && !options_.require_keys;
}

void authenticator::set_keys(std::vector<api_key> keys) {
    auto next = std::make_shared<const std::vector<api_key>>(std::move(keys));
    std::lock_guard lock(mutex_);
    keys_ = std::move(next);
}

result<caller> authenticator::identify(
    const request& req, std::optional<std::string> query_token, std::int64_t now_s
) const {
    std::shared_ptr<const std::vector<api_key>> keys;
    {
        std::lock_guard lock(mutex_);
        keys = keys_;
    }
    auto credential = bearer(req);
    if (!credential && query_token) {
        credential = std::move(query_token);
    }
    if (!credential) {
        if (keys->empty() && !options_.require_keys) {
            return anonymous();
        }
        return fail(errc::unauthorized, "an API key is required: send 'Authorization: Bearer KEY'");
    }
    if (starts_with(*credential, token_prefix)) {
        return verify_token(*credential, now_s);
    }
    if (keys->empty() && !options_.require_keys) {
        return anonymous();
    }
    const auto hash = sha256_hex(*credential);
    for (const auto& k : *keys) {
        if (equal_in_constant_time(k.sha256, hash)) {
            return caller{.name = k.name, .scopes = k.scopes, .rate_per_s = k.rate_per_s};
        }
    }
    return fail(errc::unauthorized, "unknown or revoked API key");
}

result<caller> authenticator::authorize(
    const request& req,
    std::optional<std::string> query_token,
    bhttp::verb method,
    std::string_view pattern,
    std::chrono::steady_clock::time_point now,
    std::int64_t now_s,
    double* retry_after_s
) {
    const auto needed = required_scope(method, pattern);
    if (needed == 0) {
        return caller{.name = "public"};
    }
    auto who = identify(req, std::move(query_token), now_s);
    if (!who) {
        return who.error();
    }
    if (who->is_token()) {
        if (!token_route(method, pattern)) {
            return fail(errc::forbidden, "a subscribe token may only read its topics' streams");
        }
        if (now_s >= who->expires_at) {
            return fail(errc::unauthorized, "the subscribe token has expired; ask for a new one");
        }
        return who;
    }
    if ((who->scopes & scope_admin) == 0U && (who->scopes & needed) == 0U) {
        return fail(
            errc::forbidden,
            "key '" + who->name + "' lacks the " + scopes_text(needed) + " scope for " +
                std::string(req.method_string()) + " " + std::string(pattern)
        );
    }
    const double rate = who->rate_per_s > 0 ? who->rate_per_s : options_.rate_per_s;
    if (rate > 0 && !take(who->name, rate, now, retry_after_s)) {
        return fail(
            errc::rate_limited,
            "key '" + who->name + "' is over its rate of " +
                std::to_string(static_cast<int>(rate)) + " requests per second"
        );
    }
    return who;
}

bool authenticator::take(
    const std::string& key,
    double rate,
    std::chrono::steady_clock::time_point now,
    double* retry_after_s
) {
    const double capacity = std::max(1.0, rate * options_.burst_s);
    std::lock_guard lock(mutex_);
    auto [it, fresh] = buckets_.try_emplace(key, bucket{capacity, now});
    auto& b = it->second;
    if (!fresh) {
        const std::chrono::duration<double> elapsed = now - b.at;
        b.tokens = std::min(capacity, b.tokens + elapsed.count() * rate);
        b.at = now;
    }
    if (b.tokens >= 1) {
        b.tokens -= 1;
        return true;
    }
    if (retry_after_s != nullptr) {
        *retry_after_s = (1 - b.tokens) / rate;
    }
    return false;
}

std::string authenticator::issue_token(
    const std::vector<std::string>& topics, std::int64_t ttl_s, std::int64_t now_s
) const {
    json::array list(topics.begin(), topics.end());
    const auto body = json::serialize(json::object{{"t", std::move(list)}, {"exp", now_s + ttl_s}});
    const auto payload = base64url(body);
    return std::string(token_prefix) + payload + "." + hmac(options_.token_secret, payload);
}

result<caller> authenticator::verify_token(std::string_view token, std::int64_t now_s) const {
    const auto bad = fail(errc::unauthorized, "invalid subscribe token");
    token.remove_prefix(token_prefix.size());
    const auto dot = token.find('.');
    if (dot == std::string_view::npos) {
        return bad;
    }
    const auto payload = token.substr(0, dot);
    if (!equal_in_constant_time(hmac(options_.token_secret, payload), token.substr(dot + 1))) {
        return bad;
    }
    const auto body = unbase64url(payload);
    if (!body) {
        return bad;
    }
    boost::system::error_code ec;
    auto value = json::parse(*body, ec);
    const auto* obj = ec ? nullptr : value.if_object();
    const auto* list = obj != nullptr ? obj->if_contains("t") : nullptr;
    const auto* exp = obj != nullptr ? obj->if_contains("exp") : nullptr;
    if (list == nullptr || !list->is_array() || exp == nullptr || !exp->is_int64()) {
        return bad;
    }
    caller who{
        .name = "token",
        .scopes = 0,
        .topics = std::vector<std::string>{},
        .expires_at = exp->as_int64()};
    for (const auto& t : list->get_array()) {
        if (!t.is_string()) {
            return bad;
        }
        who.topics->emplace_back(t.get_string());
    }
    if (now_s >= who.expires_at) {
        return fail(errc::unauthorized, "the subscribe token has expired; ask for a new one");
    }
    return who;
}

}  // namespace conclave::http
