// WebSocket client messages, parsed without a connection (the session's replies to them are
// tested end to end in tests/integration/ws_test.cpp).
#include "stream/ws_command.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

namespace conclave::stream {
namespace {

namespace json = boost::json;

std::string refusal_code(std::string_view text) {
    const auto m = parse_ws_message(text);
    EXPECT_FALSE(m.command.has_value()) << text;
    return m.command ? "" : m.command.error().code;
}

TEST(WsCommandTest, CommandsAreRead) {
    auto ping = parse_ws_message(R"({"op":"ping","id":7})");
    ASSERT_TRUE(ping.command.has_value());
    EXPECT_EQ(ping.command->op, ws_op::ping);
    EXPECT_EQ(ping.id, json::value(7));

    auto sub = parse_ws_message(R"({"op":"subscribe","topic":"space:a","after":12})");
    ASSERT_TRUE(sub.command.has_value());
    EXPECT_EQ(sub.command->op, ws_op::subscribe);
    EXPECT_EQ(sub.command->topic, "space:a");
    EXPECT_EQ(sub.command->after, 12);
    EXPECT_FALSE(sub.command->from_now);
    EXPECT_FALSE(sub.id.has_value());

    auto now = parse_ws_message(R"({"op":"subscribe","topic":"space:a","after":"now"})");
    ASSERT_TRUE(now.command.has_value());
    EXPECT_TRUE(now.command->from_now);
    EXPECT_EQ(now.command->after, 0);

    auto unsub = parse_ws_message(R"({"op":"unsubscribe","topic":"job:x","after":-5,"id":null})");
    ASSERT_TRUE(unsub.command.has_value()) << "'after' means nothing to unsubscribe";
    EXPECT_EQ(unsub.command->op, ws_op::unsubscribe);
    ASSERT_TRUE(unsub.id.has_value());
    EXPECT_TRUE(unsub.id->is_null());
}

TEST(WsCommandTest, BadMessagesAreRefusedWithTheirCode) {
    EXPECT_EQ(refusal_code("not json"), "bad_request");
    EXPECT_EQ(refusal_code("[1,2]"), "bad_request");
    EXPECT_EQ(refusal_code("{}"), "bad_request");
    EXPECT_EQ(refusal_code(R"({"op":5})"), "bad_request");
    EXPECT_EQ(refusal_code(R"({"op":"publish","topic":"space:t1"})"), "unknown_op");
    EXPECT_EQ(refusal_code(R"({"op":"subscribe","topic":"bad topic"})"), "bad_request");
    EXPECT_EQ(refusal_code(R"({"op":"subscribe"})"), "bad_request");
    EXPECT_EQ(refusal_code(R"({"op":"unsubscribe","topic":7})"), "bad_request");
    EXPECT_EQ(refusal_code(R"({"op":"subscribe","topic":"a","after":-1})"), "bad_request");
    EXPECT_EQ(refusal_code(R"({"op":"subscribe","topic":"a","after":"1"})"), "bad_request");
    EXPECT_EQ(refusal_code(R"({"op":"subscribe","topic":"a","after":1.0})"), "bad_request");
}

TEST(WsCommandTest, IdIsKeptEvenWhenTheCommandIsRefused) {
    auto m = parse_ws_message(R"({"op":"nope","id":{"k":[1,2]}})");
    EXPECT_FALSE(m.command.has_value());
    ASSERT_TRUE(m.id.has_value());
    EXPECT_EQ(*m.id, json::parse(R"({"k":[1,2]})"));
    EXPECT_NE(m.command.error().message.find("'nope'"), std::string::npos);
    EXPECT_FALSE(parse_ws_message(R"([{"id":1}])").id.has_value()) << "not an object: no id";
}

}  // namespace
}  // namespace conclave::stream
