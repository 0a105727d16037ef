// events/hub.hpp: in-process fan-out of committed events to live subscribers.
//
// The store's commit listener calls publish() after each commit, so a subscriber only ever
// sees committed events. Each event is serialized once into a frame whose bytes every
// subscriber shares. The hub keeps a ring of the most recent events of each topic that has
// subscribers or was recently active, so most resumes never touch the store. Events of a topic
// nobody follows are kept as they are and framed only if someone subscribes while the ring
// still holds them: most job topics are never watched, and serializing their lifecycle events
// was an eighth of a node's CPU in cluster_bench. The hub never writes to a socket.
// Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/deltas.hpp"
#include "store/records.hpp"

namespace conclave::events {

// One committed event, serialized once per wire format.
struct frame {
    std::string topic;
    std::int64_t offset = 0;
    // Deltas merged under pressure (merge_deltas) cover offsets first_offset..offset.
    std::int64_t first_offset = 0;
    std::string type;
    // "event: TYPE\ndata: {topic, offset, type, data, time}\n\n": an SSE frame without its
    // `id:` line (single- and multi-topic streams write different ids).
    std::string sse_body;
    // {"op":"event", topic, offset, type, data, time}: a WebSocket message.
    std::string ws_body;
    // A delta event's content, kept so consecutive deltas can be merged.
    std::optional<store::delta> delta;
    unix_ms time = 0;

    std::size_t bytes() const { return sse_body.size() + ws_body.size(); }
};
using frame_ptr = std::shared_ptr<const frame>;

frame_ptr make_frame(const store::event& e);

// One frame for deltas `a` then `b` of the same part when b continues a exactly (else null):
// offsets a.first_offset..b.offset, a's `at`, both texts. A reader that falls behind gets one
// event instead of many; the skipped offsets are named by `first_offset` in the data.
frame_ptr merge_deltas(const frame& a, const frame& b);

// Receives frames. deliver() runs on the thread that published (the store's writer): it must
// be quick and must not block.
class subscriber {
public:
    virtual ~subscriber() = default;
    virtual void deliver(const frame_ptr& f) = 0;
};

struct hub_options {
    std::size_t ring_events = 256;   // recent events kept per topic
    std::size_t idle_topics = 4096;  // rings kept for topics nobody is subscribed to
};

class hub {
public:
    explicit hub(hub_options options = {});

    // Fans `events` (one commit's, in offset order per topic) out to subscribers.
    void publish(const std::vector<store::event>& events);

    struct joined {
        std::vector<frame_ptr> backlog;  // the ring's events with offset > after, in order
        bool covered = false;            // true: backlog is every event after `after` so far
    };
    // Registers `sub` on `topic`: every event published from now on reaches it. Returns what
    // the ring already holds after `after`; when not `covered`, read the rest from the store
    // (and drop duplicates by offset: a live event may also be in the store read).
    joined subscribe(
        const std::string& topic, std::int64_t after, const std::shared_ptr<subscriber>& sub
    );
    void unsubscribe(const std::string& topic, const subscriber* sub);

    std::size_t subscriber_count() const;

    // The newest offset published on `topic` while it has subscribers; nullopt when it has
    // none (nobody here to deliver to).
    std::optional<std::int64_t> followed_offset(const std::string& topic) const;
    // Every topic with subscribers, with its newest published offset (0: none yet).
    std::vector<std::pair<std::string, std::int64_t>> followed() const;

private:
    // One event in a ring: its frame, or (until someone subscribes) the event itself.
    struct slot {
        std::int64_t offset = 0;
        frame_ptr frame;
        std::optional<store::event> event;  // set while `frame` is null
        const frame_ptr& framed();          // builds the frame on first use
    };
    struct topic_state {
        std::deque<slot> ring;  // consecutive offsets, oldest first, at most ring_events
        std::vector<std::weak_ptr<subscriber>> subscribers;
        std::list<std::string>::iterator idle_pos;  // position in idle_ when it has no subscribers
        bool idle = false;
    };
    void mark_idle(const std::string& topic, topic_state& state);
    void mark_busy(topic_state& state);

    hub_options options_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, topic_state> topics_;
    std::list<std::string> idle_;  // least recently active first
    std::size_t subscriber_count_ = 0;
};

}  // namespace conclave::events
