#include "stream/ws_command.hpp"

#include <boost/json.hpp>

#include "store/topic.hpp"

namespace conclave::stream {
namespace json = boost::json;
namespace {

ws_refusal bad_request(std::string message) {
    return ws_refusal{.code = "bad_request", .message = std::move(message)};
}

boost::system::result<ws_command, ws_refusal> parse_command(const json::object& obj) {
    const auto* op = obj.if_contains("op");
    if (op == nullptr || !op->is_string()) {
        return bad_request("a message must be a JSON object with an 'op'");
    }
    ws_command cmd;
    if (*op == "ping") {
        return cmd;
    }
    if (*op != "subscribe" && *op != "unsubscribe") {
        return ws_refusal{
            .code = "unknown_op",
            .message = "unknown op '" + std::string(op->as_string()) +
                       "' (expected subscribe, unsubscribe or ping)"};
    }
    const auto* topic_value = obj.if_contains("topic");
    if (topic_value == nullptr || !topic_value->is_string() ||
        !store::is_valid_topic(topic_value->as_string())) {
        return bad_request(
            "'topic' must be a topic name: segments of [A-Za-z0-9_.-] joined by ':', at most 200 "
            "characters"
        );
    }
    cmd.topic = std::string(topic_value->as_string());
    if (*op == "unsubscribe") {
        cmd.op = ws_op::unsubscribe;
        return cmd;
    }
    cmd.op = ws_op::subscribe;
    if (const auto* after = obj.if_contains("after")) {
        cmd.from_now = after->is_string() && after->get_string() == "now";
        if (!cmd.from_now && (!after->is_int64() || after->as_int64() < 0)) {
            return bad_request("'after' must be a non-negative integer or \"now\"");
        }
        cmd.after = cmd.from_now ? 0 : after->as_int64();
    }
    return cmd;
}

}  // namespace

ws_message parse_ws_message(std::string_view text) {
    boost::system::error_code ec;
    const auto value = json::parse(text, ec);
    if (ec || !value.is_object()) {
        return ws_message{.command = bad_request("a message must be a JSON object with an 'op'")};
    }
    const auto& obj = value.get_object();
    ws_message out{.command = parse_command(obj)};
    if (const auto* id = obj.if_contains("id")) {
        out.id = *id;
    }
    return out;
}

}  // namespace conclave::stream
