// stream/ws_command.hpp: a WebSocket client message (stream/ws.hpp lists them), parsed and
// checked as far as that needs no connection state. The session then runs the command (whether
// the topic is followed, readable by the caller, under the subscription limit, exists).
// Pure functions: safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

namespace conclave::stream {

enum class ws_op { ping, subscribe, unsubscribe };

struct ws_command {
    ws_op op = ws_op::ping;
    std::string topic;       // subscribe, unsubscribe: a valid topic name
    std::int64_t after = 0;  // subscribe: follow from this offset (>= 0; 0 when from_now)
    bool from_now = false;   // subscribe: "after":"now", only what is appended from now on
};

// The error reply to a message refused here: its wire code (bad_request, unknown_op) and text.
struct ws_refusal {
    std::string code;
    std::string message;
};

struct ws_message {
    std::optional<boost::json::value> id;  // the message's "id", echoed in the reply
    boost::system::result<ws_command, ws_refusal> command;
};

// Parses one client message. Refused: not a JSON object, no string 'op' (bad_request), an op
// other than ping, subscribe, unsubscribe (unknown_op), a subscribe or unsubscribe without a
// valid 'topic', a subscribe whose 'after' is neither an integer >= 0 nor "now" (bad_request).
ws_message parse_ws_message(std::string_view text);

}  // namespace conclave::stream
