// The [[keys]] and [auth] tables of the configuration, read without a server.
#include "app/keys.hpp"

#include <gtest/gtest.h>

namespace conclave::app {
namespace {

constexpr const char* key_table = R"(
[[keys]]
name = "ci-bot"
sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
scopes = ["read", "submit"]
)";

TEST(KeysTest, KeysAreRead) {
    auto keys = parse_keys(toml::parse(std::string(key_table) + "rate_per_s = 2.5\n"));
    ASSERT_TRUE(keys.has_value()) << keys.error().message;
    ASSERT_EQ(keys->size(), 1U);
    EXPECT_EQ((*keys)[0].name, "ci-bot");
    EXPECT_EQ((*keys)[0].scopes, http::scope_read | http::scope_submit);
    EXPECT_EQ((*keys)[0].rate_per_s, 2.5);
}

TEST(KeysTest, AuthTableIsRead) {
    http::auth_options options;
    EXPECT_FALSE(parse_auth(
        toml::parse("[auth]\nrate_per_s = 5\nburst_s = 0.5\nmax_token_ttl_s = 86400\n"), options
    ));
    EXPECT_EQ(options.rate_per_s, 5);
    EXPECT_EQ(options.burst_s, 0.5);
    EXPECT_EQ(options.max_token_ttl_s, 86400);
}

// Regression (found by fuzz/config_keys_fuzz): TOML has nan and inf, and NaN passed the `< 0`
// check, so `rate_per_s = nan` was taken for a rate (and meant none).
TEST(KeysTest, RatesMustBeFinite) {
    for (const char* value : {"nan", "inf", "-0.5", "\"5\""}) {
        auto keys = parse_keys(toml::parse(std::string(key_table) + "rate_per_s = " + value));
        ASSERT_FALSE(keys.has_value()) << value;
        EXPECT_NE(keys.error().message.find("rate_per_s"), std::string::npos);
        for (const char* field : {"rate_per_s", "burst_s"}) {
            http::auth_options options;
            const auto text = std::string("[auth]\n") + field + " = " + value + "\n";
            auto refused = parse_auth(toml::parse(text), options);
            ASSERT_TRUE(refused.has_value()) << text;
            EXPECT_NE(refused->message.find(field), std::string::npos);
        }
    }
}

// Regression (found by fuzz/config_keys_fuzz): any positive max_token_ttl_s was taken, and a
// token asked for with ttl_s near INT64_MAX overflowed now + ttl (undefined behaviour; in
// practice a token that had expired before it was issued).
TEST(KeysTest, TokenTtlIsBounded) {
    // 9.2e77 and 1e19: floats past any integer (toml++'s own conversion is undefined there).
    for (const char* value :
         {"0",
          "-1",
          "315360001",
          "9223372036854775807",
          "1.5",
          "9.2e77",
          "1e19",
          "-1e19",
          "inf",
          "nan"}) {
        http::auth_options options;
        const auto text = std::string("[auth]\nmax_token_ttl_s = ") + value + "\n";
        auto refused = parse_auth(toml::parse(text), options);
        ASSERT_TRUE(refused.has_value()) << text;
        EXPECT_NE(refused->message.find("max_token_ttl_s"), std::string::npos);
    }
    http::auth_options options;
    EXPECT_FALSE(parse_auth(toml::parse("[auth]\nmax_token_ttl_s = 315360000\n"), options));
    EXPECT_EQ(options.max_token_ttl_s, 315'360'000);
    EXPECT_FALSE(parse_auth(toml::parse("[auth]\nmax_token_ttl_s = 3600.0\n"), options));
    EXPECT_EQ(options.max_token_ttl_s, 3600) << "an integral float is an integer";
}

}  // namespace
}  // namespace conclave::app
