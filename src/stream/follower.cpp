#include "stream/follower.hpp"

#include <algorithm>

#include "jobs/engine.hpp"
#include "store/records_json.hpp"

namespace conclave::stream {
namespace json = boost::json;

namespace {

constexpr std::size_t first_store_page = 16;
constexpr std::size_t store_page = 500;
// Merged deltas stop growing here: merging copies the text, and a huge merged event helps no one.
constexpr std::size_t max_merged_bytes = 16 * 1024;

bool is_terminal_event(std::string_view type) {
    return type == "job.succeeded" || type == "job.failed" || type == "job.cancelled";
}

bool is_job_topic(std::string_view topic) {
    return topic.starts_with("job:");
}

metrics::counter& slow_consumers(const char* transport, const char* reason) {
    return metrics::global().counter(
        "conclave_stream_slow_consumer_total",
        {{"transport", transport}, {"reason", reason}},
        "Stream clients that fell behind: overflow (queue dropped past its budget, caught up "
        "from the store) or timeout (stopped reading, disconnected)"
    );
}

}  // namespace

// ---- frame_queue ----

void frame_queue::deliver(const events::frame_ptr& f) {
    {
        std::lock_guard lock(mutex_);
        if (overflowed_) {
            return;
        }
        const auto size = f->sse_body.size();
        if (bytes_ + size > budget_ / 2 && !queue_.empty() &&
            queue_.back()->sse_body.size() + size <= max_merged_bytes) {
            // Under pressure: a delta that continues the last queued one joins it.
            if (auto merged = events::merge_deltas(*queue_.back(), *f)) {
                bytes_ = bytes_ - queue_.back()->sse_body.size() + merged->sse_body.size();
                queue_.back() = std::move(merged);
                return;
            }
        }
        if (bytes_ + size > budget_) {
            // Past the budget: drop what is queued; the session re-reads from the store at its
            // own pace, so memory stays bounded and nothing is lost.
            overflowed_ = true;
            queue_.clear();
            bytes_ = 0;
            if (overflows_ != nullptr) {
                overflows_->inc();
            }
        } else {
            bytes_ += size;
            queue_.push_back(f);
            if (queue_.size() > 1) {
                return;  // the session was woken by the first frame and takes them all
            }
        }
    }
    wake_.notify_all();
}

std::deque<events::frame_ptr> frame_queue::take(bool& overflowed) {
    std::lock_guard lock(mutex_);
    overflowed = std::exchange(overflowed_, false);
    bytes_ = 0;
    return std::exchange(queue_, {});
}

// ---- follower ----

follower::follower(events::hub& hub, jobs::engine& engine, const stream_options& options, sink& out)
    : hub_(hub),
      engine_(engine),
      options_(options),
      out_(out),
      subscriptions_(metrics::global().gauge(
          "conclave_stream_subscriptions",
          {{"transport", out.transport()}},
          "Topics followed now by SSE and WebSocket clients"
      )),
      delivered_(metrics::global().counter(
          "conclave_stream_events_delivered_total",
          {{"transport", out.transport()}},
          "Events sent to SSE and WebSocket clients (live and replayed)"
      )),
      queue_(std::make_shared<frame_queue>(
          options.queue_bytes, &slow_consumers(out.transport(), "overflow")
      )) {}

follower::~follower() {
    for (const auto& [topic, offset] : positions_) {
        hub_.unsubscribe(topic, queue_.get());
    }
    subscriptions_.add(-static_cast<double>(positions_.size()));
}

void count_stream_timeout(const char* transport) {
    slow_consumers(transport, "timeout").inc();
}

net::awaitable<bool> follower::follow(const std::string& topic, std::int64_t after) {
    positions_.emplace_back(topic, after);
    subscriptions_.inc();
    auto joined = hub_.subscribe(topic, after, queue_);
    if (joined.covered) {
        std::deque<events::frame_ptr> backlog(joined.backlog.begin(), joined.backlog.end());
        if (!co_await send_all(backlog)) {
            co_return false;
        }
    } else if (!co_await catch_up(topic)) {
        co_return false;
    }
    if (!is_job_topic(topic) || ended_.contains(topic)) {
        co_return true;
    }
    // A job that is already over: its terminal event is in the store, so one more read sends
    // it (and `end`), unless the client is past it: then only `end`.
    auto job = co_await engine_.find(topic.substr(4));
    if (!job || !store::is_terminal(job->state)) {
        co_return true;
    }
    if (!co_await catch_up(topic)) {
        co_return false;
    }
    co_return ended_.contains(topic) || co_await end(topic);
}

void follower::unfollow(const std::string& topic) {
    hub_.unsubscribe(topic, queue_.get());
    const auto removed = std::erase_if(positions_, [&](const auto& p) { return p.first == topic; });
    subscriptions_.add(-static_cast<double>(removed));
    ended_.erase(topic);
}

bool follower::follows(const std::string& topic) const {
    return std::any_of(positions_.begin(), positions_.end(), [&](const auto& p) {
        return p.first == topic;
    });
}

net::awaitable<bool> follower::pump(bool& sent) {
    bool overflowed = false;
    auto frames = queue_->take(overflowed);
    sent = overflowed || !frames.empty();
    if (overflowed) {
        // Frames were dropped while this client lagged: replay them from the store.
        const auto topics = positions_;
        for (const auto& [topic, offset] : topics) {
            if (!ended_.contains(topic) && !co_await catch_up(topic)) {
                co_return false;
            }
        }
    }
    co_return co_await send_all(frames);
}

// Queues `frames` on the sink and flushes once (or at a gap or an end): under a burst a
// connection costs one write per batch, not one per event.
net::awaitable<bool> follower::send_all(const std::deque<events::frame_ptr>& frames) {
    for (const auto& f : frames) {
        auto* at = position(f->topic);
        if (at == nullptr || f->offset <= *at || ended_.contains(f->topic)) {
            continue;  // not followed (any more), already sent, or over
        }
        if (f->first_offset > *at + 1) {
            // A gap: the store has everything up to this frame, since it was committed.
            if (!co_await out_.flush() || !co_await catch_up(f->topic)) {
                co_return false;
            }
            continue;
        }
        *at = f->offset;
        out_.add(*f, positions_);
        delivered_.inc();
        if (is_job_topic(f->topic) && is_terminal_event(f->type)) {
            if (!co_await out_.flush() || !co_await end(f->topic)) {
                co_return false;
            }
        }
    }
    co_return co_await out_.flush();
}

// Replays `topic` from the store after its position, page by page (one write per page).
net::awaitable<bool> follower::catch_up(const std::string& topic) {
    // A small first page gets the first event out fast; later pages grow to store_page.
    std::size_t limit = first_store_page;
    while (!ended_.contains(topic)) {
        auto* at = position(topic);
        if (at == nullptr) {
            co_return true;
        }
        auto page = co_await engine_.events(topic, *at, limit);
        limit = std::min(limit * 4, store_page);
        if (!page || page->empty()) {
            co_return true;
        }
        if (page->front().offset > *at + 1 && !co_await reset(topic, page->front().offset)) {
            co_return false;
        }
        std::deque<events::frame_ptr> frames;
        for (const auto& e : *page) {
            frames.push_back(events::make_frame(e));
        }
        if (!co_await send_all(frames)) {
            co_return false;
        }
    }
    co_return true;
}

// The client's position points before what the store retains: it gets `reset` and goes on
// from the job's snapshot (a job topic) or from the oldest retained event.
net::awaitable<bool> follower::reset(const std::string& topic, std::int64_t first_retained) {
    auto* at = position(topic);
    json::object data{
        {"topic", topic},
        {"reason", "retention"},
        {"after", *at},
        {"first_retained", first_retained},
        {"snapshot", nullptr},
    };
    std::int64_t resume = first_retained - 1;
    if (is_job_topic(topic)) {
        auto snap = co_await engine_.snapshot(topic.substr(4));
        if (snap) {
            resume = std::max(resume, snap->offset);
            data["snapshot"] = jobs::to_json(*snap);
        }
    }
    data["offset"] = resume;  // the stream goes on after this offset
    at = position(topic);
    if (at != nullptr) {
        *at = resume;
    }
    co_return co_await out_.control("reset", std::move(data));
}

net::awaitable<bool> follower::end(const std::string& topic) {
    ended_.insert(topic);
    auto job = co_await engine_.find(topic.substr(4));
    const std::string state = job ? store::to_string(job->state) : "unknown";
    json::object data{{"topic", topic}, {"state", state}};
    co_return co_await out_.control("end", std::move(data));
}

std::int64_t* follower::position(const std::string& topic) {
    for (auto& [name, offset] : positions_) {
        if (name == topic) {
            return &offset;
        }
    }
    return nullptr;
}

}  // namespace conclave::stream
