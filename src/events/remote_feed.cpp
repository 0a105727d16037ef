#include "events/remote_feed.hpp"

#include <boost/asio/detached.hpp>

#include "core/logging.hpp"

namespace conclave::events {
namespace {

constexpr std::size_t page = 1000;

// Removes the events at or below `offset`.
void drop_through(std::vector<store::event>& events, std::int64_t offset) {
    std::erase_if(events, [offset](const store::event& e) { return e.offset <= offset; });
}

}  // namespace

remote_feed::remote_feed(hub& h, store::store& db, net::any_io_executor fanout)
    : hub_(h), db_(db), fanout_(std::move(fanout)) {}

void remote_feed::committed(const std::string& topic, std::int64_t offset) {
    const auto have = hub_.followed_offset(topic);
    if (!have || *have >= offset) {
        return;  // nobody follows it here, or the hub has it already
    }
    bool start = false;
    {
        std::lock_guard lock(mutex_);
        pending_.insert(topic);
        start = !std::exchange(draining_, true);
    }
    if (start) {
        net::co_spawn(fanout_, drain(), net::detached);
    }
}

void remote_feed::resync() {
    bool start = false;
    {
        std::lock_guard lock(mutex_);
        for (auto& [topic, offset] : hub_.followed()) {
            pending_.insert(topic);
        }
        start = !pending_.empty() && !std::exchange(draining_, true);
    }
    if (start) {
        net::co_spawn(fanout_, drain(), net::detached);
    }
}

// GCC 12 names a coroutine's frame pointer `frame_ptr`, which -Wshadow reports against
// events::frame_ptr for any coroutine in this namespace.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
net::awaitable<void> remote_feed::drain() {
    auto self = shared_from_this();  // the feed outlives its drain
    for (;;) {
        std::string topic;
        {
            std::lock_guard lock(mutex_);
            if (pending_.empty()) {
                draining_ = false;
                co_return;
            }
            topic = *pending_.begin();
            pending_.erase(pending_.begin());
        }
        try {
            for (;;) {
                const auto after = hub_.followed_offset(topic);
                if (!after) {
                    break;  // its last follower left
                }
                auto read = co_await db_.read_events(topic, *after, page);
                if (!read || read->empty()) {
                    break;
                }
                const bool more = read->size() == page;
                // A local commit may have been published while this read ran: what the hub
                // has now is left out (a follower fills the gap before it from the store).
                const auto now_have = hub_.followed_offset(topic).value_or(0);
                drop_through(*read, now_have);
                // On the fan-out executor, like local commits: a topic's events go out in order.
                hub_.publish(*read);
                if (!more) {
                    break;
                }
            }
        } catch (const std::exception& e) {
            // The database is away: the store's reconnection calls resync() when it is back.
            logger("events")->warn(
                "reading {} for other nodes' events failed: {}", topic, e.what()
            );
        }
    }
}

#pragma GCC diagnostic pop

}  // namespace conclave::events
