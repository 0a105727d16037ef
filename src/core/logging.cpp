#include "core/logging.hpp"

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "core/text.hpp"

namespace conclave {
namespace {

std::mutex registry_mutex;
spdlog::level::level_enum current_level = spdlog::level::info;
std::atomic<log_format> current_format{log_format::text};
const std::string current_pattern = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";

// A line's fields travel beside its message, not inside it (where a message could forge
// them): the source location's file name points here, and its function name at the fields'
// JSON members. Loggers are synchronous, so the pointer outlives the formatting.
const char fields_marker[] = "conclave-log-fields";

void append_hex_escape(std::string& out, unsigned code) {
    static constexpr char hex[] = "0123456789abcdef";
    out += "\\u00";
    out += hex[(code >> 4) & 0xF];
    out += hex[code & 0xF];
}

std::string format_utc(std::chrono::system_clock::time_point t) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm parts{};
    gmtime_r(&secs, &parts);
    char buf[32];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &parts);
    char millis[8];
    std::snprintf(millis, sizeof millis, ".%03dZ", static_cast<int>(ms % 1000));
    return std::string(buf, n) + millis;
}

// {"time","level","logger","msg",...fields} and a newline.
class json_formatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        std::string line = "{\"time\":\"" + format_utc(msg.time) + "\",\"level\":";
        const auto level = spdlog::level::to_string_view(msg.level);
        append_json_string(line, std::string_view(level.data(), level.size()));
        line += ",\"logger\":";
        append_json_string(line, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
        line += ",\"msg\":";
        append_json_string(line, std::string_view(msg.payload.data(), msg.payload.size()));
        if (msg.source.filename == fields_marker && msg.source.funcname != nullptr &&
            *msg.source.funcname != '\0') {
            line += ',';
            line += msg.source.funcname;
        }
        line += "}\n";
        dest.append(line.data(), line.data() + line.size());
    }

    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<json_formatter>();
    }
};

void apply_format(spdlog::logger& l) {
    if (current_format.load() == log_format::json) {
        l.set_formatter(std::make_unique<json_formatter>());
    } else {
        l.set_pattern(current_pattern, spdlog::pattern_time_type::utc);
    }
}

}  // namespace

std::optional<log_format> parse_log_format(std::string_view s) {
    if (s == "text") {
        return log_format::text;
    }
    if (s == "json") {
        return log_format::json;
    }
    return std::nullopt;
}

void init_logging(const std::string& level, log_format format) {
    std::lock_guard lock(registry_mutex);
    current_level = spdlog::level::from_str(level);
    current_format = format;
    spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) {
        l->set_level(current_level);
        apply_format(*l);
    });
    if (format == log_format::json) {
        // spdlog's own complaints (a bad format string) would otherwise be a line of text.
        spdlog::set_error_handler([](const std::string& what) {
            std::string line = "{\"time\":\"" + format_utc(std::chrono::system_clock::now()) +
                               "\",\"level\":\"error\",\"logger\":\"log\",\"msg\":";
            append_json_string(line, what);
            line += "}\n";
            std::fputs(line.c_str(), stderr);
        });
    }
}

std::shared_ptr<spdlog::logger> logger(const std::string& component) {
    std::lock_guard lock(registry_mutex);
    if (auto existing = spdlog::get(component)) {
        return existing;
    }
    auto created = spdlog::stderr_color_mt(component);
    created->set_level(current_level);
    apply_format(*created);
    return created;
}

log_field::log_field(std::string_view key, std::string_view value) : key_(key), text_(value) {
    append_json_string(json_, value);
}

log_field::log_field(std::string_view key, double value) : key_(key) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", value);
    json_ = buf;
    text_ = buf;
}

namespace detail {

void log_fields_message(
    spdlog::logger& l, spdlog::level::level_enum level, log_fields fields, std::string msg
) {
    if (current_format.load() == log_format::text) {
        for (const auto& f : fields) {
            msg += ' ';
            msg += f.key();
            msg += '=';
            msg += f.text();
        }
        l.log(level, spdlog::string_view_t(msg));
        return;
    }
    std::string members;
    for (const auto& f : fields) {
        if (!members.empty()) {
            members += ',';
        }
        append_json_string(members, f.key());
        members += ':';
        members += f.json();
    }
    const spdlog::source_loc where{fields_marker, 0, members.c_str()};
    l.log(where, level, spdlog::string_view_t(msg));
}

}  // namespace detail

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    std::size_t at = 0;
    while (at < s.size()) {
        const auto c = static_cast<unsigned char>(s[at]);
        if (c < 0x80) {
            switch (c) {
                case '"':
                    out += "\\\"";
                    break;
                case '\\':
                    out += "\\\\";
                    break;
                case '\n':
                    out += "\\n";
                    break;
                case '\r':
                    out += "\\r";
                    break;
                case '\t':
                    out += "\\t";
                    break;
                default:
                    if (c < 0x20 || c == 0x7F) {
                        append_hex_escape(out, c);
                    } else {
                        out += static_cast<char>(c);
                    }
            }
            ++at;
            continue;
        }
        const auto len = utf8_sequence(s, at);
        if (len == 0) {
            out += "\xEF\xBF\xBD";  // U+FFFD for each byte that starts no valid sequence
            ++at;
            continue;
        }
        out.append(s.substr(at, len));
        at += len;
    }
    out += '"';
}

}  // namespace conclave
