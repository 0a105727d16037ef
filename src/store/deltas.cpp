#include "store/deltas.hpp"

#include <boost/json.hpp>

namespace conclave::store {
namespace json = boost::json;

bool is_delta_type(std::string_view type) noexcept {
    return type == "delta" || type.ends_with(".delta");
}

std::int64_t utf16_length(std::string_view utf8) noexcept {
    std::int64_t units = 0;
    for (const char c : utf8) {
        const auto byte = static_cast<unsigned char>(c);
        if ((byte & 0xC0U) != 0x80U) {
            ++units;  // a lead byte: one code unit ...
        }
        if (byte >= 0xF0U) {
            ++units;  // ... two for a code point beyond the BMP (a surrogate pair)
        }
    }
    return units;
}

std::size_t utf16_skip(std::string_view utf8, std::int64_t units) noexcept {
    std::size_t pos = 0;
    while (pos < utf8.size() && units > 0) {
        const auto byte = static_cast<unsigned char>(utf8[pos]);
        units -= byte >= 0xF0U ? 2 : 1;
        ++pos;
        while (pos < utf8.size() && (static_cast<unsigned char>(utf8[pos]) & 0xC0U) == 0x80U) {
            ++pos;
        }
    }
    return pos;
}

std::optional<delta> parse_delta(std::string_view data) {
    boost::system::error_code ec;
    auto value = json::parse(data, ec);
    if (ec) {
        return std::nullopt;
    }
    return parse_delta(value);
}

std::optional<delta> parse_delta(const json::value& data) {
    const auto* obj = data.if_object();
    if (obj == nullptr) {
        return std::nullopt;
    }
    const auto* attempt = obj->if_contains("attempt");
    const auto* part = obj->if_contains("part");
    const auto* at = obj->if_contains("at");
    const auto* text = obj->if_contains("text");
    if (attempt == nullptr || !attempt->is_int64() || part == nullptr || !part->is_string() ||
        at == nullptr || !at->is_int64() || at->as_int64() < 0 || text == nullptr ||
        !text->is_string()) {
        return std::nullopt;
    }
    return delta{
        .attempt = static_cast<int>(attempt->as_int64()),
        .part = std::string(part->as_string()),
        .at = at->as_int64(),
        .text = std::string(text->as_string()),
    };
}

std::string delta_json(const delta& d) {
    return json::serialize(json::object{
        {"attempt", d.attempt},
        {"part", d.part},
        {"at", d.at},
        {"text", d.text},
    });
}

void parts_fold::add(const event& e) {
    if (first_ == 0) {
        first_ = e.offset;
    }
    offset_ = e.offset;
    if (!is_delta_type(e.type)) {
        if (others_.size() == 2 * max_kept_events) {  // trimmed in bulk: amortized O(1)
            others_.erase(others_.begin(), others_.begin() + max_kept_events);
            others_dropped_ = true;
        }
        others_.push_back(e);
    }
    if (e.type == "job.started") {
        boost::system::error_code ec;
        auto data = json::parse(e.data, ec);
        const auto* obj = ec ? nullptr : data.if_object();
        const auto* attempt = obj != nullptr ? obj->if_contains("attempt") : nullptr;
        if (attempt != nullptr && attempt->is_int64() && attempt->as_int64() == attempt_) {
            parts_.clear();  // the attempt starts here: nothing before it counts
            lengths_.clear();
            complete_ = true;
            started_ = true;
        }
        return;
    }
    if (!is_delta_type(e.type)) {
        return;
    }
    auto d = parse_delta(e.data);
    if (!d || d->attempt != attempt_) {
        return;  // void: another attempt's
    }
    auto& text = parts_[d->part];
    auto& length = lengths_[d->part];
    if (d->at > length) {
        complete_ = false;  // the deltas before this one are gone
        return;
    }
    const auto units = utf16_length(d->text);
    if (d->at + units <= length) {
        return;  // nothing new
    }
    const auto skip = utf16_skip(d->text, length - d->at);
    text.append(d->text, skip);
    length = d->at + units;
}

std::vector<event> parts_fold::others() const {
    const auto skip = others_.size() > max_kept_events ? others_.size() - max_kept_events : 0;
    return {others_.begin() + static_cast<std::ptrdiff_t>(skip), others_.end()};
}

}  // namespace conclave::store
