// jobs/engine.hpp: the job engine — submissions, the state machine's user moves, in-process
// workers, the remote worker protocol, lease expiry and restart recovery.
//
// The engine owns no durable state: every change goes through store::store, which appends
// the events. It runs three background loops (dispatcher, lease sweeper, lease renewer) on
// strands of the executor given to run(). All methods are safe to call from any thread; the
// awaitable ones never block.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/fwd.hpp>

#include "core/asio.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/wakeup.hpp"
#include "jobs/delta_coalescer.hpp"
#include "jobs/registry.hpp"
#include "store/store.hpp"

namespace conclave::jobs {

struct engine_options {
    std::string node_id = "node";       // lease owner of this node's in-process jobs
    int concurrency = 256;              // in-process jobs running at once
    int claim_batch = 128;              // jobs claimed per store call
    unix_ms lease_ms = 30'000;          // in-process lease, renewed every lease_ms / 3
    unix_ms remote_lease_ms = 30'000;   // default lease of a remote claim
    unix_ms sweep_interval_ms = 1'000;  // how often expired leases are looked for
    unix_ms timeout_grace_ms = 5'000;   // in-process timeouts fire here first
    unix_ms idle_poll_ms = 500;         // longest idle wait (delayed and backed-off jobs)
    coalesce_options deltas;            // token deltas: flush every 50 ms or 1 KiB
};

// A job's state with the text of every part of its current attempt so far (from its deltas),
// and the offset of its topic to continue from.
struct job_snapshot {
    store::job job;
    int attempt = 0;
    std::map<std::string, std::string> parts;
    std::int64_t offset = 0;
    bool complete = true;  // false: retention removed deltas this text needs
    // The job's other events up to `offset` (all attempts, at most the newest 1000), so a page
    // can rebuild what the events announced (stages, errors) without reading every delta.
    std::vector<store::event> events;
    bool events_truncated = false;
};

// {job, attempt, parts, complete, topic, offset, cursor, events, events_truncated}: what
// GET /v1/jobs/{id}/snapshot answers and what a `reset` carries.
boost::json::object to_json(const job_snapshot& snap);

// What a worker's POST /v1/jobs/{id}/events did: events appended, deltas buffered.
struct posted_events {
    std::vector<store::event> events;
    std::size_t buffered = 0;
};

// Thrown by a handler to fail its attempt with a classified error.
class handler_error : public std::runtime_error {
public:
    handler_error(std::string code, const std::string& message, bool retryable)
        : std::runtime_error(message), code_(std::move(code)), retryable_(retryable) {}
    const std::string& code() const { return code_; }
    bool retryable() const { return retryable_; }

private:
    std::string code_;
    bool retryable_;
};

class engine;
struct running_job;

// What an in-process handler sees of its job. Lives as long as the handler runs.
class job_context {
public:
    job_context(engine& owner, std::shared_ptr<running_job> job)
        : engine_(owner), job_(std::move(job)) {}

    const store::job& job() const;
    int attempt() const;
    // The store, for reading the records a handler works on (e.g. a conversation's earlier
    // turns) and writing application records that need no lease. Job writes go through the
    // methods below, which are fenced by the lease.
    store::store& db() const;
    unix_ms now() const;

    // Runs fn once per job: a result recorded by an earlier attempt is returned without
    // running fn again. Throws handler_error (not retryable) if the lease was lost.
    net::awaitable<std::string> step(
        std::string key, std::function<net::awaitable<std::string>()> fn
    );
    // Records progress (JSON text) with a `job.progress` event.
    net::awaitable<void> progress(std::string json_text);
    // Appends a handler event (`type` must not start with "job."), after any buffered deltas.
    net::awaitable<void> emit(std::string type, std::string data);
    // Adds `text` to the growing text `part`; coalesced into `type` events ({attempt, part,
    // at, text}; the type must be a delta type) every 50 ms or 1 KiB.
    net::awaitable<void> delta(std::string part, std::string text, std::string type = "delta");
    // Writes the buffered deltas now.
    net::awaitable<void> flush();

private:
    engine& engine_;
    std::shared_ptr<running_job> job_;
    bool deltas_open_ = false;
};

struct remote_claim {
    std::string worker;
    std::vector<std::string> types;
    int max = 1;
    std::chrono::milliseconds wait{0};
    unix_ms lease_ms = 0;  // 0: the engine's default
};

class engine {
public:
    engine(store::store& db, const registry& types, const clock& clk, engine_options options);
    engine(const engine&) = delete;
    engine& operator=(const engine&) = delete;
    ~engine();

    // Recovers this node's jobs left active by a previous process, then starts the loops on
    // strands of `exec`. Returns once recovery is done.
    net::awaitable<void> start(net::any_io_executor exec);
    // Stops the loops and cancels running handlers (their jobs stay active; the next start of
    // this node, or lease expiry, sends them back to the queue).
    void stop();

    // Another node queued jobs (or some may be waiting unseen): idle workers and long-polling
    // remote claims look again now rather than at their next poll. Thread-safe.
    void wake();
    // Another node changed job `id` (it committed an event on the job's topic): if the job's
    // handler runs here, the engine reads the job and stops the handler when this attempt no
    // longer holds it (cancelled through another node, or taken over after its lease expired).
    // Thread-safe; the read happens on the engine's executor.
    void changed_elsewhere(const std::string& id);
    // The same for every handler running here: news may have been missed (the store's
    // listening connection was re-established). Thread-safe.
    void check_running();

    // Submissions. Errors: see parse_submission, idempotency_conflict.
    net::awaitable<result<store::submitted>> submit(const boost::json::value& body);
    net::awaitable<result<std::vector<store::submitted>>> submit_batch(
        const boost::json::value& body
    );

    // A conversation's turn: the user's message and its job (`job_body` as for submit),
    // created together (store::start_turn). Errors: as submit, not_found, conversation_busy.
    net::awaitable<result<store::turn>> start_turn(
        std::string conversation_id, std::string content, const boost::json::value& job_body
    );
    // Deletes a conversation; its running council stops here at once. Errors: not_found.
    net::awaitable<result<void>> delete_conversation(std::string id);

    net::awaitable<result<store::job>> find(std::string id);
    net::awaitable<store::job_page> list(store::job_filter filter);
    net::awaitable<store::job_counts> counts();
    // Per (queue, type): reads every job, see store::count_jobs_by_queue_and_type.
    net::awaitable<std::vector<store::job_group_counts>> counts_by_queue_and_type();
    net::awaitable<result<store::job>> cancel(std::string id);
    net::awaitable<result<store::job>> retry(std::string id);

    // Remote worker protocol. Errors: bad_request / unknown_job_type for claims of types not
    // served remotely; not_found / lease_lost / invalid_transition for fenced writes.
    net::awaitable<result<std::vector<store::claimed_job>>> claim(remote_claim request);
    net::awaitable<result<store::lease_info>> heartbeat(
        std::string id, std::string token, std::string progress
    );
    // Events of a delta type ({part, text} data) go through the coalescer; any other event is
    // appended after the deltas buffered before it. `flush`: write the buffered deltas now.
    net::awaitable<result<posted_events>> post_events(
        std::string id, std::string token, std::vector<store::event_spec> events, bool flush = false
    );
    net::awaitable<result<store::step>> save_step(
        std::string id, std::string token, std::string key, std::string value
    );
    net::awaitable<result<std::vector<store::step>>> steps(std::string id);
    net::awaitable<result<store::job>> complete(
        std::string id, std::string token, std::string result_json
    );
    net::awaitable<result<store::job>> fail_attempt(
        std::string id, std::string token, std::string error_json, bool retryable
    );

    // Appends application events to `topic`. Errors: bad_request (a job topic, reserved or
    // malformed types, 0 or more than 1000 events).
    net::awaitable<result<std::vector<store::event>>> publish(
        std::string topic, std::vector<store::event_spec> events
    );

    // The newest offset of `topic` (0: no events yet).
    net::awaitable<std::int64_t> last_offset(std::string topic);
    net::awaitable<result<std::vector<store::event>>> events(
        std::string topic, std::int64_t after, std::size_t limit
    );

    // Errors: not_found.
    net::awaitable<result<job_snapshot>> snapshot(std::string id);

    const registry& types() const { return types_; }
    unix_ms now() const;
    const engine_options& options() const { return options_; }
    int running() const { return running_.load(); }

private:
    friend class job_context;

    net::awaitable<void> dispatch_loop();
    net::awaitable<void> sweep_loop();
    net::awaitable<void> renew_loop();
    net::awaitable<void> check_loop();
    net::awaitable<void> run_handler(std::shared_ptr<running_job> rj);
    net::awaitable<void> record_outcome(
        running_job& rj, std::string result_text, std::exception_ptr failure
    );
    void start_handler(store::claimed_job claimed);
    void forget(const std::shared_ptr<running_job>& rj);
    // Cancels this node's handler of job `id` if it is running `attempt`.
    void cancel_running(const std::string& id, int attempt);
    net::awaitable<void> sleep_for(std::chrono::milliseconds d);

    store::store& db_;
    const registry& types_;
    const clock& clock_;
    engine_options options_;
    store::retry_policy policy_;
    wakeup dispatch_wakeup_;  // new work or a freed slot: the dispatcher looks again
    wakeup remote_wakeup_;    // new work: long-polling remote claims look again
    wakeup stop_wakeup_;      // notified once, by stop()
    wakeup check_wakeup_;     // jobs changed elsewhere: the check loop reads them
    net::any_io_executor exec_;
    std::atomic<bool> stopping_{false};
    std::atomic<int> running_{0};
    std::atomic<int> loops_{0};
    std::mutex running_mutex_;
    // Hashed: looked up for every job and every other node's notice (ids share long prefixes,
    // which made an ordered map's comparisons show in profiles).
    std::unordered_map<std::string, std::shared_ptr<running_job>> running_jobs_;
    std::set<std::string> to_check_;  // guarded by running_mutex_
    delta_coalescer deltas_;
};

}  // namespace conclave::jobs
