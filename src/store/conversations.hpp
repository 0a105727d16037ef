// store/conversations.hpp: the backend-neutral rules of a conversation's turns, shared by every
// store backend so that they end a council turn the same way.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "store/records.hpp"

namespace conclave::store {

// The topic that tells of every conversation created, updated or deleted (for live lists).
inline constexpr const char* conversations_topic = "conversations";

// The data of conversation.created|updated on that topic: {id, title, processing_state,
// message_count}; and of conversation.deleted: {id}.
std::string conversation_notice(const conversation& c);
std::string conversation_deleted_notice(const std::string& id);

// The conversation a job answers in (from its extra topic conversation_topic(id)), if any.
std::optional<std::string> conversation_of(const job& j);

// How a turn ends once its job `j` is terminal: the assistant message (without id, seq and
// conversation) and the conversation's next processing_state. A successful council result
// {stage1, stage2, stage3, metadata} gives the final answer as content; a result whose stage 3
// failed, a failed job, or a cancelled one gives an assistant message that says so.
struct turn_end {
    message answer;
    std::string processing_state;
};
turn_end end_of_turn(const job& j, unix_ms now);

}  // namespace conclave::store
