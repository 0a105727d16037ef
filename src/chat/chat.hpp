// chat/chat.hpp: conversations with the council — what the native API (/v1/conversations) and
// the llm-council compatible API (/api) share: validation, the turn's council job, the views.
//
// A conversation may carry its own council (members, chairman, chairman_fallback, title_model,
// self_ranking), checked against the configured providers when it is created; the rest comes
// from the server's [council]. Each user message starts one `council` job answering it (see
// store::start_turn); the first message also names the conversation.
#pragma once

#include <string>
#include <vector>

#include <boost/json/fwd.hpp>

#include "core/asio.hpp"
#include "core/error.hpp"
#include "store/records.hpp"

namespace conclave::jobs {
class engine;
}
namespace conclave::llm {
class providers;
}
namespace conclave::store {
class store;
}

namespace conclave::chat {

constexpr std::size_t max_content = 100'000;  // as the council's question
constexpr const char* default_title = "New Conversation";

struct conversation_view {
    store::conversation conversation;
    std::vector<store::message> messages;
};

class chat {
public:
    chat(jobs::engine& engine, store::store& db, const llm::providers& models);

    // `body`: {title?, council?: {members?, chairman?, chairman_fallback?, title_model?,
    // self_ranking?}}. Errors: bad_request naming the field (unknown model providers too).
    net::awaitable<result<store::conversation>> create(const boost::json::value& body);
    net::awaitable<store::conversation_page> list(std::size_t limit, std::int64_t before);
    // Errors: not_found.
    net::awaitable<result<conversation_view>> get(std::string id);
    // Errors: not_found.
    net::awaitable<result<void>> remove(std::string id);
    // `content`: the user's message. Errors: bad_request (empty or too long), not_found,
    // conversation_busy.
    net::awaitable<result<store::turn>> ask(std::string id, std::string content);

    // The text of the `content` field of `body`, or the error for it.
    static result<std::string> content_of(const boost::json::value& body);

private:
    jobs::engine& engine_;
    store::store& db_;
    const llm::providers& models_;
};

}  // namespace conclave::chat
