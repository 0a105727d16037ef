#include "core/logging.hpp"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace conclave {
namespace {

std::mutex registry_mutex;
spdlog::level::level_enum current_level = spdlog::level::info;
const std::string current_pattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";

}  // namespace

void init_logging(const std::string& level) {
    std::lock_guard lock(registry_mutex);
    current_level = spdlog::level::from_str(level);
    spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) {
        l->set_level(current_level);
        l->set_pattern(current_pattern, spdlog::pattern_time_type::utc);
    });
}

std::shared_ptr<spdlog::logger> logger(const std::string& component) {
    std::lock_guard lock(registry_mutex);
    if (auto existing = spdlog::get(component)) {
        return existing;
    }
    auto created = spdlog::stderr_color_mt(component);
    created->set_level(current_level);
    created->set_pattern(current_pattern, spdlog::pattern_time_type::utc);
    return created;
}

}  // namespace conclave
