// events/retention.hpp: deletes old events in the background, per topic prefix.
//
// Rules come from the configuration ([[retention]] prefix, max_age_s, max_events). Every
// interval each rule is applied in slices (so the store's writer is never held long); a topic
// always keeps its newest event, so its offsets go on from there. A client whose cursor points
// before what is kept gets `reset` (stream/follower.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "core/asio.hpp"
#include "core/clock.hpp"
#include "store/store.hpp"

namespace conclave::events {

struct retention_rule {
    std::string prefix;               // "" matches every topic
    std::chrono::seconds max_age{0};  // 0: no age limit
    std::int64_t max_events = 0;      // per topic; 0: no count limit
};

// Applies `rules` once; returns the number of events deleted.
net::awaitable<std::size_t> apply_retention(
    store::store& db, const clock& clk, const std::vector<retention_rule>& rules
);

// Applies `rules` every `interval` until `stop` is set.
net::awaitable<void> retention_loop(
    store::store& db,
    const clock& clk,
    std::vector<retention_rule> rules,
    std::chrono::milliseconds interval,
    const std::atomic<bool>& stop
);

}  // namespace conclave::events
