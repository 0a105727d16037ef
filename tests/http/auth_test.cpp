// Access control without a server: scopes, the route table, keys, subscribe tokens, rates.
#include "http/auth.hpp"

#include <gtest/gtest.h>

namespace conclave::http {
namespace {

using verb = bhttp::verb;
using namespace std::chrono_literals;

request with_bearer(const std::string& credential) {
    request req{verb::get, "/v1/jobs", 11};
    if (!credential.empty()) {
        req.set(bhttp::field::authorization, "Bearer " + credential);
    }
    return req;
}

TEST(AuthTest, ScopesParseAndPrint) {
    EXPECT_EQ(parse_scopes("read, submit").value(), scope_read | scope_submit);
    EXPECT_EQ(scopes_text(scope_worker | scope_admin), "worker,admin");
    auto bad = parse_scopes("read,root");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("root"), std::string::npos);
}

TEST(AuthTest, EveryRouteNeedsTheRightScope) {
    EXPECT_EQ(required_scope(verb::get, "/healthz"), 0U);
    EXPECT_EQ(required_scope(verb::get, ""), 0U) << "the UI's files";
    EXPECT_EQ(required_scope(verb::get, "/v1/jobs/{id}"), scope_read);
    EXPECT_EQ(required_scope(verb::get, "/v1/ws"), scope_read);
    EXPECT_EQ(required_scope(verb::get, "/api/conversations"), scope_read);
    EXPECT_EQ(required_scope(verb::post, "/v1/jobs"), scope_submit);
    EXPECT_EQ(required_scope(verb::post, "/api/conversations/{id}/message"), scope_submit);
    EXPECT_EQ(required_scope(verb::post, "/v1/jobs/{id}/cancel"), scope_submit);
    EXPECT_EQ(required_scope(verb::post, "/v1/workers/claim"), scope_worker);
    EXPECT_EQ(required_scope(verb::post, "/v1/jobs/{id}/events"), scope_worker);
    EXPECT_EQ(required_scope(verb::get, "/v1/jobs/{id}/events"), scope_read);
    EXPECT_EQ(required_scope(verb::post, "/v1/jobs/{id}/steps/{key}"), scope_worker);
    EXPECT_EQ(required_scope(verb::post, "/v1/jobs:retry"), scope_admin);
    EXPECT_TRUE(token_route(verb::get, "/v1/jobs/{id}/events"));
    EXPECT_FALSE(token_route(verb::get, "/v1/jobs/{id}"));
    EXPECT_FALSE(token_route(verb::post, "/v1/topics/{topic}/events"));
}

TEST(AuthTest, OpenWithoutKeysUnlessKeysAreRequired) {
    authenticator open({});
    EXPECT_TRUE(open.open());
    auto who = open.identify(with_bearer(""), std::nullopt, 0);
    ASSERT_TRUE(who);
    EXPECT_EQ(who->name, "anonymous");
    authenticator closed({.require_keys = true});
    EXPECT_FALSE(closed.open());
    EXPECT_EQ(closed.identify(with_bearer(""), std::nullopt, 0).error().code, errc::unauthorized);
}

TEST(AuthTest, KeysAreKnownByTheirHashAndCheckedForScope) {
    const auto [key, hash] = new_api_key();
    EXPECT_TRUE(key.starts_with("ck_"));
    EXPECT_EQ(hash, sha256_hex(key));
    EXPECT_EQ(hash.size(), 64U);
    authenticator auth({.keys = {{.name = "reader", .sha256 = hash, .scopes = scope_read}}});
    const auto now = std::chrono::steady_clock::now();
    auto ok =
        auth.authorize(with_bearer(key), std::nullopt, verb::get, "/v1/jobs", now, 0, nullptr);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->name, "reader");
    auto denied =
        auth.authorize(with_bearer(key), std::nullopt, verb::post, "/v1/jobs", now, 0, nullptr);
    EXPECT_EQ(denied.error().code, errc::forbidden);
    EXPECT_NE(denied.error().message.find("submit"), std::string::npos);
    EXPECT_EQ(
        auth.authorize(
                with_bearer("ck_wrong"), std::nullopt, verb::get, "/v1/jobs", now, 0, nullptr
        )
            .error()
            .code,
        errc::unauthorized
    );
    EXPECT_EQ(
        auth.authorize(with_bearer(""), std::nullopt, verb::get, "/v1/jobs", now, 0, nullptr)
            .error()
            .code,
        errc::unauthorized
    );
    EXPECT_TRUE(
        auth.authorize(with_bearer(""), std::nullopt, verb::get, "/healthz", now, 0, nullptr)
    ) << "public";
    auth.set_keys({});  // revoked; the server stays closed only with require_keys
    EXPECT_TRUE(auth.open());
}

TEST(AuthTest, SubscribeTokensNameTheirTopicsAndExpire) {
    const auto [key, hash] = new_api_key();
    authenticator auth({.keys = {{.name = "app", .sha256 = hash, .scopes = scope_read}}});
    const auto token = auth.issue_token({"job:a", "space:b"}, 60, 1000);
    EXPECT_TRUE(token.starts_with("cst_"));
    const auto now = std::chrono::steady_clock::now();
    auto who = auth.authorize(
        with_bearer(""), token, verb::get, "/v1/jobs/{id}/events", now, 1010, nullptr
    );
    ASSERT_TRUE(who) << who.error().message;
    EXPECT_TRUE(who->is_token());
    EXPECT_FALSE(who->may_read("job:a", 1010));
    EXPECT_EQ(who->may_read("job:other", 1010)->code, errc::forbidden);
    EXPECT_EQ(who->may_read("job:a", 1060)->code, errc::unauthorized) << "expired";
    EXPECT_EQ(
        auth.authorize(with_bearer(token), std::nullopt, verb::get, "/v1/jobs", now, 1010, nullptr)
            .error()
            .code,
        errc::forbidden
    ) << "a token reads streams only";
    EXPECT_EQ(
        auth.authorize(with_bearer(""), token, verb::get, "/v1/stream", now, 1061, nullptr)
            .error()
            .code,
        errc::unauthorized
    );
    auto tampered = token;
    tampered[6] = tampered[6] == 'A' ? 'B' : 'A';
    EXPECT_EQ(
        auth.identify(with_bearer(tampered), std::nullopt, 1010).error().code, errc::unauthorized
    );
    authenticator other({.keys = {{.name = "app", .sha256 = hash, .scopes = scope_read}}});
    EXPECT_FALSE(other.identify(with_bearer(token), std::nullopt, 1010))
        << "another secret does not accept it";
}

TEST(AuthTest, RatesAreEnforcedPerKeyWithARetryAfter) {
    const auto [key, hash] = new_api_key();
    const auto [other_key, other_hash] = new_api_key();
    authenticator auth(
        {.keys =
             {{.name = "slow", .sha256 = hash, .scopes = scope_read, .rate_per_s = 2},
              {.name = "fast", .sha256 = other_hash, .scopes = scope_read}},
         .rate_per_s = 0,
         .burst_s = 1}
    );
    const auto t0 = std::chrono::steady_clock::now();
    auto call = [&](const std::string& k, std::chrono::steady_clock::time_point at, double* retry) {
        return auth.authorize(with_bearer(k), std::nullopt, verb::get, "/v1/jobs", at, 0, retry);
    };
    EXPECT_TRUE(call(key, t0, nullptr));
    EXPECT_TRUE(call(key, t0, nullptr));
    double retry = 0;
    auto limited = call(key, t0, &retry);
    ASSERT_FALSE(limited);
    EXPECT_EQ(limited.error().code, errc::rate_limited);
    EXPECT_NEAR(retry, 0.5, 0.01);
    EXPECT_TRUE(call(key, t0 + 600ms, nullptr)) << "refilled";
    for (int idx = 0; idx < 100; ++idx) {
        EXPECT_TRUE(call(other_key, t0, nullptr)) << "no rate: unlimited";
    }
}

}  // namespace
}  // namespace conclave::http
