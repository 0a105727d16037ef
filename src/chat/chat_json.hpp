// chat/chat_json.hpp: conversations and messages as the two APIs show them.
//
// Native (/v1): every field, stage items with their errors, times as RFC 3339.
// llm-council (/api): the field names that web client reads — a message is {role, content} or
// {role, stage1: [{model, response}], stage2: [{model, ranking, parsed_ranking}],
// stage3: {model, response}} with only the members that answered (errors are in `metadata`);
// a turn that produced no answer shows its error as stage 3's response. Extra fields are kept.
#pragma once

#include <boost/json/fwd.hpp>

#include "chat/chat.hpp"

namespace conclave::chat {

boost::json::object to_json(const store::conversation& c);
boost::json::object to_json(const store::message& m);
boost::json::object to_json(const conversation_view& v);

boost::json::object compat_summary(const store::conversation& c);
boost::json::object compat_json(const store::message& m);
boost::json::object compat_json(const conversation_view& v);

// Stage items of a council result in the llm-council form (failed members left out).
boost::json::array compat_stage_list(const boost::json::value& items, const char* text_field);
// Stage 3 in the llm-council form: a failed synthesis reads "Error: …" as its response.
boost::json::object compat_stage3(const boost::json::value& stage3);

}  // namespace conclave::chat
