// core/logging.hpp: one spdlog logger per component ("http", "jobs", "store", "app").
#pragma once

#include <memory>
#include <string>

#include <spdlog/logger.h>

namespace conclave {

// Sets every logger's level ("debug", "info", "warn", …). Call once at start.
void init_logging(const std::string& level);

// The logger for `component`, created on first use. Thread-safe.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

}  // namespace conclave
