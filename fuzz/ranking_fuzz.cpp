// fuzz/ranking_fuzz.cpp: stage 2's ranking parser on whatever a member model writes, and the
// aggregate over the parsed rankings.
//
// Input: byte 0 → the answer count n (0..26); the rest is the members' texts, one ranking per
// NUL-separated part (so the aggregate sees several rankings).
// Invariants (a violation traps, so libFuzzer saves the input):
//   - a ranking has at most n labels, all distinct, each one of label_of(0..n-1);
//   - a strict ranking is not empty; parsing is case insensitive (upper-casing the text changes
//     nothing);
//   - every aggregate entry was ranked at least once, its average is within [1, n]; entries are
//     best first, ties by model name, one per model, and count every label once.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "council/ranking.hpp"

namespace {

using namespace conclave::council;

void check(bool ok) {
    if (!ok) {
        __builtin_trap();
    }
}

std::string upper(std::string_view text) {
    std::string out(text);
    for (auto& c : out) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    const std::size_t n = bytes[0] % 27;
    const std::string_view text(reinterpret_cast<const char*>(bytes) + 1, size - 1);

    std::set<std::string> valid;
    std::map<std::string, std::string> label_to_model;
    for (std::size_t idx = 0; idx < n; ++idx) {
        valid.insert(label_of(idx));
        // Model names sort opposite to labels, so name order is not label order by accident.
        label_to_model[label_of(idx)] = "model-" + std::string(1, static_cast<char>('z' - idx));
    }

    std::vector<parsed_ranking> rankings;
    std::size_t total_labels = 0;
    for (std::size_t start = 0; start <= text.size();) {
        auto end = text.find('\0', start);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        const auto part = text.substr(start, end - start);
        auto r = parse_ranking(part, n);
        check(r.labels.size() <= n);
        check(!r.strict || !r.labels.empty());
        const std::set<std::string> unique(r.labels.begin(), r.labels.end());
        check(unique.size() == r.labels.size());
        for (const auto& label : r.labels) {
            check(valid.count(label) == 1);
        }
        const auto shouted = parse_ranking(upper(part), n);
        check(shouted.labels == r.labels && shouted.strict == r.strict);
        total_labels += r.labels.size();
        rankings.push_back(std::move(r));
        start = end + 1;
    }

    const auto aggregate = aggregate_rankings(rankings, label_to_model);
    std::set<std::string> models;
    std::size_t counted = 0;
    for (std::size_t idx = 0; idx < aggregate.size(); ++idx) {
        const auto& e = aggregate[idx];
        check(e.rankings_count >= 1);
        check(static_cast<std::size_t>(e.rankings_count) <= rankings.size());
        check(e.average_rank >= 1.0 && e.average_rank <= static_cast<double>(n));
        check(models.insert(e.model).second);
        counted += static_cast<std::size_t>(e.rankings_count);
        if (idx > 0) {
            const auto& prev = aggregate[idx - 1];
            check(prev.average_rank <= e.average_rank);
            check(prev.average_rank != e.average_rank || prev.model < e.model);
        }
    }
    check(counted == total_labels);  // every label maps to a model, each counted once
    return 0;
}
