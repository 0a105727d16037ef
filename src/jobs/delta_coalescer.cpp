#include "jobs/delta_coalescer.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include "core/logging.hpp"
#include "store/deltas.hpp"

namespace conclave::jobs {

using std::chrono::milliseconds;

// A job whose producer went quiet this long (a remote worker that vanished) is forgotten; its
// state is rebuilt from the store if it speaks again.
constexpr unix_ms idle_ms = 10 * 60 * 1000;

net::awaitable<store::parts_fold> fold_job_events(
    store::store& db, const std::string& id, int attempt
) {
    store::parts_fold fold(attempt);
    const auto topic = store::job_topic(id);
    std::int64_t after = 0;
    for (;;) {
        auto page = co_await db.read_events(topic, after, 1000);
        if (!page || page->empty()) {
            break;
        }
        for (const auto& e : *page) {
            fold.add(e);
        }
        after = page->back().offset;
    }
    co_return fold;
}

delta_coalescer::delta_coalescer(store::store& db, const clock& clk, coalesce_options options)
    : db_(db), clock_(clk), options_(options) {}

void delta_coalescer::start(const net::any_io_executor& exec) {
    auto strand = net::make_strand(exec);
    {
        std::lock_guard lock(strand_mutex_);
        strand_.emplace(strand);
    }
    net::co_spawn(strand, flush_loop(), [](std::exception_ptr e) {
        if (!e) {
            return;
        }
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            logger("jobs")->error("delta flusher stopped: {}", ex.what());
        }
    });
}

void delta_coalescer::stop() {
    stopping_ = true;
    {
        // The strand must not outlive its io_context, which may go before this object.
        std::lock_guard lock(strand_mutex_);
        strand_.reset();
    }
    due_.notify_all();
    written_.notify_all();
}

net::awaitable<void> delta_coalescer::open(std::string id, std::string token, int attempt) {
    auto strand = current_strand();
    if (!strand) {
        co_return;
    }
    auto work = open_on_strand(std::move(id), std::move(token), attempt);
    co_await net::co_spawn(*strand, std::move(work), uncancelled_awaitable());
}

net::awaitable<void> delta_coalescer::open_on_strand(
    std::string id, std::string token, int attempt
) {
    auto& job = jobs_[id];
    if (job.token == token) {
        co_return;  // already open: a handler's concurrent tasks may each open it
    }
    job = job_buffers{};
    job.token = std::move(token);
    job.attempt = attempt;
    job.last_used = clock_.now();
    tracked_ = jobs_.size();
    co_return;
}

net::awaitable<result<void>> delta_coalescer::add(
    std::string id, std::string token, std::string type, std::string part, std::string text
) {
    auto strand = current_strand();
    if (!strand) {
        co_return fail(errc::unavailable, "the delta coalescer is not running");
    }
    auto work = add_on_strand(
        std::move(id), std::move(token), std::move(type), std::move(part), std::move(text)
    );
    co_return co_await net::co_spawn(*strand, std::move(work), uncancelled_awaitable());
}

net::awaitable<result<void>> delta_coalescer::add_on_strand(
    std::string id, std::string token, std::string type, std::string part, std::string text
) {
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.token != token) {
        auto loaded = co_await load(id, token);
        if (!loaded) {
            co_return loaded;
        }
        it = jobs_.find(id);
    }
    auto& job = it->second;
    job.last_used = clock_.now();
    if (job.failed) {
        auto failed = *job.failed;
        jobs_.erase(it);
        tracked_ = jobs_.size();
        co_return failed;
    }
    if (text.empty()) {
        co_return result<void>{};
    }
    auto& buffer = job.parts[part];
    if (buffer.type.empty()) {
        buffer.type = type;
    }
    if (buffer.pending.empty()) {
        job.order.push_back(part);
    }
    const bool first = job.pending_bytes == 0;
    if (first) {
        job.first_pending = clock_.now();
    }
    buffer.pending += text;
    job.pending_bytes += text.size();
    job.largest_part = std::max(job.largest_part, buffer.pending.size());
    if (job.pending_bytes > options_.max_buffered_bytes) {
        // The store is behind this producer: write now, so buffers stay bounded.
        auto written = co_await flush_on_strand(id);
        if (!written) {
            co_return written.error();
        }
    } else if (first || job.largest_part >= options_.flush_bytes) {
        due_.notify_all();  // the flusher sets its timer for this job, or writes now
    }
    co_return result<void>{};
}

// Learns the attempt leased by `token` and each part's length in the log so far.
net::awaitable<result<void>> delta_coalescer::load(
    const std::string& id, const std::string& token
) {
    auto job = co_await db_.find_job(id);
    if (!job) {
        co_return job.error();
    }
    if (job->state != store::job_state::active || job->lease_token != token) {
        co_return fail(errc::lease_lost, "job " + id + " is not leased with this token");
    }
    const auto fold = co_await fold_job_events(db_, id, job->attempts);
    auto& state = jobs_[id];
    if (state.token == token) {
        co_return result<void>{};  // loaded meanwhile by a concurrent add
    }
    state = job_buffers{};
    state.token = token;
    state.attempt = job->attempts;
    state.last_used = clock_.now();
    for (const auto& [part, length] : fold.lengths()) {
        state.parts[part].written = length;
    }
    tracked_ = jobs_.size();
    co_return result<void>{};
}

net::awaitable<result<std::vector<store::event>>> delta_coalescer::flush(std::string id) {
    auto strand = tracked_.load() == 0 ? std::nullopt : current_strand();
    if (!strand) {
        co_return std::vector<store::event>{};
    }
    auto work = flush_on_strand(std::move(id));
    co_return co_await net::co_spawn(*strand, std::move(work), uncancelled_awaitable());
}

net::awaitable<result<std::vector<store::event>>> delta_coalescer::flush_on_strand(std::string id) {
    // One write per job at a time, so its deltas land in the order they were added.
    for (;;) {
        auto it = jobs_.find(id);
        if (it == jobs_.end()) {
            co_return std::vector<store::event>{};
        }
        if (!it->second.writing) {
            break;
        }
        const auto seen = written_.generation();
        co_await written_.wait(seen, milliseconds(100));
    }
    auto& job = jobs_.find(id)->second;
    if (job.failed) {
        co_return *job.failed;
    }
    if (job.order.empty()) {
        co_return std::vector<store::event>{};
    }
    std::vector<store::event_spec> specs;
    specs.reserve(job.order.size());
    for (const auto& name : job.order) {
        auto& buffer = job.parts[name];
        store::delta d{
            .attempt = job.attempt,
            .part = name,
            .at = buffer.written,
            .text = std::move(buffer.pending),
        };
        buffer.written += store::utf16_length(d.text);
        buffer.pending.clear();
        specs.push_back({buffer.type, store::delta_json(d)});
    }
    job.order.clear();
    job.pending_bytes = 0;
    job.largest_part = 0;
    job.writing = true;
    const auto token = job.token;
    std::optional<result<std::vector<store::event>>> written;
    try {
        written = co_await db_.append_job_events(id, token, std::move(specs), clock_.now());
    } catch (const std::exception& e) {
        written = fail(errc::unavailable, std::string("cannot write deltas: ") + e.what());
    }
    written_.notify_all();
    if (auto again = jobs_.find(id); again != jobs_.end() && again->second.token == token) {
        again->second.writing = false;
        if (!*written) {
            again->second.failed = written->error();
        }
    }
    co_return std::move(*written);
}

net::awaitable<void> delta_coalescer::flush_loop() {
    const auto exec = co_await net::this_coro::executor;  // this object's strand
    while (!stopping_) {
        const auto seen = due_.generation();
        const auto now = clock_.now();
        const auto interval = static_cast<unix_ms>(options_.flush_interval.count());
        unix_ms next = now + 1000;
        std::erase_if(jobs_, [&](const auto& entry) {
            const auto& job = entry.second;
            return job.order.empty() && !job.writing && now - job.last_used > idle_ms;
        });
        tracked_ = jobs_.size();
        for (auto& [id, job] : jobs_) {
            if (job.order.empty()) {
                continue;
            }
            if (job.writing) {
                next = std::min(next, now + interval);
                continue;
            }
            if (job.largest_part >= options_.flush_bytes || now - job.first_pending >= interval) {
                net::co_spawn(exec, flush_on_strand(id), net::detached);
            } else {
                next = std::min(next, job.first_pending + interval);
            }
        }
        co_await due_.wait(seen, milliseconds(std::max<unix_ms>(1, next - now)));
    }
}

std::optional<net::strand<net::any_io_executor>> delta_coalescer::current_strand() const {
    std::lock_guard lock(strand_mutex_);
    return strand_;
}

void delta_coalescer::forget(std::string id) {
    auto strand = tracked_.load() == 0 ? std::nullopt : current_strand();
    if (!strand) {
        return;
    }
    net::post(*strand, [this, id = std::move(id)] {
        jobs_.erase(id);
        tracked_ = jobs_.size();
    });
}

}  // namespace conclave::jobs
