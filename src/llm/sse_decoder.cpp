#include "llm/sse_decoder.hpp"

namespace conclave::llm {

bool sse_decoder::feed(
    std::string_view bytes, const std::function<void(std::string_view)>& on_data
) {
    if (failed_) {
        return false;
    }
    std::size_t start = 0;
    for (std::size_t idx = 0; idx < bytes.size(); ++idx) {
        const char c = bytes[idx];
        if (c != '\n' && c != '\r') {
            after_cr_ = false;
            continue;
        }
        if (c == '\n' && after_cr_) {
            after_cr_ = false;  // the LF of a CRLF whose CR ended the line
            start = idx + 1;
            continue;
        }
        after_cr_ = c == '\r';
        if (partial_.empty()) {
            line(bytes.substr(start, idx - start), on_data);
        } else {
            partial_.append(bytes.substr(start, idx - start));
            const std::string whole = std::move(partial_);
            partial_.clear();
            line(whole, on_data);
        }
        start = idx + 1;
    }
    partial_.append(bytes.substr(start));
    if (partial_.size() > max_line_ || data_.size() > max_line_) {
        failed_ = true;
        return false;
    }
    return true;
}

void sse_decoder::line(
    std::string_view text, const std::function<void(std::string_view)>& on_data
) {
    if (text.empty()) {
        if (has_data_) {
            on_data(data_);
        }
        data_.clear();
        has_data_ = false;
        return;
    }
    if (text.front() == ':') {
        return;  // a comment
    }
    const auto colon = text.find(':');
    const auto field = text.substr(0, colon);
    if (field != "data") {
        return;
    }
    auto value = colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') {
        value.remove_prefix(1);
    }
    if (has_data_) {
        data_ += '\n';
    }
    data_.append(value);
    has_data_ = true;
}

}  // namespace conclave::llm
