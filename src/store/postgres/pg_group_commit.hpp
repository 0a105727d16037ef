// store/postgres/pg_group_commit.hpp: the single writer thread of a node and the transaction it
// hands to writes, as on SQLite (store/sqlite/group_commit.hpp) with what several nodes sharing
// one database add.
//
// `writer::submit<T>(fn)` queues fn and suspends the calling coroutine. The writer thread takes
// every queued write (up to max_batch) and runs them inside one READ COMMITTED transaction on
// its own connection. A write that fails on its own gets its exception while the others still
// commit: one submitted with_savepoint is rolled back to its savepoint; a plain one (no
// savepoint round trips for the many writes that do not fail) has the batch rolled back and
// run again without it. "On its own" is any exception but a pg_error that concerns the
// transaction rather than the statement's data (see fails_alone in the .cpp) or the
// failure of a deferred group, which rolls the whole batch back. Before COMMIT the batch writes
// what it buffered (the events, the topics' new last offsets) and its NOTIFYs (see
// pg_store.hpp); after COMMIT the commit listener sees the batch's events, then the callers
// resume on their own executors.
//
// Several nodes write the same rows, so a batch can be refused by the database: a deadlock
// (40P01), a serialization failure (40001) or a unique violation (23505: another node committed
// the same idempotency key first). The batch is then rolled back and run again from the start,
// up to max_runs times (runs without a write that failed alone are not counted), so writes must
// be re-runnable: they compute everything from what they read inside the transaction. If the
// connection is lost, the batch's writes get store::unavailable (their outcome is unknown when
// COMMIT was under way) and the next batch reconnects; a connection found dead before the
// batch began is replaced at once. While idle the writer looks at its connection every second
// (without a round trip) and, while it has none, tries to connect again, so connected()
// recovers without traffic. Measured as on SQLite, with the label backend="postgres":
// conclave_store_commit_batch_size, conclave_store_commit_seconds,
// conclave_store_commit_failures_total; plus conclave_store_commit_retries_total{reason} and
// conclave_store_reconnects_total.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/asio.hpp"
#include "core/metrics.hpp"
#include "store/records.hpp"
#include "store/write_queue.hpp"

namespace conclave::store::postgres {

class connection;

// Where the writer connects and how it names itself.
struct writer_options {
    std::string conninfo;
    std::string schema;
    std::string node_id;  // in NOTIFY payloads and the session's application_name
    std::size_t max_batch = 4096;
    // The server ends the writer's session when it sits this long idle inside a transaction
    // (see writer::connect).
    int idle_in_transaction_ms = 10'000;
    // Shared by the writers of one store (several connections): held from just before COMMIT
    // until the commit listener has returned, so the listener sees commits one at a time and
    // in commit order — on every topic, offset order (a later append to a topic waits for the
    // earlier one's COMMIT, and then for this lock before its own). Null: one writer.
    std::mutex* commit_order = nullptr;
};

// The transaction a batch's writes run in. Only the writer thread touches it.
//
// Offsets: the first append to an existing topic in the batch increments its row (INSERT … ON
// CONFLICT DO UPDATE … RETURNING), which locks it until COMMIT; later appends in the batch count
// on from there in memory. Events are buffered and inserted with one statement at flush(), with
// the topics' final offsets. Nothing is cached across batches: other nodes append too.
//
// A job's own topic ("job:ID") has no topics row: every write that appends to it has locked the
// job's row already, so that lock orders its offsets, and the row's events_offset column holds
// the newest one, written by the same statement that changes the job (one row written per job
// and state change instead of two). Such a write declares the topic with hold_topic() when it
// reads the row and says stored_on_row() once its statement has written the new offset; flush()
// refuses a batch that appended to a held topic without storing it.
class write_txn {
public:
    // Writes of one kind whose statements run together: each write of the batch adds itself
    // to the group instead of running its statements, and the group runs them for all at once
    // (one statement per step instead of one per write) at the first moment anything else
    // needs the transaction: another write's statement, a savepoint, flush(). So the batch's
    // statements still run in the order of its writes, and a group never runs inside another
    // write's savepoint. Only plain writes join groups; a group that throws rolls the whole
    // batch back.
    struct deferred_group {
        virtual ~deferred_group() = default;
        virtual void run(write_txn& txn) = 0;
    };

    explicit write_txn(connection& db) : db_(db) {}

    // The transaction's connection, once the deferred group (if any) has run.
    connection& db() {
        settle();
        return db_;
    }

    // The pending group of kind Group, begun now if there is none (a pending group of another
    // kind runs first).
    template <class Group>
    Group& deferred() {
        if (auto* pending = dynamic_cast<Group*>(deferred_.get())) {
            return *pending;
        }
        settle();
        auto group = std::make_unique<Group>();
        auto& out = *group;
        deferred_ = std::move(group);
        return out;
    }

    // Runs the pending group, if any, now.
    void settle();

    // A deferred group threw (the batch fails: its writes are not told apart).
    bool group_failed() const { return group_failed_; }

    // Declares `topic` a job's topic whose row the transaction has locked, its newest offset
    // `last` as the row holds it now. Throws std::logic_error when the batch already holds the
    // topic at another offset.
    void hold_topic(const std::string& topic, std::int64_t last);

    // The write's statement has written held `topic`'s newest offset (as append() numbered it)
    // into the job's row.
    void stored_on_row(const std::string& topic);

    // Locks the rows of those of `topics` the batch has not touched yet, in name order, with one
    // statement (a write about to append to many topics). A topic without a row is left to
    // append(); jobs' topics are skipped (their jobs' rows are the locks).
    void lock_topics(std::vector<std::string> topics);

    // Appends one event to `topic` at its next offset and returns it. Throws std::logic_error
    // for a job's topic the batch does not hold.
    const event& append(const std::string& topic, std::string type, std::string data, unix_ms now);

    // The batch makes jobs claimable (created or back in the queue): it will NOTIFY
    // conclave_jobs.
    void jobs_queued() { jobs_queued_ = true; }

    // Writes what the batch buffered (topic rows, events) and queues its NOTIFYs, with one
    // statement. Called once, after the last write and before COMMIT.
    void flush(const std::string& node_id);

    // The events of the writes run so far in this batch (and not rolled back).
    const std::vector<event>& batch_events() const { return batch_events_; }

    // Bookkeeping around each write (called by the writer only).
    void begin_write();
    void end_write(bool committed);

private:
    struct topic_state {
        std::int64_t last = 0;    // the offset of the topic's newest event in this batch
        std::int64_t stored = 0;  // the offset its row holds now
        bool on_job_row = false;  // a job's topic: the job's row holds the offset
        bool appended = false;    // the batch appended to it (it is NOTIFYed)
    };

    connection& db_;
    std::unique_ptr<deferred_group> deferred_;
    std::unordered_map<std::string, topic_state> topics_;
    // This write's changes to topics_, to undo when its savepoint is rolled back.
    std::vector<std::pair<std::string, std::optional<topic_state>>> undo_;
    bool jobs_queued_ = false;
    bool jobs_queued_before_write_ = false;
    bool group_failed_ = false;
    std::vector<event> write_events_;
    std::vector<event> batch_events_;
};

class writer {
public:
    using commit_listener = std::function<void(const std::vector<event>&)>;
    using mode = write_queue<write_txn>::mode;

    // Connects (throws pg_error when it cannot) and starts the thread.
    explicit writer(writer_options options);
    writer(const writer&) = delete;
    writer& operator=(const writer&) = delete;
    // Finishes every queued write, then stops the thread.
    ~writer();

    void set_commit_listener(commit_listener listener) { listener_ = std::move(listener); }

    // Called on the writer thread when a batch's connection was lost during its COMMIT: its
    // writers got store::unavailable, yet it may have committed, and its events then reached
    // the other nodes (NOTIFY) but not the commit listener. Set once, before the first write.
    void set_unknown_outcome_listener(std::function<void()> listener) {
        unknown_outcome_ = std::move(listener);
    }

    // Transactions committed so far.
    std::uint64_t batches_committed() const { return batches_committed_.load(); }

    // False from the moment the connection was found lost until a new one is up.
    bool connected() const { return connected_.load(); }

    // Runs fn(txn) in the next batch; resumes with its value after the commit, or rethrows.
    // REQUIRES: T is default-constructible; fn can run more than once (see above).
    template <class T>
    net::awaitable<T> submit(std::function<T(write_txn&)> fn, mode m = mode::plain) {
        return queue_.submit<T>(std::move(fn), m);
    }

    // Batches run again at most this many times in all.
    static constexpr int max_runs = 8;

private:
    using batch = write_queue<write_txn>::batch;

    void loop();
    void run_batch(batch& ops);
    // One run of the batch without the writes `left_out` holds an error for. Fills `refused`
    // with the exceptions of savepoint writes rolled back on their own. Throws what ends the
    // run: plain_write_failed for a plain write that failed on its own.
    void run_once(
        batch& ops,
        const std::vector<std::exception_ptr>& left_out,
        write_txn& txn,
        std::vector<std::exception_ptr>& refused
    );
    void rollback_quietly();
    void connect();
    void drop_connection(const std::string& why);
    // While idle: notices a closed connection, or tries to reconnect.
    void keep_alive();

    writer_options options_;
    std::unique_ptr<connection> db_;  // null after the connection was lost
    commit_listener listener_;
    std::function<void()> unknown_outcome_;
    write_queue<write_txn> queue_;
    std::atomic<std::uint64_t> batches_committed_{0};
    std::atomic<bool> connected_{false};
    metrics::histogram& batch_size_;
    metrics::histogram& commit_seconds_;
    metrics::counter& commit_failures_;
    metrics::counter& retries_deadlock_;
    metrics::counter& retries_serialization_;
    metrics::counter& retries_unique_;
    metrics::counter& reconnects_;
    std::thread thread_;
};

}  // namespace conclave::store::postgres
