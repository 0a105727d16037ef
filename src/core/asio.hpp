// core/asio.hpp: the one place that names Boost's networking namespaces, plus run_on().
//
// Asio and Beast are compiled once, in asio_impl.cpp (BOOST_ASIO_SEPARATE_COMPILATION), so
// including this header is cheap. Everything here is safe to use from any thread.
#pragma once

#include <type_traits>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace conclave {

namespace net = boost::asio;

// The completion token for awaiting a co_spawn onto another executor (a strand, a thread
// pool): the awaiting coroutine's cancellation is not forwarded to the spawned one. Boost 1.81
// forwards it by posting a raw pointer to a signal onto the other executor, which dangles when
// the spawned coroutine has finished and the awaiting one moved on first
// (chriskohlhoff/asio#1332): a node crashed so when it stopped a job's handler while the handler
// was appending deltas. Instead the awaiting coroutine meets its cancellation at its next wait,
// so the work spawned this way must be short.
inline auto uncancelled_awaitable() {
    return net::bind_cancellation_slot(net::cancellation_slot(), net::use_awaitable);
}

// Runs fn() on `exec` (e.g. a store thread); the caller resumes on its own executor.
// The capturing lambda coroutine is safe here: co_spawn keeps `task` alive until it finishes.
// REQUIRES: the result type is default-constructible (Boost 1.81 co_spawn of awaitable<T>).
template <class F>
auto run_on(net::any_io_executor exec, F fn) -> net::awaitable<std::invoke_result_t<F&>> {
    auto task = [fn = std::move(fn)]() mutable -> net::awaitable<std::invoke_result_t<F&>> {
        co_return fn();
    };
    co_return co_await net::co_spawn(exec, std::move(task), uncancelled_awaitable());
}

}  // namespace conclave
