#include "stream/sse.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include "core/wakeup.hpp"
#include "events/cursor.hpp"
#include "events/hub.hpp"
#include "http/json_body.hpp"
#include "jobs/engine.hpp"
#include "store/topic.hpp"

namespace conclave::stream {
namespace json = boost::json;
namespace beast = boost::beast;
using http::bhttp::verb;

namespace {

constexpr std::size_t first_store_page = 16;
constexpr std::size_t store_page = 500;

bool is_terminal_event(std::string_view type) {
    return type == "job.succeeded" || type == "job.failed" || type == "job.cancelled";
}

// The live side of one connection: frames the hub delivers wait here for the session.
class sse_subscriber final : public events::subscriber {
public:
    explicit sse_subscriber(std::size_t budget) : budget_(budget) {}

    void deliver(const events::frame_ptr& f) override {
        {
            std::lock_guard lock(mutex_);
            if (overflowed_) {
                return;
            }
            if (bytes_ + f->sse_body.size() > budget_) {
                // Past the budget: drop what is queued; the session re-reads from the store
                // at its own pace, so memory stays bounded and nothing is lost.
                overflowed_ = true;
                queue_.clear();
                bytes_ = 0;
            } else {
                bytes_ += f->sse_body.size();
                queue_.push_back(f);
                if (queue_.size() > 1) {
                    return;  // the session was woken by the first frame and takes them all
                }
            }
        }
        wake_.notify_all();
    }

    // Everything queued so far; `overflowed` tells that frames were dropped since the last
    // call (the caller must re-read from the store).
    std::deque<events::frame_ptr> take(bool& overflowed) {
        std::lock_guard lock(mutex_);
        overflowed = std::exchange(overflowed_, false);
        bytes_ = 0;
        return std::exchange(queue_, {});
    }

    wakeup& wake() { return wake_; }

private:
    const std::size_t budget_;
    std::mutex mutex_;
    std::deque<events::frame_ptr> queue_;
    std::size_t bytes_ = 0;
    bool overflowed_ = false;
    wakeup wake_;
};

// One SSE connection over one or more topics.
class sse_session {
public:
    sse_session(
        beast::tcp_stream& stream,
        events::hub& hub,
        jobs::engine& engine,
        const stream_options& options,
        events::cursor positions,
        std::set<std::string> job_topics,
        bool multi
    )
        : stream_(stream),
          hub_(hub),
          engine_(engine),
          options_(options),
          positions_(std::move(positions)),
          job_topics_(std::move(job_topics)),
          multi_(multi),
          sub_(std::make_shared<sse_subscriber>(options.queue_bytes)) {}

    net::awaitable<void> run() {
        const std::string head =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            "X-Accel-Buffering: no\r\nConnection: close\r\nServer: conclave\r\n\r\nretry: " +
            std::to_string(options_.retry.count()) + "\n\n";
        if (!co_await write(head)) {
            co_return;
        }
        for (const auto& [topic, after] : positions_) {
            auto joined = hub_.subscribe(topic, after, sub_);
            if (joined.covered) {
                if (!co_await send_all(joined.backlog)) {
                    co_await finish();
                    co_return;
                }
            } else if (!co_await catch_up(topic)) {
                co_await finish();
                co_return;
            }
        }
        co_await live();
        co_await finish();
    }

private:
    net::awaitable<void> live() {
        // A job stream is over after its end; a multi-topic stream once every topic has ended.
        while (ended_.empty() || (multi_ && ended_.size() < positions_.size())) {
            const auto seen = sub_->wake().generation();
            bool overflowed = false;
            auto frames = sub_->take(overflowed);
            if (overflowed) {
                // Frames were dropped while this client lagged: replay them from the store.
                const auto topics = positions_;
                for (const auto& [topic, offset] : topics) {
                    if (!ended_.contains(topic) && !co_await catch_up(topic)) {
                        co_return;
                    }
                }
            }
            if (!co_await send_all(frames)) {
                co_return;
            }
            if (!frames.empty()) {
                continue;
            }
            co_await sub_->wake().wait(seen, options_.heartbeat);
            if (sub_->wake().generation() == seen && !co_await write(heartbeat())) {
                co_return;
            }
        }
    }

    // Sends `frames` in as few writes as possible (one, unless a gap or an end intervenes):
    // under a burst a connection costs one syscall per batch, not one per event.
    template <class Frames>
    net::awaitable<bool> send_all(const Frames& frames) {
        std::vector<std::string> ids;
        std::vector<events::frame_ptr> batch;
        ids.reserve(frames.size());
        batch.reserve(frames.size());
        for (const auto& f : frames) {
            auto& at = position(f->topic);
            if (f->offset <= at || ended_.contains(f->topic)) {
                continue;
            }
            if (f->offset > at + 1 ||
                (job_topics_.contains(f->topic) && is_terminal_event(f->type))) {
                // A gap (filled from the store) or the job's end: flush, then go one by one.
                if (!co_await write_batch(ids, batch) || !co_await send(f)) {
                    co_return false;
                }
                continue;
            }
            at = f->offset;
            ids.push_back(
                "id: " + (multi_ ? events::format_cursor(positions_) : std::to_string(f->offset)) +
                "\n"
            );
            batch.push_back(f);
        }
        co_return co_await write_batch(ids, batch);
    }

    net::awaitable<bool> write_batch(
        std::vector<std::string>& ids, std::vector<events::frame_ptr>& batch
    ) {
        if (batch.empty()) {
            co_return true;
        }
        std::vector<net::const_buffer> buffers;
        buffers.reserve(batch.size() * 2);
        for (std::size_t idx = 0; idx < batch.size(); ++idx) {
            buffers.push_back(net::buffer(ids[idx]));
            buffers.push_back(net::buffer(batch[idx]->sse_body));
        }
        stream_.expires_after(options_.write_timeout);
        auto [ec, n] =
            co_await net::async_write(stream_, buffers, net::as_tuple(net::use_awaitable));
        ids.clear();
        batch.clear();
        co_return !ec;
    }

    // Sends `f` unless already sent; fills a gap before it from the store.
    net::awaitable<bool> send(const events::frame_ptr& f) {
        auto& at = position(f->topic);
        if (f->offset <= at || ended_.contains(f->topic)) {
            co_return true;
        }
        if (f->offset > at + 1) {
            co_return co_await catch_up(f->topic);  // the store read includes f
        }
        at = f->offset;
        const std::string id =
            "id: " + (multi_ ? events::format_cursor(positions_) : std::to_string(f->offset)) +
            "\n";
        std::array<net::const_buffer, 2> buffers{net::buffer(id), net::buffer(f->sse_body)};
        stream_.expires_after(options_.write_timeout);
        auto [ec, n] =
            co_await net::async_write(stream_, buffers, net::as_tuple(net::use_awaitable));
        if (ec) {
            co_return false;
        }
        if (job_topics_.contains(f->topic) && is_terminal_event(f->type)) {
            co_return co_await end(f->topic);
        }
        co_return true;
    }

    // Replays `topic` from the store after its position, page by page (one write per page).
    net::awaitable<bool> catch_up(const std::string& topic) {
        // A small first page gets the first event out fast; later pages grow to store_page.
        std::size_t limit = first_store_page;
        while (!ended_.contains(topic)) {
            auto page = co_await engine_.events(topic, position(topic), limit);
            limit = std::min(limit * 4, store_page);
            if (!page || page->empty()) {
                co_return true;
            }
            std::vector<events::frame_ptr> frames;
            frames.reserve(page->size());
            for (const auto& e : *page) {
                frames.push_back(events::make_frame(e));
            }
            if (!co_await send_all(frames)) {
                co_return false;
            }
        }
        co_return true;
    }

    net::awaitable<bool> end(const std::string& topic) {
        ended_.insert(topic);
        auto job = co_await engine_.find(topic.substr(4));
        const std::string state = job ? store::to_string(job->state) : "unknown";
        std::string text = "event: end\ndata: " +
                           json::serialize(json::object{{"topic", topic}, {"state", state}}) +
                           "\n\n";
        co_return co_await write(std::move(text));
    }

    std::string heartbeat() const {
        std::string line = ": heartbeat";
        for (const auto& [topic, offset] : positions_) {
            line += " " + topic + "=" + std::to_string(offset);
        }
        return line + "\n\n";
    }

    // The position of one of this stream's topics. Frames only ever come from those topics.
    std::int64_t& position(const std::string& topic) {
        for (auto& [name, offset] : positions_) {
            if (name == topic) {
                return offset;
            }
        }
        throw std::logic_error("sse: frame from a topic this stream does not follow: " + topic);
    }

    net::awaitable<bool> write(std::string text) {
        stream_.expires_after(options_.write_timeout);
        auto [ec, n] = co_await net::async_write(
            stream_, net::buffer(text), net::as_tuple(net::use_awaitable)
        );
        co_return !ec;
    }

    net::awaitable<void> finish() {
        for (const auto& [topic, offset] : positions_) {
            hub_.unsubscribe(topic, sub_.get());
        }
        boost::system::error_code ignored;
        stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
        co_return;
    }

    beast::tcp_stream& stream_;
    events::hub& hub_;
    jobs::engine& engine_;
    const stream_options& options_;
    events::cursor positions_;
    std::set<std::string> job_topics_;
    std::set<std::string> ended_;
    bool multi_;
    std::shared_ptr<sse_subscriber> sub_;
};

http::response no_content() {
    http::response res{http::bhttp::status::no_content, 11};
    res.prepare_payload();
    return res;
}

// Validates the topics and positions, answers 204 when every job topic is already past its end,
// and otherwise hands the connection to a session.
net::awaitable<http::response> open_stream(
    http::request_context& ctx,
    events::hub& hub,
    jobs::engine& engine,
    const stream_options& options,
    events::cursor positions,
    bool multi
) {
    std::set<std::string> job_topics;
    std::size_t ended = 0;
    for (auto& [topic, after] : positions) {
        auto probe = co_await engine.events(topic, after, 1);
        if (!probe) {
            co_return http::error_response(probe.error());
        }
        if (!topic.starts_with("job:")) {
            continue;
        }
        job_topics.insert(topic);
        auto job = co_await engine.find(topic.substr(4));
        if (job && store::is_terminal(job->state) && probe->empty()) {
            ++ended;
        }
    }
    if (!job_topics.empty() && ended == positions.size()) {
        co_return no_content();  // nothing more will come: EventSource stops reconnecting
    }
    ctx.stream = [&hub,
                  &engine,
                  &options,
                  positions = std::move(positions),
                  job_topics = std::move(job_topics),
                  multi](beast::tcp_stream& stream) -> net::awaitable<void> {
        sse_session session(stream, hub, engine, options, positions, job_topics, multi);
        co_await session.run();
    };
    co_return http::response{};
}

// The resume position of a single-topic stream: Last-Event-ID wins over ?after=.
result<std::int64_t> single_position(const http::request_context& ctx) {
    const auto last_id = ctx.req["Last-Event-ID"];
    if (!last_id.empty()) {
        return http::parse_non_negative(last_id, "Last-Event-ID");
    }
    if (auto after = ctx.query("after")) {
        return http::parse_non_negative(*after, "after");
    }
    return 0;
}

net::awaitable<http::response> single_topic(
    http::request_context& ctx,
    events::hub& hub,
    jobs::engine& engine,
    const stream_options& options,
    std::string topic
) {
    auto after = single_position(ctx);
    if (!after) {
        co_return http::error_response(after.error());
    }
    events::cursor positions{{std::move(topic), *after}};
    co_return co_await open_stream(ctx, hub, engine, options, std::move(positions), false);
}

}  // namespace

void add_sse_routes(
    http::router& routes, events::hub& hub, jobs::engine& engine, stream_options options
) {
    auto opts = std::make_shared<const stream_options>(options);
    const std::string sse = "text/event-stream";

    routes.add(
        verb::get,
        "/v1/topics/{topic}/events",
        [&hub, &engine, opts](http::request_context& ctx) -> net::awaitable<http::response> {
            if (!store::is_valid_topic(ctx.params[0])) {
                co_return http::error_response(fail(errc::bad_request, "invalid topic name"));
            }
            co_return co_await single_topic(ctx, hub, engine, *opts, ctx.params[0]);
        },
        sse
    );

    routes.add(
        verb::get,
        "/v1/jobs/{id}/events",
        [&hub, &engine, opts](http::request_context& ctx) -> net::awaitable<http::response> {
            auto job = co_await engine.find(ctx.params[0]);
            if (!job) {
                co_return http::error_response(job.error());
            }
            co_return co_await single_topic(ctx, hub, engine, *opts, store::job_topic(job->id));
        },
        sse
    );

    routes.add(
        verb::get,
        "/v1/stream",
        [&hub, &engine, opts](http::request_context& ctx) -> net::awaitable<http::response> {
            const auto list = ctx.query("topics").value_or("");
            events::cursor positions;
            std::size_t start = 0;
            while (start < list.size()) {
                const auto end = std::min(list.find(',', start), list.size());
                const auto topic = list.substr(start, end - start);
                if (!store::is_valid_topic(topic)) {
                    co_return http::error_response(
                        fail(errc::bad_request, "invalid topic name in 'topics'")
                    );
                }
                if (std::none_of(positions.begin(), positions.end(), [&](const auto& p) {
                        return p.first == topic;
                    })) {
                    positions.emplace_back(topic, 0);
                }
                start = end + 1;
            }
            if (positions.empty() || positions.size() > opts->max_topics) {
                co_return http::error_response(fail(
                    errc::bad_request,
                    "'topics' must name 1 to " + std::to_string(opts->max_topics) + " topics"
                ));
            }
            const auto last_id = ctx.req["Last-Event-ID"];
            const std::string resume =
                !last_id.empty() ? std::string(last_id) : ctx.query("cursor").value_or("");
            auto parsed = events::parse_cursor(resume);
            if (!parsed) {
                co_return http::error_response(
                    fail(errc::bad_request, "malformed cursor (expected topic@offset,…)")
                );
            }
            for (const auto& [topic, offset] : *parsed) {
                for (auto& [name, after] : positions) {
                    if (name == topic) {
                        after = offset;
                    }
                }
            }
            co_return co_await open_stream(ctx, hub, engine, *opts, std::move(positions), true);
        },
        sse
    );
}

}  // namespace conclave::stream
