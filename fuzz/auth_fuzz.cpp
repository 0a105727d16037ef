// fuzz/auth_fuzz.cpp: the credentials a client presents — http::authenticator::identify with
// any bytes as the Authorization header, the bearer credential or the ?token= value; subscribe
// tokens issued and then mangled; http::parse_scopes on any text.
//
// Input: two control bytes, then the data.
//   byte 0: bits 0-1 → where the data goes: 0 "Authorization: Bearer <data>", 1 ?token=<data>,
//           2 "Authorization: <data>", 3 both (the header gets the data up to its first NUL,
//           prefixed with "Bearer ", the query the rest); bits 2-3 → the server: 0 and 3 one
//           API key configured, 1 open (no keys), 2 no keys but keys required.
//   byte 1: the ttl of the issued token (1..256 s) and the seed of the characters flipped in it.
// The data is also the topics of the issued token (its ','-separated parts that are valid topic
// names, as POST /v1/tokens/subscribe requires; "space:fuzz" when none is) and a scope list.
// Invariants (a violation traps, so libFuzzer saves the input):
//   - identify never accepts a forged credential: a "cst_" credential is accepted only when
//     it is byte for byte the token the server issues for the topics and expiry it carries, and
//     only before that expiry; any other credential only when it is the configured key (with
//     its name and scopes), or when the server is open (as "anonymous"); every refusal is
//     unauthorized;
//   - issue_token then identify (as bearer or as ?token=) gives a token caller with exactly the
//     issued topics, which may read each of them and no other, until now + ttl and not from
//     then on;
//   - the issued token with any one character changed is refused (never a token caller, even
//     on an open server, where a credential that is not a token is anonymous);
//   - parse_scopes agrees with a reference (','-separated names among read, submit, worker,
//     admin, spaces around them ignored); accepted bits are non-zero and scopes_text of them
//     parses back to the same bits.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/auth.hpp"
#include "store/topic.hpp"

namespace {

using namespace conclave;
using http::authenticator;

void check(bool ok) {
    if (!ok) {
        __builtin_trap();
    }
}

constexpr std::int64_t now = 1'700'000'000;
// The seed corpus holds tokens issued with this secret, valid until 2033.
constexpr std::string_view secret = "fuzz-secret-0123456789abcdef-0123456789";
constexpr std::string_view known_key = "ck_fuzz-known-key-0123456789";
constexpr std::size_t max_flips = 24;  // each costs three HMACs under ASan: keep it quick

enum class server { keyed, open, closed };

const authenticator& auth(server mode) {
    static const auto make = [](std::vector<http::api_key> keys, bool require) {
        return authenticator(http::auth_options{
            .keys = std::move(keys), .token_secret = std::string(secret), .require_keys = require});
    };
    static const authenticator keyed = make(
        {http::api_key{
            .name = "fuzz",
            .sha256 = http::sha256_hex(known_key),
            .scopes = http::scope_read | http::scope_submit}},
        false
    );
    static const authenticator open = make({}, false);
    static const authenticator closed = make({}, true);
    return mode == server::keyed ? keyed : mode == server::open ? open : closed;
}

http::request request_with(std::optional<std::string_view> authorization) {
    http::request req{http::bhttp::verb::get, "/v1/stream", 11};
    if (authorization) {
        req.set(http::bhttp::field::authorization, *authorization);
    }
    return req;
}

// The credential identify should see: the bearer one when an Authorization header is there
// (an empty one when it is not "Bearer …"), else the query's token.
std::optional<std::string> presented(
    std::optional<std::string_view> authorization, const std::optional<std::string>& query
) {
    if (authorization && !authorization->empty()) {
        constexpr std::string_view scheme = "bearer ";
        if (authorization->size() <= scheme.size()) {
            return std::string();
        }
        for (std::size_t idx = 0; idx < scheme.size(); ++idx) {
            const auto c = static_cast<unsigned char>((*authorization)[idx]);
            if (std::tolower(c) != scheme[idx]) {
                return std::string();
            }
        }
        return std::string(authorization->substr(scheme.size()));
    }
    return query;
}

// Whatever the bytes, identify accepts only a credential that is genuine.
void check_identify(
    server mode, std::optional<std::string_view> authorization, std::optional<std::string> query
) {
    const auto& a = auth(mode);
    const auto credential = presented(authorization, query);
    const auto who = a.identify(request_with(authorization), query, now);
    if (!who) {
        check(who.error().code == errc::unauthorized);
        return;
    }
    check(credential.has_value() || mode == server::open);
    if (credential && credential->starts_with("cst_")) {
        check(who->is_token() && who->expires_at > now && who->scopes == 0);
        check(*credential == a.issue_token(*who->topics, who->expires_at - now, now));
        return;
    }
    check(!who->is_token());
    if (mode == server::open) {
        check(who->name == "anonymous");
        return;
    }
    check(mode == server::keyed && *credential == known_key && who->name == "fuzz");
    check(who->scopes == (http::scope_read | http::scope_submit));
}

std::vector<std::string> topics_of(std::string_view data) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= data.size() && out.size() < 64) {
        const auto end = std::min(data.find(',', start), data.size());
        const auto part = data.substr(start, end - start);
        if (store::is_valid_topic(part)) {
            out.emplace_back(part);
        }
        start = end + 1;
    }
    if (out.empty()) {
        out.emplace_back("space:fuzz");
    }
    return out;
}

// A token issued for `topics` works as bearer and as ?token= until it expires, for exactly
// them; changed in any one character it is refused.
void check_issued(const std::vector<std::string>& topics, std::uint8_t seed) {
    const std::int64_t ttl = 1 + seed;
    const auto& a = auth(server::keyed);
    const auto token = a.issue_token(topics, ttl, now);
    const std::string bearer = "Bearer " + token;
    for (const std::int64_t at : {now, now + ttl - 1, now + ttl, now + ttl + 1}) {
        const bool valid = at < now + ttl;
        for (const bool as_query : {false, true}) {
            const auto who = as_query ? a.identify(request_with(std::nullopt), token, at)
                                      : a.identify(request_with(bearer), std::nullopt, at);
            check(who.has_value() == valid);
            if (!who) {
                check(who.error().code == errc::unauthorized);
                continue;
            }
            check(who->is_token() && *who->topics == topics && who->expires_at == now + ttl);
            check(who->scopes == 0 && who->name == "token");
            for (const auto& t : topics) {
                check(!who->may_read(t, at));
                check(who->may_read(t, now + ttl)->code == errc::unauthorized);
            }
            const auto other = who->may_read("space:not-in-the-token", at);
            check(other.has_value() && other->code == errc::forbidden);
        }
    }

    // Flips spread over the whole token, where they start (and so, over many inputs, every
    // position) chosen by the seed.
    const std::size_t step = std::max<std::size_t>(1, token.size() / max_flips);
    for (std::size_t idx = seed % step; idx < token.size(); idx += step) {
        std::string changed = token;
        char c = static_cast<char>(seed + idx * 37);
        if (c == changed[idx]) {
            c = static_cast<char>(c ^ 1);
        }
        changed[idx] = c;
        check(!a.identify(request_with("Bearer " + changed), std::nullopt, now));
        check(!a.identify(request_with(std::nullopt), changed, now));
        const auto open = auth(server::open).identify(request_with(std::nullopt), changed, now);
        check(!open || !open->is_token());
    }
}

std::optional<unsigned> reference_scopes(std::string_view list) {
    unsigned bits = 0;
    for (;;) {
        const auto comma = list.find(',');
        auto name = list.substr(0, comma);
        const auto first = name.find_first_not_of(' ');
        name = first == std::string_view::npos
                   ? std::string_view()
                   : name.substr(first, name.find_last_not_of(' ') + 1 - first);
        const std::string_view names[] = {"read", "submit", "worker", "admin"};
        const auto* it = std::find(std::begin(names), std::end(names), name);
        if (it == std::end(names)) {
            return std::nullopt;
        }
        bits |= 1U << (it - std::begin(names));
        if (comma == std::string_view::npos) {
            return bits;
        }
        list.remove_prefix(comma + 1);
    }
}

void check_scopes(std::string_view text) {
    const auto bits = http::parse_scopes(text);
    const auto expected = reference_scopes(text);
    check(bits.has_value() == expected.has_value());
    if (!bits) {
        check(bits.error().code == errc::bad_request);
        return;
    }
    check(*bits == *expected && *bits != 0 && *bits <= 15);
    const auto again = http::parse_scopes(http::scopes_text(*bits));
    check(again.has_value() && *again == *bits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    const auto place = bytes[0] & 3U;
    const auto servers = (bytes[0] >> 2U) & 3U;
    const server mode = servers == 1 ? server::open : servers == 2 ? server::closed : server::keyed;
    const std::string_view data(reinterpret_cast<const char*>(bytes) + 2, size - 2);

    if (place == 0) {
        check_identify(mode, "Bearer " + std::string(data), std::nullopt);
    } else if (place == 1) {
        check_identify(mode, std::nullopt, std::string(data));
    } else if (place == 2) {
        check_identify(mode, data, std::nullopt);
    } else {
        const auto nul = std::min(data.find('\0'), data.size());
        const std::string header = "Bearer " + std::string(data.substr(0, nul));
        check_identify(mode, header, std::string(data.substr(std::min(nul + 1, data.size()))));
    }

    check_issued(topics_of(data), bytes[1]);
    check_scopes(data);
    return 0;
}
