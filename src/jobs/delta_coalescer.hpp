// jobs/delta_coalescer.hpp: coalesces a job's token deltas into few durable events.
//
// A producer (an in-process handler, or a remote worker through POST /v1/jobs/{id}/events)
// adds text to a part; the coalescer buffers it and writes one `{attempt, part, at, text}` event
// per part when the part's buffer is `flush_bytes` long or `flush_interval` old, whichever comes
// first. So a burst of tokens costs one event, not hundreds. It assigns `at` itself: for an
// attempt it has not seen (a remote worker's first delta, or after a server restart) it reads
// the attempt's deltas from the store to learn each part's length.
//
// Every write is fenced by the job's lease token like any worker write. Writes of one job never
// overlap, so its deltas keep their order; flush(id) writes what is buffered before a caller's
// own write (a step, an event, the completion), so deltas always come before what follows them.
// All state lives on one strand. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/strand.hpp>

#include "core/asio.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/wakeup.hpp"
#include "store/deltas.hpp"
#include "store/store.hpp"

namespace conclave::jobs {

struct coalesce_options {
    std::chrono::milliseconds flush_interval{50};
    std::size_t flush_bytes = 1024;
    std::size_t max_buffered_bytes = 1 << 20;  // per job; past it add() writes before returning
};

// Folds every event of job `id` into the text of each part of `attempt`, page by page.
net::awaitable<store::parts_fold> fold_job_events(
    store::store& db, const std::string& id, int attempt
);

class delta_coalescer {
public:
    delta_coalescer(store::store& db, const clock& clk, coalesce_options options);

    // Starts the background flusher on a strand of `exec`.
    void start(const net::any_io_executor& exec);
    void stop();

    // Declares a fresh attempt with no deltas yet (an in-process claim), sparing the store read.
    // Opening an attempt already open changes nothing.
    net::awaitable<void> open(std::string id, std::string token, int attempt);

    // Buffers `text` for `part` (event type `type`) of job `id`'s attempt leased by `token`.
    // Errors: not_found, lease_lost (checked when the attempt is first seen, and reported by
    // the next add or flush after a background write found the lease gone).
    net::awaitable<result<void>> add(
        std::string id, std::string token, std::string type, std::string part, std::string text
    );

    // Writes what job `id` has buffered now; returns the events written. A job with nothing
    // buffered costs almost nothing.
    net::awaitable<result<std::vector<store::event>>> flush(std::string id);

    // Drops job `id`'s state (its attempt ended); unwritten deltas are discarded.
    void forget(std::string id);

    const coalesce_options& options() const { return options_; }

private:
    struct part_buffer {
        std::string type;
        std::int64_t written = 0;  // UTF-16 units already in the log
        std::string pending;
    };
    struct job_buffers {
        std::string token;
        int attempt = 0;
        std::map<std::string, part_buffer> parts;
        std::vector<std::string> order;  // parts with pending text, first buffered first
        std::size_t pending_bytes = 0;
        std::size_t largest_part = 0;
        unix_ms first_pending = 0;
        unix_ms last_used = 0;
        bool writing = false;
        std::optional<error> failed;  // a background write's error, for the producer
    };

    net::awaitable<void> open_on_strand(std::string id, std::string token, int attempt);
    net::awaitable<result<void>> add_on_strand(
        std::string id, std::string token, std::string type, std::string part, std::string text
    );
    net::awaitable<result<void>> load(const std::string& id, const std::string& token);
    net::awaitable<result<std::vector<store::event>>> flush_on_strand(std::string id);
    net::awaitable<void> flush_loop();

    store::store& db_;
    const clock& clock_;
    coalesce_options options_;
    std::optional<net::strand<net::any_io_executor>> current_strand() const;

    mutable std::mutex strand_mutex_;
    std::optional<net::strand<net::any_io_executor>> strand_;  // set by start, reset by stop
    std::unordered_map<std::string, job_buffers> jobs_;        // on the strand only
    std::atomic<std::size_t> tracked_{0};                      // jobs_.size(), readable anywhere
    wakeup due_;      // a buffer got big: the flusher looks now
    wakeup written_;  // a write finished: a flush waiting for it goes on
    std::atomic<bool> stopping_{false};
};

}  // namespace conclave::jobs
