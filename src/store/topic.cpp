#include "store/topic.hpp"

namespace conclave::store {

bool is_valid_topic(std::string_view name) noexcept {
    if (name.empty() || name.size() > max_topic_length) {
        return false;
    }
    bool segment_empty = true;
    for (const char c : name) {
        if (c == ':') {
            if (segment_empty) {
                return false;
            }
            segment_empty = true;
            continue;
        }
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        if (!ok) {
            return false;
        }
        segment_empty = false;
    }
    return !segment_empty;
}

}  // namespace conclave::store
