// stream/sse.hpp: Server-Sent Events streams of topics, resumable exactly.
//
// Routes (registered before the JSON routes of the same paths, matched on
// `Accept: text/event-stream`):
//   GET /v1/topics/{topic}/events   id: = offset; resume with Last-Event-ID or ?after=N
//   GET /v1/jobs/{id}/events        the same for job:{id}; `end` after the job's terminal event,
//                                   then the stream closes; a reconnect past the end gets 204
//   GET /v1/stream?topics=a,b       several topics on one connection; id: = the compact cursor
//                                   (events/cursor.hpp); resume with Last-Event-ID or ?cursor=
// Every event is sent once, in offset order per topic, with no gap: the session subscribes to
// the hub first, then replays what came before from the hub's ring or the store, and drops
// duplicates by offset. Each connection queues at most `queue_bytes` of live events; past that
// the queue is dropped and the session replays from the store at the client's pace, so a slow
// reader costs bounded memory and loses nothing. A client that stops reading is disconnected
// after `write_timeout` and resumes from its cursor when it comes back.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

#include <boost/json/fwd.hpp>

#include "http/router.hpp"

namespace conclave::events {
class hub;
}
namespace conclave::jobs {
class engine;
}

namespace conclave::stream {

struct stream_options {
    std::chrono::milliseconds heartbeat{15'000};      // comment line carrying each topic's offset
    std::chrono::milliseconds retry{2'000};           // the client's reconnect delay (`retry:`)
    std::size_t queue_bytes = 1 << 20;                // per-connection budget of unsent events
    std::size_t max_topics = 64;                      // topics per connection (SSE or WS)
    std::size_t ws_max_message = 64 * 1024;           // larger WebSocket messages: close 1009
    std::chrono::milliseconds write_timeout{30'000};  // a client that stops reading is dropped
};

// `hub` and `engine` outlive the router.
void add_sse_routes(
    http::router& routes, events::hub& hub, jobs::engine& engine, stream_options options
);

// Another wire format over the same exact following (e.g. the llm-council client's): renders
// one event as the SSE text that follows its `id:` line ("data: …\n\n", possibly several
// events), or "" to leave it out.
using sse_renderer =
    std::function<std::string(const std::string& type, const boost::json::value& data)>;

// Answers `ctx` with the SSE stream of job `job_id`'s topic after offset `after`, each event
// rendered by `render`; it closes after the job's terminal event (204 when that was already
// sent). `options` outlives the stream.
net::awaitable<http::response> render_job_stream(
    http::request_context& ctx,
    events::hub& hub,
    jobs::engine& engine,
    const stream_options& options,
    const std::string& job_id,
    std::int64_t after,
    sse_renderer render
);

}  // namespace conclave::stream
