#include "core/wakeup.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

namespace conclave {

std::uint64_t wakeup::generation() const {
    std::lock_guard lock(mutex_);
    return generation_;
}

net::awaitable<void> wakeup::wait(std::uint64_t seen, std::chrono::milliseconds timeout) {
    auto timer = std::make_shared<net::steady_timer>(co_await net::this_coro::executor, timeout);
    {
        std::lock_guard lock(mutex_);
        if (generation_ != seen) {
            co_return;
        }
        waiters_.push_back(timer);
    }
    co_await timer->async_wait(net::as_tuple(net::use_awaitable));
    std::lock_guard lock(mutex_);
    std::erase(waiters_, timer);
}

void wakeup::notify_all() {
    std::vector<std::shared_ptr<net::steady_timer>> woken;
    {
        std::lock_guard lock(mutex_);
        ++generation_;
        woken.swap(waiters_);
    }
    for (auto& timer : woken) {
        net::post(timer->get_executor(), [timer] { timer->cancel(); });
    }
}

}  // namespace conclave
