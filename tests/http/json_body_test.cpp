// Request bodies and query integers: what parse_json_body and parse_non_negative refuse.
#include "http/json_body.hpp"

#include <string>

#include <boost/json.hpp>

#include <gtest/gtest.h>

namespace conclave::http {
namespace {

std::string nested(std::size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
}

TEST(JsonBodyTest, NestingUpToTheLimitIsRead) {
    EXPECT_TRUE(parse_json_body(nested(max_json_depth)).has_value());
    auto deeper = parse_json_body(nested(max_json_depth + 1));
    ASSERT_FALSE(deeper.has_value());
    EXPECT_EQ(deeper.error().code, errc::bad_request);
    EXPECT_NE(deeper.error().message.find("deeper"), std::string::npos);
}

TEST(JsonBodyTest, EmptyAndMalformedBodiesAreRefused) {
    EXPECT_EQ(parse_json_body("").error().code, errc::bad_request);
    EXPECT_EQ(parse_json_body("{\"a\":").error().code, errc::bad_request);
    EXPECT_EQ(parse_json_body("\"\xff\"").error().code, errc::bad_request);
}

// Regression (found by fuzz/request_json_fuzz): Boost.JSON reads 1e999 as infinity and writes
// it back as `Infinity`, so a job payload holding one was stored as text no JSON parser reads.
TEST(JsonBodyTest, NumbersBeyondTheRangeOfADoubleAreRefused) {
    for (const char* body :
         {R"({"type":"noop","payload":1e999})", "[-1e400]", R"({"a":{"b":[1,2e308]}})"}) {
        auto parsed = parse_json_body(body);
        ASSERT_FALSE(parsed.has_value()) << body;
        EXPECT_EQ(parsed.error().code, errc::bad_request);
    }
    auto big = parse_json_body("[1.7e308,-1e-400,18446744073709551615]");
    ASSERT_TRUE(big.has_value());
    EXPECT_EQ(boost::json::parse(boost::json::serialize(*big)), *big);
}

// PostgreSQL cuts a text parameter at a NUL (and its jsonb refuses \u0000): a body holding one
// anywhere, in a value or a key, is refused before anything is stored.
TEST(JsonBodyTest, StringsHoldingANulAreRefused) {
    for (const char* body :
         {R"({"type":"noop","idempotency_key":"a\u0000b"})",
          R"({"content":"\u0000"})",
          R"({"payload":{"k\u0000":1}})",
          R"([["x","\u0000"]])"}) {
        auto parsed = parse_json_body(body);
        ASSERT_FALSE(parsed.has_value()) << body;
        EXPECT_EQ(parsed.error().code, errc::bad_request);
        EXPECT_NE(parsed.error().message.find("U+0000"), std::string::npos);
    }
    EXPECT_TRUE(parse_json_body(R"({"content":"\u0001 caf\u00e9 \ud83d\ude00"})").has_value());
}

TEST(JsonBodyTest, NonNegativeIntegers) {
    EXPECT_EQ(parse_non_negative("0", "after").value(), 0);
    EXPECT_EQ(parse_non_negative("9223372036854775807", "after").value(), INT64_MAX);
    for (const char* text : {"", "-1", "+1", "1.0", " 1", "9223372036854775808", "0x10"}) {
        auto n = parse_non_negative(text, "after");
        ASSERT_FALSE(n.has_value()) << text;
        EXPECT_NE(n.error().message.find("'after'"), std::string::npos);
    }
}

}  // namespace
}  // namespace conclave::http
