// stream/ws.hpp: the WebSocket endpoint GET /v1/ws — many topics on one connection.
//
// Client messages (JSON text; an optional "id" is echoed in the reply):
//   {"op":"subscribe","topic":T,"after":N}   follow T from offset N (default 0)
//   {"op":"unsubscribe","topic":T}
//   {"op":"ping"}
// Server messages:
//   {"op":"subscribed","topic","after"}      then the topic's events from `after` on
//   {"op":"event","topic","offset","type","data","time"}  (merged deltas add "first_offset")
//   {"op":"end","topic","state"}             a job topic is over; the subscription is dropped
//   {"op":"reset","topic","reason","offset","snapshot"}  retention removed what `after` needs;
//                                            go on from `offset` (with the job's snapshot)
//   {"op":"unsubscribed","topic"} / {"op":"pong"}
//   {"op":"error","code","message"}          the connection stays open
// Events come exactly once per subscription, in order, with no gap (stream/follower.hpp). A
// message over `ws_max_message` closes the connection with 1009; a client that stops answering
// pings is closed after `write_timeout`.
#pragma once

#include "http/router.hpp"
#include "stream/sse.hpp"

namespace conclave::stream {

// `hub` and `engine` outlive the router.
void add_ws_route(
    http::router& routes, events::hub& hub, jobs::engine& engine, stream_options options
);

}  // namespace conclave::stream
