// store/sqlite/group_commit.hpp: the single writer thread and the transaction it hands to writes.
//
// `writer::submit<T>(fn)` queues fn (store/write_queue.hpp) and suspends the calling coroutine. The
// writer thread runs every queued fn inside one BEGIN IMMEDIATE … COMMIT. A write submitted
// with_savepoint runs in its own savepoint: if it throws, its own changes are rolled back and its
// exception delivered while the others still commit. A plain write must not throw after writing (it
// returns expected failures as values before touching anything); if it does, the whole batch is
// rolled back and every write in it gets the error. Savepoints cost two statements, so only writes
// that can fail half-way (a batch of submissions) ask for one. The commit listener sees the batch's
// events after COMMIT returned, never before; then the callers resume, on their own executors. Each
// batch is measured: conclave_store_commit_batch_size (writes), conclave_store_commit_seconds
// (BEGIN to COMMIT, the fsync included) and conclave_store_commit_failures_total (batches rolled
// back).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/asio.hpp"
#include "core/metrics.hpp"
#include "store/records.hpp"
#include "store/sqlite/sqlite_db.hpp"
#include "store/write_queue.hpp"

namespace conclave::store::sqlite {

// The transaction a write runs in. Only the writer thread touches it.
class write_txn {
public:
    write_txn(connection& db, std::unordered_map<std::string, std::int64_t>& offsets)
        : db_(db), offsets_(offsets) {}

    connection& db() { return db_; }

    // Records that `topic` has no events yet (a job being created), sparing append() a lookup.
    void new_topic(const std::string& topic) { offsets_.emplace(topic, 0); }

    // Appends one event to `topic` at its next offset and returns it.
    const event& append(const std::string& topic, std::string type, std::string data, unix_ms now);

    // The events of the writes committed so far in this batch.
    const std::vector<event>& batch_events() const { return batch_events_; }

    // Bookkeeping around each write (called by the writer only).
    void begin_write();
    void end_write(bool committed);

private:
    connection& db_;
    std::unordered_map<std::string, std::int64_t>& offsets_;  // topic → last offset (cache)
    std::vector<std::pair<std::string, std::int64_t>> undo_;  // this write's previous offsets
    std::vector<event> write_events_;
    std::vector<event> batch_events_;
};

class writer {
public:
    using commit_listener = std::function<void(const std::vector<event>&)>;
    using mode = write_queue<write_txn>::mode;

    writer(const std::string& path, std::size_t max_batch);
    writer(const writer&) = delete;
    writer& operator=(const writer&) = delete;
    // Finishes every queued write, then stops the thread.
    ~writer();

    void set_commit_listener(commit_listener listener) { listener_ = std::move(listener); }

    // Transactions committed so far (each one fsync).
    std::uint64_t batches_committed() const { return batches_committed_.load(); }

    // Runs fn(txn) in the next batch; resumes with its value after the commit, or rethrows.
    // REQUIRES: T is default-constructible.
    template <class T>
    net::awaitable<T> submit(std::function<T(write_txn&)> fn, mode m = mode::plain) {
        return queue_.submit<T>(std::move(fn), m);
    }

private:
    using batch = write_queue<write_txn>::batch;

    void loop();
    void run_batch(batch& ops);

    connection db_;
    std::size_t max_batch_;
    commit_listener listener_;
    std::unordered_map<std::string, std::int64_t> offsets_;
    write_queue<write_txn> queue_;
    std::atomic<std::uint64_t> batches_committed_{0};
    metrics::histogram& batch_size_;
    metrics::histogram& commit_seconds_;
    metrics::counter& commit_failures_;
    std::thread thread_;
};

}  // namespace conclave::store::sqlite
