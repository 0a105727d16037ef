#include "store/records.hpp"

#include <array>

namespace conclave::store {
namespace {

constexpr std::array<std::pair<job_state, std::string_view>, 5> state_names{{
    {job_state::queued, "queued"},
    {job_state::active, "active"},
    {job_state::succeeded, "succeeded"},
    {job_state::failed, "failed"},
    {job_state::cancelled, "cancelled"},
}};

}  // namespace

const char* to_string(job_state s) noexcept {
    for (const auto& [state, name] : state_names) {
        if (state == s) {
            return name.data();
        }
    }
    return "unknown";
}

std::optional<job_state> parse_job_state(std::string_view s) noexcept {
    for (const auto& [state, name] : state_names) {
        if (name == s) {
            return state;
        }
    }
    return std::nullopt;
}

bool is_terminal(job_state s) noexcept {
    return s == job_state::succeeded || s == job_state::failed || s == job_state::cancelled;
}

void job_counts::add(job_state state, std::int64_t n) noexcept {
    switch (state) {
        case job_state::queued:
            queued += n;
            return;
        case job_state::active:
            active += n;
            return;
        case job_state::succeeded:
            succeeded += n;
            return;
        case job_state::failed:
            failed += n;
            return;
        case job_state::cancelled:
            cancelled += n;
            return;
    }
}

namespace {
constexpr std::string_view job_topic_prefix = "job:";
}  // namespace

std::string job_topic(std::string_view id) {
    return std::string(job_topic_prefix) + std::string(id);
}

bool is_job_topic(std::string_view topic) {
    return topic.starts_with(job_topic_prefix);
}

std::string_view job_of_topic(std::string_view topic) {
    return is_job_topic(topic) ? topic.substr(job_topic_prefix.size()) : std::string_view{};
}

std::string conversation_topic(std::string_view id) {
    return "conversation:" + std::string(id);
}

}  // namespace conclave::store
