#include "store/records_json.hpp"

#include <boost/json.hpp>

namespace conclave::store {
namespace json = boost::json;
namespace {

json::value time_or_null(unix_ms t) {
    return t == 0 ? json::value(nullptr) : json::value(format_time(t));
}

}  // namespace

json::value parse_stored(std::string_view text) {
    if (text.empty()) {
        return nullptr;
    }
    boost::system::error_code ec;
    auto value = json::parse(text, ec);
    if (ec) {
        return json::string(text);
    }
    return value;
}

json::object to_json(const job& j) {
    json::object o;
    o["id"] = j.id;
    o["type"] = j.type;
    o["queue"] = j.queue;
    o["state"] = to_string(j.state);
    o["priority"] = j.priority;
    o["payload"] = parse_stored(j.payload);
    o["result"] = parse_stored(j.result);
    o["error"] = parse_stored(j.error);
    o["progress"] = parse_stored(j.progress);
    o["attempts"] = j.attempts;
    o["max_attempts"] = j.max_attempts;
    o["timeout_s"] = j.timeout_s;
    o["run_at"] = format_time(j.run_at);
    o["cancel_requested"] = j.cancel_requested;
    o["idempotency_key"] =
        j.idempotency_key.empty() ? json::value(nullptr) : json::value(j.idempotency_key);
    json::array topics;
    for (const auto& t : j.topics) {
        topics.emplace_back(t);
    }
    o["topics"] = std::move(topics);
    o["lease_owner"] = j.lease_owner.empty() ? json::value(nullptr) : json::value(j.lease_owner);
    o["lease_expires_at"] =
        j.state == job_state::active ? time_or_null(j.lease_expires_at) : nullptr;
    o["created_at"] = format_time(j.created_at);
    o["started_at"] = time_or_null(j.started_at);
    o["finished_at"] = time_or_null(j.finished_at);
    return o;
}

json::object to_json(const event& e) {
    json::object o;
    o["topic"] = e.topic;
    o["offset"] = e.offset;
    o["type"] = e.type;
    o["data"] = parse_stored(e.data);
    o["time"] = format_time(e.time);
    return o;
}

std::string topics_to_text(const std::vector<std::string>& topics) {
    json::array a;
    for (const auto& t : topics) {
        a.emplace_back(t);
    }
    return json::serialize(a);
}

std::vector<std::string> topics_from_text(std::string_view text) {
    std::vector<std::string> out;
    if (text == "[]" || text.empty()) {
        return out;
    }
    boost::system::error_code ec;
    auto value = json::parse(text, ec);
    if (ec || !value.is_array()) {
        return out;
    }
    for (const auto& item : value.get_array()) {
        if (item.is_string()) {
            out.emplace_back(item.get_string());
        }
    }
    return out;
}

}  // namespace conclave::store
