#include "chat/chat.hpp"

#include <boost/json.hpp>

#include "jobs/engine.hpp"
#include "llm/provider.hpp"
#include "store/store.hpp"

namespace conclave::chat {
namespace json = boost::json;
namespace {

// Checks a conversation's council overrides: known keys, their types, routable model ids.
result<json::object> council_overrides(const json::value* v, const llm::providers& models) {
    json::object out;
    if (v == nullptr || v->is_null()) {
        return out;
    }
    if (!v->is_object()) {
        return fail(errc::bad_request, "'council' must be an object");
    }
    auto check_model = [&models](const json::value& m, const std::string& field) -> result<void> {
        if (!m.is_string() || m.as_string().empty()) {
            return fail(errc::bad_request, "'council." + field + "' must be a model id");
        }
        auto route = models.find(std::string(m.as_string()));
        if (!route) {
            return fail(errc::bad_request, "'council." + field + "': " + route.error().message);
        }
        return {};
    };
    for (const auto& [key, value] : v->get_object()) {
        const std::string field(key);
        if (field == "members") {
            if (!value.is_array() || value.as_array().empty() || value.as_array().size() > 16) {
                return fail(errc::bad_request, "'council.members' must list 1 to 16 model ids");
            }
            for (const auto& m : value.as_array()) {
                if (auto ok = check_model(m, "members"); !ok) {
                    return ok.error();
                }
            }
        } else if (field == "chairman" || field == "chairman_fallback" || field == "title_model") {
            if (auto ok = check_model(value, field); !ok) {
                return ok.error();
            }
        } else if (field == "self_ranking") {
            if (!value.is_bool()) {
                return fail(errc::bad_request, "'council.self_ranking' must be a boolean");
            }
        } else {
            return fail(
                errc::bad_request,
                "unknown field 'council." + field +
                    "' (known: members, chairman, chairman_fallback, title_model, self_ranking)"
            );
        }
        out[key] = value;
    }
    return out;
}

}  // namespace

chat::chat(jobs::engine& engine, store::store& db, const llm::providers& models)
    : engine_(engine), db_(db), models_(models) {}

result<std::string> chat::content_of(const json::value& body) {
    const auto* obj = body.if_object();
    const auto* content = obj != nullptr ? obj->if_contains("content") : nullptr;
    if (content == nullptr || !content->is_string()) {
        return fail(errc::bad_request, "'content' must be a non-empty string");
    }
    const auto& text = content->as_string();
    if (text.find_first_not_of(" \t\r\n") == json::string::npos) {
        return fail(errc::bad_request, "'content' must not be empty");
    }
    if (text.size() > max_content) {
        return fail(errc::bad_request, "'content' is longer than 100000 characters");
    }
    return std::string(text);
}

net::awaitable<result<store::conversation>> chat::create(const json::value& body) {
    const auto* obj = body.if_object();
    if (obj == nullptr && !body.is_null()) {
        co_return fail(errc::bad_request, "a conversation is created from an object ({} will do)");
    }
    std::string title = default_title;
    const json::value* council = nullptr;
    if (obj != nullptr) {
        for (const auto& [key, value] : *obj) {
            if (key == "title") {
                if (!value.is_string() || value.as_string().empty() ||
                    value.as_string().size() > 200) {
                    co_return fail(errc::bad_request, "'title' must be 1 to 200 characters");
                }
                title = std::string(value.as_string());
            } else if (key == "council") {
                council = &value;
            } else {
                co_return fail(
                    errc::bad_request,
                    "unknown field '" + std::string(key) + "' (known: title, council)"
                );
            }
        }
    }
    auto overrides = council_overrides(council, models_);
    if (!overrides) {
        co_return overrides.error();
    }
    const auto text = json::serialize(*overrides);
    co_return co_await db_.create_conversation(title, text, engine_.now());
}

net::awaitable<store::conversation_page> chat::list(std::size_t limit, std::int64_t before) {
    co_return co_await db_.list_conversations(limit, before);
}

net::awaitable<result<conversation_view>> chat::get(std::string id) {
    auto c = co_await db_.find_conversation(id);
    if (!c) {
        co_return c.error();
    }
    auto messages = co_await db_.load_messages(id);
    if (!messages) {
        co_return messages.error();  // deleted in between
    }
    co_return conversation_view{std::move(*c), std::move(*messages)};
}

net::awaitable<result<void>> chat::remove(std::string id) {
    co_return co_await engine_.delete_conversation(std::move(id));
}

net::awaitable<result<store::turn>> chat::ask(std::string id, std::string content) {
    auto c = co_await db_.find_conversation(id);
    if (!c) {
        co_return c.error();
    }
    json::object payload = json::parse(c->council).as_object();
    payload["question"] = content;
    payload["conversation_id"] = id;
    payload["title"] = c->message_count == 0;
    const json::value body = json::object{{"type", "council"}, {"payload", std::move(payload)}};
    co_return co_await engine_.start_turn(std::move(id), std::move(content), body);
}

}  // namespace conclave::chat
