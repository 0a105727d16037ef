#include "core/logging.hpp"

#include <sstream>

#include <boost/json.hpp>

#include <gtest/gtest.h>

namespace conclave {
namespace {

namespace json = boost::json;

std::string as_json(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

TEST(JsonStringTest, EscapesQuotesBackslashesAndControlCharacters) {
    EXPECT_EQ(as_json("plain"), "\"plain\"");
    EXPECT_EQ(as_json("a\"b\\c"), "\"a\\\"b\\\\c\"");
    EXPECT_EQ(as_json("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
    EXPECT_EQ(as_json(std::string("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\\u007f\"");
}

TEST(JsonStringTest, KeepsValidUtf8AndReplacesInvalidBytes) {
    EXPECT_EQ(
        as_json("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
        "\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""
    );
    const std::string replacement = "\xEF\xBF\xBD";
    EXPECT_EQ(
        as_json("a\xff"
                "b"),
        "\"a" + replacement + "b\""
    );
    EXPECT_EQ(as_json("\xc3"), "\"" + replacement + "\"") << "truncated sequence";
    EXPECT_EQ(as_json("\xc0\xaf"), "\"" + replacement + replacement + "\"") << "overlong";
    EXPECT_EQ(as_json("\xed\xa0\x80"), "\"" + replacement + replacement + replacement + "\"")
        << "surrogate";
    EXPECT_EQ(as_json("\xf4\x90\x80\x80").size(), 2 + 4 * replacement.size()) << "past U+10FFFF";
    // Whatever the bytes, the result parses as JSON.
    std::string all;
    for (int c = 0; c < 256; ++c) {
        all += static_cast<char>(c);
    }
    EXPECT_NO_THROW(json::parse(as_json(all)));
}

// Runs `fn` and returns what it wrote to stderr.
template <class F>
std::string stderr_of(F fn) {
    testing::internal::CaptureStderr();
    fn();
    return testing::internal::GetCapturedStderr();
}

TEST(LoggingTest, JsonLinesCarryTimeLevelLoggerMessageAndFields) {
    init_logging("info", log_format::json);
    const auto out = stderr_of([] {
        log_with(
            *logger("test"),
            spdlog::level::warn,
            {{"request_id", "r-1"}, {"status", 201}, {"duration_ms", 1.5}},
            "hello {} \x01 {}",
            "\"you\"",
            "bad \xff byte"
        );
        logger("test")->info("plain {}", 2);
        logger("test")->debug("below the level");
    });
    init_logging("info", log_format::text);
    std::istringstream lines(out);
    std::string line;
    std::vector<json::object> objects;
    while (std::getline(lines, line)) {
        objects.push_back(json::parse(line).as_object());
    }
    ASSERT_EQ(objects.size(), 2U) << out;
    const auto& first = objects[0];
    EXPECT_EQ(first.at("level"), "warning");
    EXPECT_EQ(first.at("logger"), "test");
    EXPECT_EQ(first.at("msg"), "hello \"you\" \x01 bad \xEF\xBF\xBD byte");
    EXPECT_EQ(first.at("request_id"), "r-1");
    EXPECT_EQ(first.at("status"), 201);
    EXPECT_EQ(first.at("duration_ms").as_double(), 1.5);
    const auto time = std::string(first.at("time").as_string());
    EXPECT_EQ(time.size(), 24U) << time;  // 2026-11-21T01:08:42.123Z
    EXPECT_EQ(time.back(), 'Z');
    EXPECT_EQ(objects[1].at("msg"), "plain 2");
    EXPECT_FALSE(objects[1].contains("request_id"));
}

TEST(LoggingTest, TextLinesAppendFieldsAsKeyValue) {
    init_logging("info", log_format::text);
    const auto out = stderr_of([] {
        log_with(*logger("test"), spdlog::level::info, {{"job_id", "j1"}, {"n", 3}}, "done");
    });
    EXPECT_NE(out.find("[test] done job_id=j1 n=3\n"), std::string::npos) << out;
}

TEST(LoggingTest, FormatsParse) {
    EXPECT_EQ(parse_log_format("json"), log_format::json);
    EXPECT_EQ(parse_log_format("text"), log_format::text);
    EXPECT_FALSE(parse_log_format("xml"));
}

}  // namespace
}  // namespace conclave
