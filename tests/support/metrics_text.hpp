// tests/support/metrics_text.hpp: samples read from a node's /metrics text (Prometheus text
// format), for tests and benchmarks that look at what a node counted.
#pragma once

#include <string>
#include <string_view>

namespace conclave::test {

// The sum of the samples of `series` (a full sample name, e.g.
// "conclave_store_commit_seconds_count") over all its label sets, or over those whose labels
// contain `label` (e.g. R"(code="lease_lost")") when it is given. 0 when there are none.
inline double metric_sum(
    std::string_view text, std::string_view series, std::string_view label = {}
) {
    double sum = 0;
    std::size_t start = 0;
    while (start < text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        const auto line = text.substr(start, end - start);
        start = end + 1;
        if (!line.starts_with(series) || line.size() == series.size()) {
            continue;
        }
        const char after = line[series.size()];
        if (after != ' ' && after != '{') {
            continue;  // another series whose name starts with this one
        }
        const auto labels = after == '{'
                                ? line.substr(series.size(), line.find('}') - series.size())
                                : std::string_view{};
        if (!label.empty() && labels.find(label) == std::string_view::npos) {
            continue;
        }
        sum += std::stod(std::string(line.substr(line.rfind(' ') + 1)));
    }
    return sum;
}

}  // namespace conclave::test
