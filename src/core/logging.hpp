// core/logging.hpp: one spdlog logger per component ("http", "jobs", "store", "app"), writing to
// stderr as text or as JSON lines.
//
// Text: `2026-11-21T01:08:42.123 info [http] message key=value`. JSON (`--log-format json`):
// one object per line, {"time", "level", "logger", "msg", ...fields}, always valid JSON
// (control characters escaped, invalid UTF-8 replaced by U+FFFD). Fields such as `request_id`
// and `job_id` are passed at the call (log_with), never taken from thread-local state: handlers
// are coroutines that change threads.
#pragma once

#include <concepts>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

namespace conclave {

enum class log_format { text, json };

// "text" or "json"; nullopt for anything else.
std::optional<log_format> parse_log_format(std::string_view s);

// Sets every logger's level ("debug", "info", "warn", …) and line format. Call once at start.
void init_logging(const std::string& level, log_format format = log_format::text);

// The logger for `component`, created on first use. Thread-safe.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

// One structured field of a log line: a string or a number.
class log_field {
public:
    log_field(std::string_view key, std::string_view value);
    log_field(std::string_view key, const std::string& value)
        : log_field(key, std::string_view(value)) {}
    log_field(std::string_view key, const char* value) : log_field(key, std::string_view(value)) {}
    template <std::integral T>
    log_field(std::string_view key, T value)
        : key_(key), json_(std::to_string(value)), text_(json_) {}
    log_field(std::string_view key, double value);

    std::string_view key() const { return key_; }
    const std::string& json() const { return json_; }  // the value as JSON
    const std::string& text() const { return text_; }  // the value as text

private:
    std::string_view key_;
    std::string json_;
    std::string text_;
};

using log_fields = std::initializer_list<log_field>;

namespace detail {
void log_fields_message(
    spdlog::logger& l, spdlog::level::level_enum level, log_fields fields, std::string msg
);
}

// Logs `fmt` with `fields`: `log_with(*logger("jobs"), spdlog::level::info,
// {{"job_id", id}}, "job {} done", id)`.
template <class... Args>
void log_with(
    spdlog::logger& l,
    spdlog::level::level_enum level,
    log_fields fields,
    spdlog::format_string_t<Args...> fmt,
    Args&&... args
) {
    if (!l.should_log(level)) {
        return;
    }
    detail::log_fields_message(l, level, fields, fmt::format(fmt, std::forward<Args>(args)...));
}

// Appends `s` to `out` as a JSON string (quoted; control characters escaped; invalid UTF-8
// replaced by U+FFFD).
void append_json_string(std::string& out, std::string_view s);

}  // namespace conclave
