// http/sse_client.hpp: a blocking Server-Sent Events client (the CLI's `watch`, tests).
// It blocks its thread: never use it inside the server.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace conclave::http {

struct sse_event {
    std::string id;
    std::string type;  // "message" when the frame had no event: line
    std::string data;
};

struct sse_result {
    int status = 0;
    std::vector<sse_event> events;
    std::vector<std::string> comments;
    bool closed_by_server = false;
};

struct sse_request {
    std::string target;                 // e.g. "/v1/jobs/ID/events?after=3"
    std::string method = "GET";         // POST for streams that start something (e.g. /api)
    std::string body;                   // sent as JSON when not empty
    std::string last_event_id;          // sent as Last-Event-ID when not empty
    std::size_t max_events = SIZE_MAX;  // stop (close) after this many events
    std::size_t max_bytes = SIZE_MAX;  // close after reading this many body bytes (mid-event drops)
    std::chrono::milliseconds timeout{10'000};  // give up after this long
    // Called after each event; return false to stop.
    std::function<bool(const sse_event&)> on_event;
};

// Connects to `base_url` (http://HOST:PORT) and reads the stream until the server closes it,
// a limit is reached, or the timeout passes. Throws std::runtime_error when it cannot connect.
sse_result read_sse(const std::string& base_url, const sse_request& request);

}  // namespace conclave::http
