// fuzz/ws_command_fuzz.cpp: a WebSocket client's messages (GET /v1/ws) through
// stream::parse_ws_message, the part of a command that needs no connection.
//
// Input: one message's text, as is.
// Invariants (a violation traps, so libFuzzer saves the input):
//   - it agrees with a reference written from stream/ws.hpp: a JSON object whose string 'op' is
//     ping; or subscribe/unsubscribe with a valid topic name, and for subscribe an 'after' that
//     is absent, "now" or an integer 0..INT64_MAX (written as an integer: 5.0 is refused);
//   - refusals are bad_request or unknown_op (exactly when 'op' is another string) with a
//     message; the id is the object's "id" whenever the text is an object, refused or not;
//   - an accepted command written back as a message parses to the same command.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "store/topic.hpp"
#include "stream/ws_command.hpp"

namespace {

namespace json = boost::json;
using namespace conclave::stream;

void check(bool ok) {
    if (!ok) {
        __builtin_trap();
    }
}

bool same(const ws_command& a, const ws_command& b) {
    return a.op == b.op && a.topic == b.topic && a.after == b.after && a.from_now == b.from_now;
}

// What the command should be: nullopt when refused.
std::optional<ws_command> reference(const json::object& obj) {
    const auto* op = obj.if_contains("op");
    if (op == nullptr || !op->is_string()) {
        return std::nullopt;
    }
    const std::string_view name = op->get_string();
    if (name == "ping") {
        return ws_command{};
    }
    const auto* topic = obj.if_contains("topic");
    if ((name != "subscribe" && name != "unsubscribe") || topic == nullptr || !topic->is_string() ||
        !conclave::store::is_valid_topic(topic->get_string())) {
        return std::nullopt;
    }
    ws_command cmd{.topic = std::string(topic->get_string())};
    if (name == "unsubscribe") {
        cmd.op = ws_op::unsubscribe;
        return cmd;
    }
    cmd.op = ws_op::subscribe;
    if (const auto* after = obj.if_contains("after")) {
        if (after->is_string() && after->get_string() == "now") {
            cmd.from_now = true;
        } else if (after->is_int64() && after->get_int64() >= 0) {
            cmd.after = after->get_int64();
        } else {
            return std::nullopt;
        }
    }
    return cmd;
}

std::string as_message(const ws_command& cmd) {
    const char* op = cmd.op == ws_op::ping        ? "ping"
                     : cmd.op == ws_op::subscribe ? "subscribe"
                                                  : "unsubscribe";
    json::object m{{"op", op}};
    if (cmd.op != ws_op::ping) {
        m["topic"] = cmd.topic;
    }
    if (cmd.op == ws_op::subscribe) {
        m["after"] = cmd.from_now ? json::value("now") : json::value(cmd.after);
    }
    return json::serialize(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(bytes), size);
    const auto message = parse_ws_message(text);

    boost::system::error_code ec;
    const auto value = json::parse(text, ec);
    const auto* obj = ec ? nullptr : value.if_object();
    const auto expected = obj != nullptr ? reference(*obj) : std::nullopt;

    const auto* id = obj != nullptr ? obj->if_contains("id") : nullptr;
    check(message.id.has_value() == (id != nullptr));
    if (id != nullptr) {
        check(*message.id == *id);
    }

    check(message.command.has_value() == expected.has_value());
    if (!message.command) {
        const auto& refusal = message.command.error();
        const auto* op = obj != nullptr ? obj->if_contains("op") : nullptr;
        const bool unknown = op != nullptr && op->is_string() && *op != "ping" &&
                             *op != "subscribe" && *op != "unsubscribe";
        check(refusal.code == (unknown ? "unknown_op" : "bad_request"));
        check(!refusal.message.empty());
        return 0;
    }
    const auto& cmd = *message.command;
    check(same(cmd, *expected));
    check(cmd.op == ws_op::ping ? cmd.topic.empty() : conclave::store::is_valid_topic(cmd.topic));
    check(cmd.after >= 0 && (!cmd.from_now || cmd.after == 0));

    const auto again = parse_ws_message(as_message(cmd));
    check(again.command.has_value() && same(*again.command, cmd) && !again.id);
    return 0;
}
