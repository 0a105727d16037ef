#include "store/conversations.hpp"

#include <boost/json.hpp>

#include "store/records_json.hpp"

namespace conclave::store {
namespace json = boost::json;

std::string conversation_notice(const conversation& c) {
    return json::serialize(json::object{
        {"id", c.id},
        {"title", c.title},
        {"processing_state", c.processing_state},
        {"message_count", c.message_count}});
}

std::string conversation_deleted_notice(const std::string& id) {
    return json::serialize(json::object{{"id", id}});
}

std::optional<std::string> conversation_of(const job& j) {
    constexpr std::string_view prefix = "conversation:";
    for (const auto& topic : j.topics) {
        if (topic.starts_with(prefix)) {
            return topic.substr(prefix.size());
        }
    }
    return std::nullopt;
}

turn_end end_of_turn(const job& j, unix_ms now) {
    turn_end out;
    out.answer.role = "assistant";
    out.answer.job_id = j.id;
    out.answer.created_at = now;
    if (j.state == job_state::succeeded) {
        const auto result = parse_stored(j.result);
        const auto* obj = result.if_object();
        json::object stages;
        bool answered = false;
        if (obj != nullptr) {
            for (const char* key : {"stage1", "stage2", "stage3"}) {
                stages[key] = obj->contains(key) ? obj->at(key) : json::value(nullptr);
            }
            const auto* stage3 = stages["stage3"].if_object();
            if (stage3 != nullptr && !stage3->contains("error")) {
                if (const auto* text = stage3->if_contains("response"); text && text->is_string()) {
                    out.answer.content = std::string(text->as_string());
                    answered = true;
                }
            }
        }
        out.answer.stages = json::serialize(stages);
        const auto* metadata = obj != nullptr ? obj->if_contains("metadata") : nullptr;
        out.answer.metadata = metadata != nullptr ? json::serialize(*metadata) : "{}";
        out.processing_state = answered ? "idle" : "error";
        return out;
    }
    json::value error = parse_stored(j.error);
    if (j.state == job_state::cancelled) {
        error = json::object{{"code", "cancelled"}, {"message", "the council was cancelled"}};
    }
    out.answer.metadata = json::serialize(json::object{{"error", error}});
    out.processing_state = j.state == job_state::cancelled ? "idle" : "error";
    return out;
}

}  // namespace conclave::store
