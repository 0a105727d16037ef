// tests/support/run_coro.hpp: runs a coroutine test body to completion and rethrows its error.
#pragma once

#include <exception>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include "core/asio.hpp"

namespace conclave::test {

// Runs body() on a strand of a fresh io_context with `threads` threads until everything
// spawned on it is done; rethrows the body's exception. threads > 1 lets TSan see races.
template <class F>
void run_coro(F body, int threads = 1) {
    net::io_context ioc(threads);
    std::exception_ptr failure;
    auto task = [&]() -> net::awaitable<void> { co_await body(ioc); };
    net::co_spawn(net::make_strand(ioc), std::move(task), [&](std::exception_ptr e) {
        failure = e;
    });
    std::vector<std::thread> pool;
    for (int idx = 1; idx < threads; ++idx) {
        pool.emplace_back([&] { ioc.run(); });
    }
    ioc.run();
    for (auto& t : pool) {
        t.join();
    }
    if (failure) {
        std::rethrow_exception(failure);
    }
}

}  // namespace conclave::test
