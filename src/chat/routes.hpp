// chat/routes.hpp: the conversation APIs.
//
// Native, under /v1:
//   POST   /v1/conversations            {title?, council?} → 201 conversation
//   GET    /v1/conversations            ?limit=&cursor= → {conversations, next_cursor}
//   GET    /v1/conversations/{id}       the conversation with its messages
//   DELETE /v1/conversations/{id}       204; a running council is cancelled
//   POST   /v1/conversations/{id}/messages {content} → 202 {message, job, stream_url, …};
//          409 conversation_busy while a council runs. Follow the council (and re-join it at
//          any time, resuming with Last-Event-ID) at stream_url = /v1/jobs/{job}/events, or
//          every turn on the conversation's topic.
// llm-council compatible, under /api (see docs/architecture.md): the routes, fields and SSE
// event sequence of that web client, errors as {"detail": …} (422 for a bad body), plus
// GET /api/conversations/{id}/stream to re-join the newest council's stream.
#pragma once

#include "http/router.hpp"
#include "stream/sse.hpp"

namespace conclave::events {
class hub;
}
namespace conclave::jobs {
class engine;
}

namespace conclave::chat {

class chat;

// Everything passed outlives the router.
void add_conversation_routes(http::router& routes, chat& conversations);
void add_llm_council_routes(
    http::router& routes,
    chat& conversations,
    events::hub& hub,
    jobs::engine& engine,
    const stream::stream_options& options
);

}  // namespace conclave::chat
