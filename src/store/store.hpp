// store/store.hpp: the durable system of record for jobs, steps and events.
//
// Implementations: store/sqlite (embedded, the default) and later store/postgres. Every method
// is safe to call concurrently from any thread and never blocks the caller's executor: the work
// runs on the store's own threads and the coroutine resumes on its own executor.
//
// Writes are transactional and every state change appends its events in the same transaction
// (the transactional outbox), each event getting the next gapless offset of each of its topics.
// A write's coroutine resumes only after its transaction committed durably, and the commit
// listener sees the new events only after that commit (broadcast after commit), before the
// writing coroutine resumes.
//
// Expected outcomes come back as result<T> (not_found, invalid_transition, lease_lost,
// idempotency_conflict); infrastructure failures throw.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/asio.hpp"
#include "core/error.hpp"
#include "store/records.hpp"

namespace conclave::store {

// Thrown by a store that cannot reach its database (a PostgreSQL server restarting, a network
// cut): the operation did nothing, or its transaction was rolled back — except a write whose
// connection was lost during COMMIT, which may have committed (its outcome is unknown: a
// retried submission needs its idempotency key, a retried completion may find the job done
// already). Retry later. HTTP answers it with 503 `unavailable`.
class unavailable : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class store {
public:
    virtual ~store() = default;

    // Creates all jobs or none, each with a `job.queued` event. A spec whose idempotency key is
    // known returns the existing job (created = false) when its request hash matches.
    // Errors: idempotency_conflict (the key belongs to a different request; nothing is created).
    virtual net::awaitable<result<std::vector<submitted>>> create_jobs(
        std::vector<new_job> specs, unix_ms now
    ) = 0;

    // Errors: not_found.
    virtual net::awaitable<result<job>> find_job(std::string id) = 0;

    // Newest first, paged by `before_seq`.
    virtual net::awaitable<job_page> list_jobs(job_filter filter) = 0;

    virtual net::awaitable<job_counts> count_jobs() = 0;

    // The counts of every (queue, type) pair that has jobs, ordered by queue then type, from
    // one snapshot. Reads every job (no index covers queue and type for every state), so its
    // cost grows with the table: about 1 s per million jobs on SQLite on a small machine.
    virtual net::awaitable<std::vector<job_group_counts>> count_jobs_by_queue_and_type() = 0;

    // Leases up to `max` queued jobs whose run_at has come, highest priority first, respecting
    // the per-type and per-queue limits on active jobs. Each becomes active with a new lease
    // token, its attempt counted, and a `job.started {attempt}` event.
    virtual net::awaitable<std::vector<claimed_job>> claim_jobs(claim_request request) = 0;

    // Extends the lease of an active job to now + lease_ms; records `progress` (JSON text, may
    // be empty) with a `job.progress` event. A job cancelled while leased answers
    // cancel_requested = true. Errors: not_found, lease_lost (token stale or job not leased).
    virtual net::awaitable<result<lease_info>> heartbeat(
        std::string id, std::string token, unix_ms now, unix_ms lease_ms, std::string progress
    ) = 0;

    // Extends to `until` the leases `owner` (an in-process node) holds on the jobs `ids`; a job
    // no longer active under that owner is left alone.
    virtual net::awaitable<void> renew_leases(
        std::string owner, std::vector<std::string> ids, unix_ms until
    ) = 0;

    // active → succeeded with `result` (JSON text) and a `job.succeeded` event.
    // Errors: not_found, lease_lost, invalid_transition (the job was cancelled).
    virtual net::awaitable<result<job>> complete_job(
        std::string id, std::string token, std::string result, unix_ms now
    ) = 0;

    // Ends the current attempt with `error` (JSON text): back to queued at the time `policy`
    // gives (`job.retrying`) or failed (`job.failed`). Errors as complete_job.
    virtual net::awaitable<result<job>> fail_job(
        std::string id,
        std::string token,
        std::string error,
        bool retryable,
        retry_policy policy,
        unix_ms now
    ) = 0;

    // queued|active → cancelled with `job.cancelled`. An active job keeps its lease token so
    // its worker's next heartbeat learns of the cancellation. Errors: not_found,
    // invalid_transition.
    virtual net::awaitable<result<job>> cancel_job(std::string id, unix_ms now) = 0;

    // failed|cancelled → queued with attempts reset and `job.queued`. Errors: not_found,
    // invalid_transition.
    virtual net::awaitable<result<job>> retry_job(std::string id, unix_ms now) = 0;

    // Ends the attempt of every active job whose lease expired, or that overran its timeout by
    // more than `timeout_grace_ms`, as fail_job would (retryable). Returns the jobs changed.
    virtual net::awaitable<std::vector<job>> expire_leases(
        unix_ms now, unix_ms timeout_grace_ms, retry_policy policy
    ) = 0;

    // Ends the attempt of every active job leased by `owner` (a node that restarted).
    virtual net::awaitable<std::vector<job>> release_owner(
        std::string owner, unix_ms now, retry_policy policy
    ) = 0;

    // Appends events of the job's current attempt to its topic and extra topics.
    // Errors: not_found, lease_lost.
    virtual net::awaitable<result<std::vector<event>>> append_job_events(
        std::string id, std::string token, std::vector<event_spec> events, unix_ms now
    ) = 0;

    // Appends application events to `topic` (not a job topic: those are written through
    // their job). Returns them with their offsets.
    virtual net::awaitable<std::vector<event>> append_events(
        std::string topic, std::vector<event_spec> events, unix_ms now
    ) = 0;

    // Records a step result once; a second save of the same key keeps the first and returns it.
    // Errors: not_found, lease_lost.
    virtual net::awaitable<result<step>> save_step(
        std::string id, std::string token, std::string key, std::string result, unix_ms now
    ) = 0;

    // Errors: not_found.
    virtual net::awaitable<result<std::vector<step>>> load_steps(std::string id) = 0;

    // The offset of the newest committed event of `topic`; 0 when it has none yet.
    virtual net::awaitable<std::int64_t> last_offset(std::string topic) = 0;

    // Events of `topic` with offset > after, oldest first, at most `limit`.
    // Errors: not_found (the topic has never had an event).
    virtual net::awaitable<result<std::vector<event>>> read_events(
        std::string topic, std::int64_t after, std::size_t limit
    ) = 0;

    // Retention: deletes events of the topics whose names start with `prefix` that are older
    // than `older_than` (0: no age limit) or have `keep` newer events (0: no count limit), at
    // most `limit` of them. A topic's newest event is always kept, so its offsets go on from
    // there. Returns how many were deleted.
    virtual net::awaitable<std::size_t> prune_events(
        std::string prefix, unix_ms older_than, std::int64_t keep, std::size_t limit
    ) = 0;

    // Conversations (the council's chats). A conversation's council job is linked to it by
    // the job's extra topic conversation_topic(id): when that job ends (succeeded, failed for
    // good, cancelled), the same transaction adds the assistant message — the job's result
    // {stage1, stage2, stage3, metadata}, or the error — and sets processing_state back to
    // idle (error when the turn produced no answer).
    virtual net::awaitable<conversation> create_conversation(
        std::string title, std::string council, unix_ms now
    ) = 0;

    // Newest first, paged by `before_seq` (0: from the newest).
    virtual net::awaitable<conversation_page> list_conversations(
        std::size_t limit, std::int64_t before_seq
    ) = 0;

    // Errors: not_found.
    virtual net::awaitable<result<conversation>> find_conversation(std::string id) = 0;

    // The messages in order. Errors: not_found.
    virtual net::awaitable<result<std::vector<message>>> load_messages(std::string id) = 0;

    // Deletes the conversation and its messages; a running council job is cancelled.
    // Errors: not_found.
    virtual net::awaitable<result<void>> delete_conversation(std::string id, unix_ms now) = 0;

    // Adds the user's message and creates its council job in one transaction; the
    // conversation becomes active. Errors: not_found, conversation_busy (a council is running).
    virtual net::awaitable<result<turn>> start_turn(new_turn t, unix_ms now) = 0;

    // Sets the title (from the title model). Errors: not_found.
    virtual net::awaitable<result<void>> set_conversation_title(
        std::string id, std::string title, unix_ms now
    ) = 0;

    // Called on the store's writer thread after each commit with that commit's events, in
    // offset order per topic. Set once, before the first write.
    using commit_listener = std::function<void(const std::vector<event>&)>;
    virtual void set_commit_listener(commit_listener listener) = 0;

    // Several nodes on one database (PostgreSQL): told, on a thread of the store's, when
    // another node committed events on a topic (its newest offset then), when another node
    // queued jobs, and when this node may have missed such news (its listening connection was
    // re-established) and should catch up from the tables. These are wake-ups only: the events
    // are read with read_events. An embedded store has no other nodes and never calls them.
    struct cluster_listener {
        std::function<void(const std::string& topic, std::int64_t offset)> events_committed;
        std::function<void()> jobs_queued;
        std::function<void()> reconnected;
    };
    // Set once, before the first write.
    virtual void set_cluster_listener(cluster_listener listener) { (void)listener; }

    // False while the database cannot be reached (readiness: GET /readyz answers 503). An
    // embedded store is always reachable.
    virtual bool reachable() const { return true; }
};

}  // namespace conclave::store
