#include "llm/openai_wire.hpp"

#include <boost/json.hpp>

namespace conclave::llm {
namespace json = boost::json;

std::string chat_body(const chat_request& request) {
    json::array messages;
    for (const auto& m : request.messages) {
        messages.push_back(json::object{{"role", m.role}, {"content", m.content}});
    }
    json::object body{
        {"model", request.model},
        {"messages", std::move(messages)},
        {"stream", true},
        {"stream_options", json::object{{"include_usage", true}}},
    };
    if (request.temperature) {
        body["temperature"] = *request.temperature;
    }
    return json::serialize(body);
}

namespace {

std::optional<std::int64_t> int_of(const json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (v->is_int64()) {
        return v->as_int64();
    }
    if (v->is_uint64()) {
        return static_cast<std::int64_t>(v->as_uint64());
    }
    return std::nullopt;
}

std::string message_of(const json::value& error) {
    if (error.is_string()) {
        return std::string(error.as_string());
    }
    if (const auto* obj = error.if_object()) {
        if (const auto* m = obj->if_contains("message"); m != nullptr && m->is_string()) {
            return std::string(m->as_string());
        }
    }
    return json::serialize(error);
}

}  // namespace

std::optional<chunk> parse_chunk(std::string_view data) {
    chunk out;
    if (data == "[DONE]") {
        out.done = true;
        return out;
    }
    boost::system::error_code ec;
    auto value = json::parse(data, ec);
    const auto* obj = ec ? nullptr : value.if_object();
    if (obj == nullptr) {
        return std::nullopt;
    }
    if (const auto* error = obj->if_contains("error")) {
        out.error = message_of(*error);
        return out;
    }
    if (const auto* choices = obj->if_contains("choices")) {
        if (!choices->is_array()) {
            return std::nullopt;
        }
        for (const auto& choice : choices->get_array()) {
            const auto* c = choice.if_object();
            if (c == nullptr) {
                return std::nullopt;
            }
            if (const auto* delta = c->if_contains("delta");
                delta != nullptr && delta->is_object()) {
                const auto* content = delta->get_object().if_contains("content");
                if (content != nullptr && content->is_string()) {
                    out.content += content->as_string();
                }
            }
            if (const auto* reason = c->if_contains("finish_reason");
                reason != nullptr && reason->is_string()) {
                out.finish_reason = std::string(reason->as_string());
            }
        }
    }
    if (const auto* u = obj->if_contains("usage"); u != nullptr && u->is_object()) {
        const auto& uo = u->get_object();
        llm::usage got;
        got.prompt_tokens = int_of(uo, "prompt_tokens").value_or(0);
        got.completion_tokens = int_of(uo, "completion_tokens").value_or(0);
        if (const auto* cost = uo.if_contains("cost"); cost != nullptr && cost->is_number()) {
            got.cost = cost->to_number<double>();
        }
        out.usage = got;
    }
    return out;
}

std::string error_message(int status, std::string_view body) {
    boost::system::error_code ec;
    auto value = json::parse(body, ec);
    if (!ec && value.is_object()) {
        const auto& obj = value.get_object();
        if (const auto* error = obj.if_contains("error")) {
            return message_of(*error);
        }
        if (const auto* detail = obj.if_contains("detail")) {
            return message_of(*detail);
        }
    }
    std::string text(body.substr(0, 300));
    if (text.empty()) {
        text = "HTTP " + std::to_string(status);
    }
    return text;
}

}  // namespace conclave::llm
