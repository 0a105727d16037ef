#include "council/ranking.hpp"

#include <algorithm>
#include <cctype>
#include <set>

namespace conclave::council {

namespace {

constexpr std::string_view header = "final ranking:";
constexpr std::string_view word = "response ";

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
        return static_cast<char>(std::tolower(c));
    });
    return out;
}

// The label at `pos` in `low` ("response x" with x a letter not followed by a letter), or "".
std::string label_at(const std::string& low, std::size_t pos, std::size_t count) {
    const auto at = pos + word.size();
    if (at >= low.size() || !std::isalpha(static_cast<unsigned char>(low[at]))) {
        return {};
    }
    if (at + 1 < low.size() && std::isalpha(static_cast<unsigned char>(low[at + 1]))) {
        return {};
    }
    const auto index = static_cast<std::size_t>(low[at] - 'a');
    return index < count ? label_of(index) : std::string{};
}

void add_unique(std::vector<std::string>& labels, std::string label) {
    if (!label.empty() && std::find(labels.begin(), labels.end(), label) == labels.end()) {
        labels.push_back(std::move(label));
    }
}

}  // namespace

std::string label_of(std::size_t index) {
    return "Response " + std::string(1, static_cast<char>('A' + index));
}

parsed_ranking parse_ranking(std::string_view text, std::size_t answer_count) {
    const auto low = lower(text);
    const auto count = std::min<std::size_t>(answer_count, 26);
    parsed_ranking out;
    const auto head = low.rfind(header);
    const std::size_t from = head == std::string::npos ? 0 : head + header.size();
    if (head != std::string::npos) {
        // Strict: every non-empty line after the header is "N. Response X", numbered 1, 2, ….
        bool strict = true;
        int expected = 1;
        std::vector<std::string> labels;
        std::size_t line_start = from;
        while (line_start <= low.size()) {
            auto line_end = low.find('\n', line_start);
            if (line_end == std::string::npos) {
                line_end = low.size();
            }
            std::string_view line(low.data() + line_start, line_end - line_start);
            while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) {
                line.remove_prefix(1);
            }
            while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
                line.remove_suffix(1);
            }
            if (!line.empty()) {
                const auto number = std::to_string(expected) + ". ";
                const auto rest = line.substr(std::min(line.size(), number.size()));
                if (!line.starts_with(number) || !rest.starts_with(word) ||
                    rest.size() != word.size() + 1) {
                    strict = false;
                    break;
                }
                const auto label =
                    label_at(low, static_cast<std::size_t>(rest.data() - low.data()), count);
                if (label.empty() ||
                    std::find(labels.begin(), labels.end(), label) != labels.end()) {
                    strict = false;
                    break;
                }
                labels.push_back(label);
                ++expected;
            }
            line_start = line_end + 1;
        }
        if (strict && !labels.empty()) {
            out.labels = std::move(labels);
            out.strict = true;
            return out;
        }
    }
    // Lenient: every label mentioned, in order of first mention.
    for (auto pos = low.find(word, from); pos != std::string::npos; pos = low.find(word, pos + 1)) {
        add_unique(out.labels, label_at(low, pos, count));
    }
    return out;
}

std::vector<aggregate_entry> aggregate_rankings(
    const std::vector<parsed_ranking>& rankings,
    const std::map<std::string, std::string>& label_to_model
) {
    std::map<std::string, std::pair<double, int>> sums;  // model → (sum of positions, count)
    for (const auto& ranking : rankings) {
        for (std::size_t idx = 0; idx < ranking.labels.size(); ++idx) {
            auto it = label_to_model.find(ranking.labels[idx]);
            if (it == label_to_model.end()) {
                continue;
            }
            auto& [sum, n] = sums[it->second];
            sum += static_cast<double>(idx + 1);
            ++n;
        }
    }
    std::vector<aggregate_entry> out;
    for (const auto& [model, total] : sums) {
        out.push_back({model, total.first / total.second, total.second});
    }
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
        return a.average_rank < b.average_rank;
    });
    return out;
}

}  // namespace conclave::council
