// store/postgres/pg_listener.hpp: a node's ear on the database — LISTEN for the other nodes'
// commits and new jobs (pg_store.hpp has the channels and payloads), and whether the database
// can be reached at all.
//
// One thread with its own connection waits (poll) on the connection's socket. Each
// notification from another node becomes a call of the store's cluster_listener: a wake-up,
// never the events themselves. When the connection is lost (the server restarted, a network
// cut, connections refused), connected() turns false at once — /readyz answers 503 — and the
// thread reconnects every `retry` until it can; then it tells `reconnected` (anything may have
// been missed meanwhile, so the node reads what is new) and connected() is true again. An idle
// connection is checked with a round trip every `check`, so a silent cut is noticed too.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "store/store.hpp"

namespace conclave::store::postgres {

class listener {
public:
    listener(
        std::string conninfo,
        std::string schema,
        std::string node_id,
        store::cluster_listener callbacks,
        std::chrono::milliseconds retry = std::chrono::milliseconds(250),
        std::chrono::milliseconds check = std::chrono::milliseconds(1000)
    );
    ~listener();  // stops and joins the thread
    listener(const listener&) = delete;
    listener& operator=(const listener&) = delete;

    bool connected() const { return connected_.load(); }

private:
    void run();
    // Waits up to `d` for the stop signal; true when stopping.
    bool stopped_within(std::chrono::milliseconds d);

    std::string conninfo_, schema_, node_id_;
    store::cluster_listener callbacks_;
    std::chrono::milliseconds retry_, check_;
    int wake_[2] = {-1, -1};  // a pipe: written to stop the thread's poll
    std::atomic<bool> stopping_{false};
    std::atomic<bool> connected_{false};
    std::thread thread_;
};

}  // namespace conclave::store::postgres
