#include "jobs/registry.hpp"

namespace conclave::jobs {

void registry::add(type_config type) {
    auto name = type.name;
    types_[name] = std::move(type);
}

const type_config* registry::find(const std::string& name) const {
    auto it = types_.find(name);
    return it == types_.end() ? nullptr : &it->second;
}

std::vector<std::string> registry::names(executor which) const {
    std::vector<std::string> out;
    for (const auto& [name, type] : types_) {
        if (type.exec == which) {
            out.push_back(name);
        }
    }
    return out;
}

std::vector<std::pair<std::string, int>> registry::limits(executor which) const {
    std::vector<std::pair<std::string, int>> out;
    for (const auto& [name, type] : types_) {
        if (type.exec == which && type.concurrency > 0) {
            out.emplace_back(name, type.concurrency);
        }
    }
    return out;
}

void registry::set_queue_limit(const std::string& queue, int concurrency) {
    for (auto& [name, limit] : queue_limits_) {
        if (name == queue) {
            limit = concurrency;
            return;
        }
    }
    queue_limits_.emplace_back(queue, concurrency);
}

}  // namespace conclave::jobs
