// council/ranking.hpp: stage 2's peer rankings — the prompt labels, parsing a member's ranking,
// and the aggregate.
//
// A member ranks anonymised answers ("Response A", "Response B", …) and must end with
//   FINAL RANKING:
//   1. Response C
//   2. Response A
// Parsing is strict first (the numbered list after the last FINAL RANKING header), then lenient
// (every "Response X" mentioned after the header, or anywhere when there is none), case
// insensitive. Duplicates keep their first place; labels beyond the answers are dropped.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace conclave::council {

// "Response A" … for `count` answers (at most 26).
std::string label_of(std::size_t index);

struct parsed_ranking {
    std::vector<std::string> labels;  // best first, e.g. {"Response C", "Response A"}
    bool strict = false;              // true: the FINAL RANKING numbered list was well formed
};

parsed_ranking parse_ranking(std::string_view text, std::size_t answer_count);

struct aggregate_entry {
    std::string model;
    double average_rank = 0;  // mean position, 1 = best
    int rankings_count = 0;
};

// Mean position of each model over every ranking that placed it, best (lowest) first; ties by
// model name. `label_to_model` maps "Response A" → model.
std::vector<aggregate_entry> aggregate_rankings(
    const std::vector<parsed_ranking>& rankings,
    const std::map<std::string, std::string>& label_to_model
);

}  // namespace conclave::council
