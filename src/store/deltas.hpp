// store/deltas.hpp: token deltas, the events that carry a growing text piece by piece.
//
// A delta event's type is "delta" or ends in ".delta" (e.g. "stage1.delta"); its data is
// {attempt, part, at, text}: `part` names the growing text, `at` is how much of it came before,
// counted in UTF-16 code units (what JavaScript's String.length counts, so a browser compares
// `at` with the length of what it holds). A reader appends a delta only where it fits, so a
// duplicate is harmless and a gap is visible. Deltas of an attempt other than the job's current
// one are void: a new attempt starts with `job.started {attempt}`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

#include "store/records.hpp"

namespace conclave::store {

constexpr std::size_t max_part_length = 200;

bool is_delta_type(std::string_view type) noexcept;

// UTF-16 code units of a valid UTF-8 text.
std::int64_t utf16_length(std::string_view utf8) noexcept;

// The byte position in `utf8` after its first `units` UTF-16 code units (the whole size when
// the text is shorter).
std::size_t utf16_skip(std::string_view utf8, std::int64_t units) noexcept;

struct delta {
    int attempt = 0;
    std::string part;
    std::int64_t at = 0;
    std::string text;
};

// nullopt unless `data` is a JSON object with a numeric attempt, a string part, a
// non-negative at and a string text.
std::optional<delta> parse_delta(std::string_view data);
std::optional<delta> parse_delta(const boost::json::value& data);
std::string delta_json(const delta& d);

// Folds a job's events, oldest first, into the text of every part of one attempt: the job's
// snapshot. Events need not start at offset 1 (retention may have removed the oldest);
// a delta that does not fit (a gap) marks the fold incomplete instead of corrupting the text.
class parts_fold {
public:
    // Folds the deltas of `attempt` (the job's current one).
    explicit parts_fold(int attempt) : attempt_(attempt) {}
    void add(const event& e);

    int attempt() const { return attempt_; }
    const std::map<std::string, std::string>& parts() const { return parts_; }
    // UTF-16 length of each part's text.
    const std::map<std::string, std::int64_t>& lengths() const { return lengths_; }
    std::int64_t offset() const { return offset_; }
    // No delta of the attempt missing: none skipped, and the events start at offset 1 or
    // include the attempt's start (retention may have removed older ones).
    bool complete() const { return complete_ && (first_ <= 1 || started_); }
    // The attempt's `job.started` was among the events.
    bool saw_start() const { return started_; }
    // The events that are not deltas (state changes, stage events…), oldest first, at most the
    // newest `max_kept_events`: with the parts they are what a page needs to draw the job.
    std::vector<event> others() const;
    bool others_truncated() const { return others_dropped_ || others_.size() > max_kept_events; }

    static constexpr std::size_t max_kept_events = 1000;

private:
    int attempt_ = 0;
    std::map<std::string, std::string> parts_;
    std::map<std::string, std::int64_t> lengths_;
    std::int64_t offset_ = 0;
    bool complete_ = true;
    bool started_ = false;
    std::int64_t first_ = 0;  // the first event's offset
    std::vector<event> others_;
    bool others_dropped_ = false;
};

}  // namespace conclave::store
