// store/sqlite/group_commit.hpp: the single writer thread and the transaction it hands to writes.
//
// `writer::submit<T>(fn)` queues fn and suspends the calling coroutine. The writer thread runs
// every queued fn inside one BEGIN IMMEDIATE … COMMIT. A write submitted with_savepoint runs in
// its own savepoint: if it throws, its own changes are rolled back and its exception delivered
// while the others still commit. A plain write must not throw after writing (it returns
// expected failures as values before touching anything); if it does, the whole batch is rolled
// back and every write in it gets the error. Savepoints cost two statements, so only writes that
// can fail half-way (a batch of submissions) ask for one.
// The commit listener sees the batch's events after COMMIT returned, never before; then the
// callers resume, on their own executors. Each batch is measured: conclave_store_commit_batch_size
// (writes), conclave_store_commit_seconds (BEGIN to COMMIT, the fsync included) and
// conclave_store_commit_failures_total (batches rolled back).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include "core/asio.hpp"
#include "core/metrics.hpp"
#include "store/records.hpp"
#include "store/sqlite/sqlite_db.hpp"

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
    enum class mode { plain, with_savepoint };

    template <class T>
    net::awaitable<T> submit(std::function<T(write_txn&)> fn, mode m = mode::plain) {
        auto initiate = [this, m](auto handler, std::function<T(write_txn&)> f) {
            using handler_t = decltype(handler);
            auto op =
                std::make_unique<pending_impl<T, handler_t>>(std::move(f), std::move(handler));
            op->savepoint = m == mode::with_savepoint;
            enqueue(std::move(op));
        };
        return net::async_initiate<decltype(net::use_awaitable), void(std::exception_ptr, T)>(
            std::move(initiate), net::use_awaitable, std::move(fn)
        );
    }

private:
    struct pending {
        virtual ~pending() = default;
        bool savepoint = false;
        virtual void run(write_txn& txn) = 0;
        virtual void deliver(std::exception_ptr error) = 0;
    };

    template <class T, class Handler>
    struct pending_impl final : pending {
        pending_impl(std::function<T(write_txn&)> f, Handler h)
            : fn(std::move(f)),
              handler(std::move(h)),
              work(net::prefer(
                  net::get_associated_executor(handler), net::execution::outstanding_work.tracked
              )) {}

        void run(write_txn& txn) override { value = fn(txn); }

        // Resumes the caller on its executor. `work` keeps the caller's io_context running
        // until this thread has let go of every executor copy, so the context can never be
        // torn down under our feet; it is released last.
        void deliver(std::exception_ptr error) override {
            {
                auto ex = net::get_associated_executor(handler);
                auto resume = [h = std::move(handler), v = std::move(value), error]() mutable {
                    std::move(h)(error, std::move(v));
                };
                net::post(ex, std::move(resume));
            }
            work = net::any_io_executor();
        }

        std::function<T(write_txn&)> fn;
        Handler handler;
        net::any_io_executor work;
        T value{};
    };

    void enqueue(std::unique_ptr<pending> op);
    void loop();
    void run_batch(std::vector<std::unique_ptr<pending>>& batch);

    connection db_;
    std::size_t max_batch_;
    commit_listener listener_;
    std::unordered_map<std::string, std::int64_t> offsets_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::unique_ptr<pending>> queue_;
    bool stopping_ = false;
    std::atomic<std::uint64_t> batches_committed_{0};
    metrics::histogram& batch_size_;
    metrics::histogram& commit_seconds_;
    metrics::counter& commit_failures_;
    std::thread thread_;
};

}  // namespace conclave::store::sqlite
