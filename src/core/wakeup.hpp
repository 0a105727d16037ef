// core/wakeup.hpp: wakes coroutines waiting for "something may have changed" (new jobs, a
// free worker slot), so idle workers and long-polling claims never poll tightly.
//
// Usage: read generation(), try the work, and if there was none, wait(seen, timeout): the wait
// returns at once if notify_all() ran since `seen`, so no wake-up is ever lost.
// Thread-safe. REQUIRES: wait() is called from a coroutine running on a strand (the cancel that
// wakes it is posted to that strand, so it runs only after the wait has begun).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "core/asio.hpp"

namespace conclave {

class wakeup {
public:
    std::uint64_t generation() const;
    net::awaitable<void> wait(std::uint64_t seen, std::chrono::milliseconds timeout);
    void notify_all();

private:
    mutable std::mutex mutex_;
    std::uint64_t generation_ = 0;
    std::vector<std::shared_ptr<net::steady_timer>> waiters_;
};

}  // namespace conclave
