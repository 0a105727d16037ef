// events/remote_feed.hpp: events other nodes committed, delivered to this node's subscribers.
//
// With several nodes on one PostgreSQL, a node's hub hears of its own commits from its store's
// commit listener and of the others' only as wake-ups (topic, newest offset: the store's
// cluster_listener). The feed reads what is new on a topic from the store — only for topics
// someone here follows, and only past the newest offset the hub already has — and publishes
// it, in offset order, on the fan-out executor (where local commits are published too, so the
// two never interleave within a topic). Wake-ups for one topic that arrive while it is being
// read coalesce into one more read. A topic whose read fails is read again after a pause of
// `retry` (and after every other pending topic), until the read succeeds; two failures in a row
// end the round of reads (the database is likely away) until the pause is over or a wake-up
// starts a new one. After a lost notification connection, resync() reads every followed topic,
// so nothing is missed; followers skip duplicates and fill gaps from the store anyway
// (stream/follower.hpp), so a late or repeated publish is harmless. stop() before the store
// goes: a retry may come at any time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "core/asio.hpp"
#include "events/hub.hpp"
#include "store/store.hpp"

namespace conclave::events {

class remote_feed : public std::enable_shared_from_this<remote_feed> {
public:
    // `fanout` is the executor local commits are published on. All three outlive the feed's
    // work (stop the executor before destroying them).
    remote_feed(
        hub& h,
        store::store& db,
        net::any_io_executor fanout,
        std::chrono::milliseconds retry = std::chrono::seconds(1)
    );

    // Another node committed events on `topic` up to `offset`. Thread-safe.
    void committed(const std::string& topic, std::int64_t offset);
    // News may have been missed: read every followed topic. Thread-safe.
    void resync();
    // Reads nothing from now on (a read under way is published no further): call before the
    // store goes, since a retry may come at any time. Thread-safe.
    void stop();

private:
    // Whether a drain is to be started now (then it counts as started). REQUIRES: mutex_ held.
    // The caller spawns it after releasing the lock: co_spawn may run it at once, on this
    // thread.
    bool drain_due();
    net::awaitable<void> drain();
    // After `retry`, the failed topics are read again (once no other topic is pending).
    net::awaitable<void> retry_later();
    // Publishes what is new on `topic`; false when a read failed.
    net::awaitable<bool> catch_up(const std::string& topic);
    bool stopping();

    hub& hub_;
    store::store& db_;
    net::any_io_executor fanout_;
    std::chrono::milliseconds retry_;
    std::set<std::string> failing_;  // topics whose last read failed (only drains use it)
    std::mutex mutex_;
    std::set<std::string> pending_;
    std::set<std::string> failed_;  // read again after the retry pause
    bool draining_ = false;
    bool retry_scheduled_ = false;
    bool retry_due_ = false;  // the pause is over: failed_ is read once pending_ is done
    bool stopped_ = false;
};

}  // namespace conclave::events
