// stream/follower.hpp: what SSE and WebSocket sessions share — following topics exactly.
//
// A follower keeps each followed topic's position (the last offset the client has). It
// subscribes to the hub first, then replays what came before from the hub's ring or the
// store, page by page. A frame at or below a position is a duplicate and is skipped; a frame
// beyond it means a gap, filled from the store before going on. So every event reaches the
// client once, in order, whatever the interleaving of replay and live events. When the store
// no longer holds what a position needs (retention removed it), the client gets `reset` with
// the job's snapshot and the stream goes on from the oldest retained event. A job topic ends
// with `end` after its terminal event.
//
// Live frames wait in a frame_queue, bounded by `queue_bytes`: under pressure consecutive
// deltas of one part are merged; past the budget the queue is dropped and the follower catches
// up from the store at the client's pace. Producers are never slowed.
//
// The wire format is the sink's: a follower only decides what to send, in what order.
//
// Metrics, by the sink's transport: conclave_stream_subscriptions (topics followed now),
// conclave_stream_events_delivered_total (events handed to the sink) and
// conclave_stream_slow_consumer_total{reason="overflow"} (queues dropped past their budget).
#pragma once

#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <boost/json/object.hpp>

#include "core/metrics.hpp"
#include "core/wakeup.hpp"
#include "events/cursor.hpp"
#include "events/hub.hpp"
#include "stream/sse.hpp"

namespace conclave::jobs {
class engine;
}

namespace conclave::stream {

// The live side of one connection: frames the hub delivers wait here for the session.
class frame_queue final : public events::subscriber {
public:
    // `overflows`, when given, counts the times the queue is dropped past its budget.
    explicit frame_queue(std::size_t budget, metrics::counter* overflows = nullptr)
        : budget_(budget), overflows_(overflows) {}

    void deliver(const events::frame_ptr& f) override;

    // Everything queued so far; `overflowed` tells that frames were dropped since the last
    // call (the caller must re-read from the store).
    std::deque<events::frame_ptr> take(bool& overflowed);

    // Notified when frames arrive (and by the session for its own reasons).
    wakeup& wake() { return wake_; }

private:
    const std::size_t budget_;
    metrics::counter* overflows_;
    std::mutex mutex_;
    std::deque<events::frame_ptr> queue_;
    std::size_t bytes_ = 0;
    bool overflowed_ = false;
    wakeup wake_;
};

// Writes a follower's output in one wire format.
class sink {
public:
    virtual ~sink() = default;
    // The wire format's name for metrics: "sse" or "ws".
    virtual const char* transport() const = 0;
    // Queues event `f` for the next flush; `positions` is the cursor after it.
    virtual void add(const events::frame& f, const events::cursor& positions) = 0;
    // Writes what add() queued. false: the connection is gone.
    virtual net::awaitable<bool> flush() = 0;
    // Writes a control message now: `end` or `reset` (`data` names the topic).
    virtual net::awaitable<bool> control(std::string op, boost::json::object data) = 0;
};

// Counts a client disconnected because it stopped reading (a write or idle timeout):
// conclave_stream_slow_consumer_total{transport, reason="timeout"}.
void count_stream_timeout(const char* transport);

class follower {
public:
    follower(events::hub& hub, jobs::engine& engine, const stream_options& options, sink& out);
    ~follower();
    follower(const follower&) = delete;
    follower& operator=(const follower&) = delete;

    // Follows `topic` from `after` (a job topic if it starts with "job:"): subscribes, then
    // replays what came before. false: the connection is gone.
    net::awaitable<bool> follow(const std::string& topic, std::int64_t after);
    void unfollow(const std::string& topic);
    bool follows(const std::string& topic) const;

    // Sends the frames the hub queued (and catches up from the store after an overflow).
    // `sent` tells whether there was anything. false: the connection is gone.
    net::awaitable<bool> pump(bool& sent);

    frame_queue& queue() { return *queue_; }
    const events::cursor& positions() const { return positions_; }
    // Topics followed that have ended (their job is over); unfollow them to forget them.
    const std::set<std::string>& ended() const { return ended_; }

private:
    net::awaitable<bool> send_all(const std::deque<events::frame_ptr>& frames);
    net::awaitable<bool> catch_up(const std::string& topic);
    net::awaitable<bool> reset(const std::string& topic, std::int64_t first_retained);
    net::awaitable<bool> end(const std::string& topic);
    std::int64_t* position(const std::string& topic);

    events::hub& hub_;
    jobs::engine& engine_;
    const stream_options& options_;
    sink& out_;
    metrics::gauge& subscriptions_;
    metrics::counter& delivered_;
    std::shared_ptr<frame_queue> queue_;
    events::cursor positions_;
    std::set<std::string> ended_;
};

}  // namespace conclave::stream
