// store/write_queue.hpp: the hand-over between coroutines and a store's writer thread, shared by
// the backends' group commit (store/sqlite/group_commit, store/postgres/pg_group_commit).
//
// submit<T>(fn) queues fn and suspends the calling coroutine; the writer thread take()s every
// queued write (up to a batch), runs each with run(txn) inside its transaction — perhaps more
// than once, when a backend re-runs a batch that the database refused (a deadlock) — and
// answers each exactly once with deliver(), which resumes the caller on its own executor with
// fn's value or the exception. submit() and stop() are safe from any thread; take() is for the
// one writer thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include "core/asio.hpp"

namespace conclave::store {

template <class Txn>
class write_queue {
public:
    // with_savepoint: the write runs in its own savepoint, so an exception it throws undoes
    // only its own changes (see the backends' group commit).
    enum class mode { plain, with_savepoint };

    // One queued write.
    struct pending {
        virtual ~pending() = default;
        bool savepoint = false;
        // Runs the write; its value is kept for deliver(). May run again after a re-run.
        virtual void run(Txn& txn) = 0;
        // Resumes the caller with the kept value, or with `error` when not null. Once.
        virtual void deliver(std::exception_ptr error) = 0;
    };
    using batch = std::vector<std::unique_ptr<pending>>;

    // Runs fn(txn) in a coming batch; resumes with its value after the commit, or rethrows.
    // REQUIRES: T is default-constructible.
    template <class T>
    net::awaitable<T> submit(std::function<T(Txn&)> fn, mode m) {
        auto initiate = [this, m](auto handler, std::function<T(Txn&)> f) {
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

    // Waits for writes, then moves up to `max` of them into `out`. Returns false once stop()
    // was called and nothing is left: every write submitted before stop() is handed out.
    bool take(batch& out, std::size_t max) {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) {
            return false;
        }
        while (!queue_.empty() && out.size() < max) {
            out.push_back(std::move(queue_.front()));
            queue_.pop_front();
        }
        return true;
    }

    // As take(), waiting at most `timeout` for the first write.
    enum class taken { work, timed_out, stopped };
    template <class Rep, class Period>
    taken take_for(batch& out, std::size_t max, std::chrono::duration<Rep, Period> timeout) {
        std::unique_lock lock(mutex_);
        if (!wake_.wait_for(lock, timeout, [this] { return stopping_ || !queue_.empty(); })) {
            return taken::timed_out;
        }
        if (queue_.empty()) {
            return taken::stopped;
        }
        while (!queue_.empty() && out.size() < max) {
            out.push_back(std::move(queue_.front()));
            queue_.pop_front();
        }
        return taken::work;
    }

    // Lets take() return false once the queue is empty.
    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_one();
    }

private:
    template <class T, class Handler>
    struct pending_impl final : pending {
        pending_impl(std::function<T(Txn&)> f, Handler h)
            : fn(std::move(f)),
              handler(std::move(h)),
              work(net::prefer(
                  net::get_associated_executor(handler), net::execution::outstanding_work.tracked
              )) {}

        void run(Txn& txn) override { value = fn(txn); }

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

        std::function<T(Txn&)> fn;
        Handler handler;
        net::any_io_executor work;
        T value{};
    };

    void enqueue(std::unique_ptr<pending> op) {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(std::move(op));
        }
        wake_.notify_one();
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::unique_ptr<pending>> queue_;
    bool stopping_ = false;
};

}  // namespace conclave::store
