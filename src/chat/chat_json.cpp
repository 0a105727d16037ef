#include "chat/chat_json.hpp"

#include <boost/json.hpp>

#include "store/records_json.hpp"

namespace conclave::chat {
namespace json = boost::json;
namespace {

json::value id_or_null(const std::string& id) {
    return id.empty() ? json::value(nullptr) : json::value(id);
}

// The error of a turn that ended without an answer, if it did.
const json::value* turn_error(const json::value& metadata) {
    const auto* obj = metadata.if_object();
    return obj != nullptr ? obj->if_contains("error") : nullptr;
}

}  // namespace

json::object to_json(const store::conversation& c) {
    return json::object{
        {"id", c.id},
        {"title", c.title},
        {"created_at", format_time(c.created_at)},
        {"processing_state", c.processing_state},
        {"council", store::parse_stored(c.council)},
        {"message_count", c.message_count},
        {"last_job_id", id_or_null(c.last_job_id)},
        {"topic", store::conversation_topic(c.id)}};
}

json::object to_json(const store::message& m) {
    json::object o{
        {"id", m.id},
        {"seq", m.seq},
        {"role", m.role},
        {"content", m.content},
        {"job_id", id_or_null(m.job_id)},
        {"created_at", format_time(m.created_at)}};
    if (m.role == "assistant") {
        const auto stages = store::parse_stored(m.stages);
        for (const char* key : {"stage1", "stage2", "stage3"}) {
            const auto* obj = stages.if_object();
            o[key] = obj != nullptr && obj->contains(key) ? obj->at(key) : json::value(nullptr);
        }
        auto metadata = store::parse_stored(m.metadata);
        if (const auto* error = turn_error(metadata)) {
            o["error"] = *error;
        }
        o["metadata"] = std::move(metadata);
    }
    return o;
}

json::object to_json(const conversation_view& v) {
    auto o = to_json(v.conversation);
    json::array messages;
    for (const auto& m : v.messages) {
        messages.push_back(to_json(m));
    }
    o["messages"] = std::move(messages);
    return o;
}

json::object compat_summary(const store::conversation& c) {
    return json::object{
        {"id", c.id},
        {"created_at", format_time(c.created_at)},
        {"title", c.title},
        {"message_count", c.message_count},
        {"processing_state", c.processing_state}};
}

json::array compat_stage_list(const json::value& items, const char* text_field) {
    json::array out;
    if (const auto* list = items.if_array()) {
        for (const auto& item : *list) {
            const auto* obj = item.if_object();
            if (obj == nullptr || obj->contains("error")) {
                continue;
            }
            json::object shown{
                {"model", obj->contains("model") ? obj->at("model") : json::value("")},
                {text_field, obj->contains(text_field) ? obj->at(text_field) : json::value("")}};
            if (const auto* parsed = obj->if_contains("parsed_ranking")) {
                shown["parsed_ranking"] = *parsed;
            }
            out.push_back(std::move(shown));
        }
    }
    return out;
}

json::object compat_stage3(const json::value& stage3) {
    const auto* obj = stage3.if_object();
    json::object out{{"model", ""}, {"response", ""}};
    if (obj == nullptr) {
        return out;
    }
    if (const auto* model = obj->if_contains("model")) {
        out["model"] = *model;
    }
    if (const auto* error = obj->if_contains("error"); error != nullptr && error->is_string()) {
        out["response"] = "Error: " + std::string(error->as_string());
    } else if (const auto* response = obj->if_contains("response")) {
        out["response"] = *response;
    }
    return out;
}

json::object compat_json(const store::message& m) {
    if (m.role != "assistant") {
        return json::object{{"role", m.role}, {"content", m.content}};
    }
    const auto stages = store::parse_stored(m.stages);
    const auto metadata = store::parse_stored(m.metadata);
    const auto* obj = stages.if_object();
    auto stage = [obj](const char* key) {
        return obj != nullptr && obj->contains(key) ? obj->at(key) : json::value(nullptr);
    };
    json::object out{
        {"role", "assistant"},
        {"stage1", compat_stage_list(stage("stage1"), "response")},
        {"stage2", compat_stage_list(stage("stage2"), "ranking")},
        {"stage3", compat_stage3(stage("stage3"))},
        {"metadata", metadata}};
    if (const auto* error = turn_error(metadata)) {
        const auto* e = error->if_object();
        const auto* message = e != nullptr ? e->if_contains("message") : nullptr;
        out["stage3"] = json::object{
            {"model", ""},
            {"response",
             "Error: " + (message != nullptr && message->is_string()
                              ? std::string(message->as_string())
                              : std::string("the council failed"))}};
    }
    return out;
}

json::object compat_json(const conversation_view& v) {
    auto o = compat_summary(v.conversation);
    o.erase("message_count");
    json::array messages;
    for (const auto& m : v.messages) {
        messages.push_back(compat_json(m));
    }
    o["messages"] = std::move(messages);
    return o;
}

}  // namespace conclave::chat
