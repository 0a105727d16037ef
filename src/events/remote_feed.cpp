#include "events/remote_feed.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/logging.hpp"

namespace conclave::events {
namespace {

constexpr std::size_t page = 1000;

// Removes the events at or below `offset`.
void drop_through(std::vector<store::event>& events, std::int64_t offset) {
    std::erase_if(events, [offset](const store::event& e) { return e.offset <= offset; });
}

}  // namespace

remote_feed::remote_feed(
    hub& h, store::store& db, net::any_io_executor fanout, std::chrono::milliseconds retry
)
    : hub_(h), db_(db), fanout_(std::move(fanout)), retry_(retry) {}

void remote_feed::committed(const std::string& topic, std::int64_t offset) {
    const auto have = hub_.followed_offset(topic);
    if (!have || *have >= offset) {
        return;  // nobody follows it here, or the hub has it already
    }
    bool start = false;
    {
        std::lock_guard lock(mutex_);
        pending_.insert(topic);
        start = drain_due();
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
        start = drain_due();
    }
    if (start) {
        net::co_spawn(fanout_, drain(), net::detached);
    }
}

void remote_feed::stop() {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    pending_.clear();
    failed_.clear();
}

bool remote_feed::drain_due() {
    const bool work = !pending_.empty() || (retry_due_ && !failed_.empty());
    return !stopped_ && work && !std::exchange(draining_, true);
}

// GCC 12 names a coroutine's frame pointer `frame_ptr`, which -Wshadow reports against
// events::frame_ptr for any coroutine in this namespace.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
net::awaitable<void> remote_feed::drain() {
    auto self = shared_from_this();  // the feed outlives its drain
    int failures_in_a_row = 0;
    for (;;) {
        std::string topic;
        {
            std::lock_guard lock(mutex_);
            if (pending_.empty() && retry_due_) {
                // The failed topics go round again, after every other pending one: a topic that
                // keeps failing holds no other back.
                pending_.swap(failed_);
                retry_due_ = false;
            }
            if (pending_.empty() || stopped_) {
                draining_ = false;
                co_return;
            }
            topic = *pending_.begin();
            pending_.erase(pending_.begin());
        }
        if (co_await catch_up(topic)) {
            failures_in_a_row = 0;
            continue;
        }
        // The database is away, or only this node's reading connections: nothing else may
        // wake the topic again (a node hears nothing of its own commits, and its listening
        // connection may never have dropped), so it is read again after a pause.
        bool schedule = false;
        bool end_round = false;
        {
            std::lock_guard lock(mutex_);
            failed_.insert(std::move(topic));
            schedule = !std::exchange(retry_scheduled_, true);
            // Two in a row: the database is likely away. The other topics wait for the retry
            // (or for a wake-up, which starts a round at once) rather than fail one by one.
            end_round = ++failures_in_a_row >= 2;
            if (end_round) {
                draining_ = false;
            }
        }
        if (schedule) {
            net::co_spawn(fanout_, retry_later(), net::detached);
        }
        if (end_round) {
            co_return;
        }
    }
}

net::awaitable<void> remote_feed::retry_later() {
    auto self = shared_from_this();
    net::steady_timer pause(co_await net::this_coro::executor, retry_);
    co_await pause.async_wait(net::use_awaitable);
    bool start = false;
    {
        std::lock_guard lock(mutex_);
        retry_scheduled_ = false;
        retry_due_ = true;
        start = drain_due();
    }
    if (start) {
        net::co_spawn(fanout_, drain(), net::detached);  // may run here at once: not under the lock
    }
}

net::awaitable<bool> remote_feed::catch_up(const std::string& topic) {
    std::string failure;
    try {
        for (;;) {
            const auto after = hub_.followed_offset(topic);
            if (!after || stopping()) {
                break;  // its last follower left, or the store is going
            }
            auto read = co_await db_.read_events(topic, *after, page);
            if (!read || read->empty() || stopping()) {
                break;
            }
            const bool more = read->size() == page;
            // A local commit may have been published while this read ran: what the hub has now
            // is left out (a follower fills the gap before it from the store).
            const auto now_have = hub_.followed_offset(topic).value_or(0);
            drop_through(*read, now_have);
            // On the fan-out executor, like local commits: a topic's events go out in order.
            hub_.publish(*read);
            if (!more) {
                break;
            }
        }
    } catch (const std::exception& e) {
        failure = e.what();
    }
    // One warning when reads start failing, one line when every failed topic has been read.
    if (failure.empty()) {
        if (failing_.erase(topic) > 0 && failing_.empty()) {
            logger("events")->info("reading other nodes' events again");
        }
        co_return true;
    }
    if (failing_.empty()) {
        logger("events")->warn(
            "reading {} for other nodes' events failed, trying again every {} ms: {}",
            topic,
            retry_.count(),
            failure
        );
    }
    failing_.insert(topic);
    co_return false;
}

#pragma GCC diagnostic pop

bool remote_feed::stopping() {
    std::lock_guard lock(mutex_);
    return stopped_;
}

}  // namespace conclave::events
