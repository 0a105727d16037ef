#include "jobs/engine.hpp"

#include <algorithm>
#include <utility>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json.hpp>

#include "core/logging.hpp"
#include "core/metrics.hpp"
#include "jobs/backoff.hpp"
#include "jobs/submission.hpp"
#include "store/deltas.hpp"
#include "store/records_json.hpp"
#include "store/topic.hpp"

namespace conclave::jobs {
namespace json = boost::json;
using std::chrono::milliseconds;

// One in-process job while its handler runs. Its fields after `claimed` are touched only on
// `strand`.
struct running_job {
    store::claimed_job claimed;
    std::map<std::string, std::string> steps;
    net::any_io_executor strand;
    net::cancellation_signal signal;
    bool cancelled = false;  // cancelled through the API
    bool timed_out = false;
};

namespace {

constexpr std::size_t max_worker_name = 200;
constexpr int max_claim = 1000;
constexpr milliseconds max_claim_wait{60'000};
constexpr unix_ms max_lease_ms = 3'600'000;
constexpr std::size_t max_event_type = 100;
constexpr std::size_t max_events_per_post = 1000;

// Seconds a job waited to be claimed: a short queue answers in milliseconds, a backlog in
// minutes or hours.
const std::vector<double>& claim_buckets() {
    static const std::vector<double> bounds{
        0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
    return bounds;
}

// A claimed job's wait in the queue: from when it could first run (run_at: its submission, its
// delay or its retry's backoff) to its claim (started_at).
void observe_claim(const store::job& j) {
    metrics::global()
        .histogram(
            "conclave_job_claim_latency_seconds",
            claim_buckets(),
            {{"type", j.type}},
            "Time from when a job could run (run_at) to its claim (started_at), by type"
        )
        .observe(static_cast<double>(std::max<unix_ms>(0, j.started_at - j.run_at)) / 1000);
}

// An attempt that ended with an outcome recorded: its duration (claim to outcome) and a log
// line. `ended` is the job after the outcome: succeeded, failed, or queued again (retried).
void observe_attempt(const store::job& ended, int attempt, unix_ms started_at, unix_ms now) {
    const char* outcome =
        ended.state == store::job_state::queued ? "retried" : store::to_string(ended.state);
    const double seconds = static_cast<double>(std::max<unix_ms>(0, now - started_at)) / 1000;
    metrics::global()
        .histogram(
            "conclave_job_duration_seconds",
            metrics::duration_buckets(),
            {{"type", ended.type}, {"outcome", outcome}},
            "Job attempts from claim to recorded outcome, by type and outcome (succeeded, "
            "failed, retried)"
        )
        .observe(seconds);
    log_with(
        *logger("jobs"),
        spdlog::level::info,
        {{"job_id", ended.id},
         {"type", ended.type},
         {"attempt", attempt},
         {"outcome", outcome},
         {"duration_ms", seconds * 1000}},
        "job attempt ended"
    );
}

std::string error_json(const std::string& code, const std::string& message) {
    return json::serialize(json::object{{"code", code}, {"message", message}});
}

// Errors for events a worker or an application may not append.
std::optional<error> check_event_specs(const std::vector<store::event_spec>& events) {
    if (events.empty() || events.size() > max_events_per_post) {
        return fail(errc::bad_request, "post 1 to 1000 events at a time");
    }
    for (const auto& e : events) {
        if (e.type.empty() || e.type.size() > max_event_type) {
            return fail(errc::bad_request, "an event 'type' must be a string of 1-100 characters");
        }
        if (e.type.starts_with("job.")) {
            return fail(
                errc::bad_request, "event types starting with 'job.' are reserved for the engine"
            );
        }
    }
    return std::nullopt;
}

}  // namespace

json::object to_json(const job_snapshot& snap) {
    json::object parts;
    for (const auto& [name, text] : snap.parts) {
        parts[name] = text;
    }
    const auto topic = store::job_topic(snap.job.id);
    json::array events;
    for (const auto& e : snap.events) {
        events.push_back(store::to_json(e));
    }
    return json::object{
        {"job", store::to_json(snap.job)},
        {"attempt", snap.attempt},
        {"parts", std::move(parts)},
        {"complete", snap.complete},
        {"topic", topic},
        {"offset", snap.offset},
        // Continue with GET …/events?after=offset, or /v1/stream?topics=…&cursor=cursor.
        {"cursor", topic + "@" + std::to_string(snap.offset)},
        {"events", std::move(events)},
        {"events_truncated", snap.events_truncated},
    };
}

// ---- job_context ----

const store::job& job_context::job() const {
    return job_->claimed.job;
}

int job_context::attempt() const {
    return job_->claimed.job.attempts;
}

store::store& job_context::db() const {
    return engine_.db_;
}

unix_ms job_context::now() const {
    return engine_.clock_.now();
}

net::awaitable<std::string> job_context::step(
    std::string key, std::function<net::awaitable<std::string>()> fn
) {
    if (auto found = job_->steps.find(key); found != job_->steps.end()) {
        co_return found->second;
    }
    std::string value = co_await fn();
    co_await flush();
    const auto& j = job();
    auto saved = co_await engine_.db_.save_step(
        j.id, j.lease_token, key, std::move(value), engine_.clock_.now()
    );
    if (!saved) {
        throw handler_error(to_string(saved.error().code), saved.error().message, false);
    }
    job_->steps[key] = saved->result;
    co_return saved->result;
}

net::awaitable<void> job_context::progress(std::string json_text) {
    co_await flush();
    const auto& j = job();
    auto done = co_await engine_.db_.heartbeat(
        j.id, j.lease_token, engine_.clock_.now(), engine_.options_.lease_ms, std::move(json_text)
    );
    if (!done) {
        throw handler_error(to_string(done.error().code), done.error().message, false);
    }
}

net::awaitable<void> job_context::emit(std::string type, std::string data) {
    const auto& j = job();
    std::vector<store::event_spec> events{store::event_spec{std::move(type), std::move(data)}};
    auto done = co_await engine_.post_events(j.id, j.lease_token, std::move(events));
    if (!done) {
        throw handler_error(to_string(done.error().code), done.error().message, false);
    }
}

net::awaitable<void> job_context::delta(std::string part, std::string text, std::string type) {
    if (!store::is_delta_type(type)) {
        throw std::invalid_argument("not a delta event type: " + type);
    }
    const auto& j = job();
    if (!deltas_open_) {
        co_await engine_.deltas_.open(j.id, j.lease_token, j.attempts);
        deltas_open_ = true;
    }
    auto added = co_await engine_.deltas_.add(
        j.id, j.lease_token, std::move(type), std::move(part), std::move(text)
    );
    if (!added) {
        throw handler_error(to_string(added.error().code), added.error().message, false);
    }
}

net::awaitable<void> job_context::flush() {
    if (!deltas_open_) {
        co_return;
    }
    auto written = co_await engine_.deltas_.flush(job().id);
    if (!written) {
        throw handler_error(to_string(written.error().code), written.error().message, false);
    }
}

// ---- engine ----

engine::engine(store::store& db, const registry& types, const clock& clk, engine_options options)
    : db_(db),
      types_(types),
      clock_(clk),
      options_(std::move(options)),
      policy_(default_retry_policy()),
      deltas_(db, clk, options_.deltas) {}

engine::~engine() {
    stop();
}

net::awaitable<void> engine::start(net::any_io_executor exec) {
    exec_ = exec;
    deltas_.start(exec_);
    auto released = co_await db_.release_owner(options_.node_id, clock_.now(), policy_);
    if (!released.empty()) {
        logger("jobs")->info(
            "recovered {} job(s) left active by this node's previous run", released.size()
        );
    }
    auto log_exit = [](const char* name) {
        return [name](std::exception_ptr e) {
            if (!e) {
                return;
            }
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                logger("jobs")->error("{} loop stopped: {}", name, ex.what());
            }
        };
    };
    net::co_spawn(net::make_strand(exec_), dispatch_loop(), log_exit("dispatch"));
    net::co_spawn(net::make_strand(exec_), sweep_loop(), log_exit("sweep"));
    net::co_spawn(net::make_strand(exec_), renew_loop(), log_exit("renew"));
    net::co_spawn(net::make_strand(exec_), check_loop(), log_exit("check"));
}

void engine::stop() {
    if (stopping_.exchange(true)) {
        return;
    }
    stop_wakeup_.notify_all();
    check_wakeup_.notify_all();
    deltas_.stop();
    dispatch_wakeup_.notify_all();
    remote_wakeup_.notify_all();
    std::vector<std::shared_ptr<running_job>> running;
    {
        std::lock_guard lock(running_mutex_);
        for (auto& [id, rj] : running_jobs_) {
            running.push_back(rj);
        }
    }
    for (auto& rj : running) {
        net::post(rj->strand, [rj] { rj->signal.emit(net::cancellation_type::terminal); });
    }
}

net::awaitable<void> engine::sleep_for(milliseconds d) {
    co_await stop_wakeup_.wait(0, d);
}

net::awaitable<void> engine::dispatch_loop() {
    const auto in_process = types_.names(executor::in_process);
    const auto type_limits = types_.limits(executor::in_process);
    while (!stopping_) {
        const auto seen = dispatch_wakeup_.generation();
        const int capacity = options_.concurrency - running_.load();
        if (capacity > 0 && !in_process.empty()) {
            const int want = std::min(capacity, options_.claim_batch);
            store::claim_request request{
                options_.node_id,
                in_process,
                type_limits,
                types_.queue_limits(),
                want,
                clock_.now(),
                options_.lease_ms};
            std::vector<store::claimed_job> claimed;
            try {
                claimed = co_await db_.claim_jobs(std::move(request));
            } catch (const std::exception& e) {
                logger("jobs")->error("claim failed: {}", e.what());
            }
            const bool full = std::cmp_equal(claimed.size(), want);
            for (auto& c : claimed) {
                observe_claim(c.job);
                start_handler(std::move(c));
            }
            if (full) {
                continue;
            }
        }
        co_await dispatch_wakeup_.wait(seen, milliseconds(options_.idle_poll_ms));
    }
}

void engine::wake() {
    dispatch_wakeup_.notify_all();
    remote_wakeup_.notify_all();
}

net::awaitable<void> engine::sweep_loop() {
    while (!stopping_) {
        co_await sleep_for(milliseconds(options_.sweep_interval_ms));
        if (stopping_) {
            break;
        }
        try {
            auto expired =
                co_await db_.expire_leases(clock_.now(), options_.timeout_grace_ms, policy_);
            for (const auto& j : expired) {
                // An in-process attempt the store has ended (a handler that ignored its
                // timeout, or a node too slow to renew): stop its handler.
                cancel_running(j.id, j.attempts);
            }
            if (!expired.empty()) {
                logger("jobs")->info(
                    "{} job attempt(s) ended by lease expiry or timeout", expired.size()
                );
                dispatch_wakeup_.notify_all();
                remote_wakeup_.notify_all();
            }
        } catch (const std::exception& e) {
            logger("jobs")->error("lease sweep failed: {}", e.what());
        }
    }
}

net::awaitable<void> engine::renew_loop() {
    while (!stopping_) {
        co_await sleep_for(milliseconds(options_.lease_ms / 3));
        std::vector<std::string> ids;
        {
            std::lock_guard lock(running_mutex_);
            for (const auto& [id, rj] : running_jobs_) {
                ids.push_back(id);
            }
        }
        if (stopping_ || ids.empty()) {
            continue;
        }
        try {
            // Only jobs whose handlers still run here: a job whose result could not be
            // recorded loses its lease and runs again.
            co_await db_.renew_leases(
                options_.node_id, std::move(ids), clock_.now() + options_.lease_ms
            );
        } catch (const std::exception& e) {
            logger("jobs")->error("lease renewal failed: {}", e.what());
        }
    }
}

void engine::changed_elsewhere(const std::string& id) {
    {
        std::lock_guard lock(running_mutex_);
        if (!running_jobs_.contains(id)) {
            return;  // the usual case: a job running elsewhere, or no job at all
        }
        to_check_.insert(id);
    }
    check_wakeup_.notify_all();
}

void engine::check_running() {
    {
        std::lock_guard lock(running_mutex_);
        for (const auto& [id, rj] : running_jobs_) {
            to_check_.insert(id);
        }
    }
    check_wakeup_.notify_all();
}

net::awaitable<void> engine::check_loop() {
    while (!stopping_) {
        const auto seen = check_wakeup_.generation();
        std::vector<std::pair<std::string, int>> running;  // (id, attempt) to read
        {
            std::lock_guard lock(running_mutex_);
            for (const auto& id : to_check_) {
                if (auto it = running_jobs_.find(id); it != running_jobs_.end()) {
                    running.emplace_back(id, it->second->claimed.job.attempts);
                }
            }
            to_check_.clear();
        }
        for (const auto& [id, attempt] : running) {
            try {
                auto j = co_await db_.find_job(id);
                // Still ours: active, leased to this node, the same attempt. A job cancelled
                // elsewhere keeps its lease token but is no longer active.
                const bool ours = j && j->state == store::job_state::active &&
                                  j->lease_owner == options_.node_id && j->attempts == attempt;
                if (!ours) {
                    logger("jobs")->info(
                        "job {} attempt {} was ended by another node: stopping its handler here",
                        id,
                        attempt
                    );
                    cancel_running(id, attempt);
                }
            } catch (const std::exception& e) {
                // The database is away: the lease renewal fails too, and the job's lease
                // decides. The next news (or the reconnection) checks again.
                logger("jobs")->warn("could not read job {}: {}", id, e.what());
            }
        }
        co_await check_wakeup_.wait(seen, milliseconds(options_.lease_ms));
    }
}

void engine::start_handler(store::claimed_job claimed) {
    auto rj = std::make_shared<running_job>();
    rj->strand = net::make_strand(exec_);
    for (const auto& s : claimed.steps) {
        rj->steps.emplace(s.key, s.result);
    }
    rj->claimed = std::move(claimed);
    {
        std::lock_guard lock(running_mutex_);
        running_jobs_[rj->claimed.job.id] = rj;
    }
    ++running_;
    auto on_exit = [id = rj->claimed.job.id](std::exception_ptr e) {
        if (!e) {
            return;
        }
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log_with(
                *logger("jobs"),
                spdlog::level::err,
                {{"job_id", id}},
                "job {}: handler runner failed: {}",
                id,
                ex.what()
            );
        }
    };
    net::co_spawn(rj->strand, run_handler(rj), std::move(on_exit));
}

net::awaitable<void> engine::run_handler(std::shared_ptr<running_job> rj) {
    const store::job& j = rj->claimed.job;
    const type_config* type = types_.find(j.type);
    job_context ctx(*this, rj);
    net::steady_timer timeout_timer(rj->strand);
    if (j.timeout_s > 0) {
        timeout_timer.expires_after(std::chrono::seconds(j.timeout_s));
        timeout_timer.async_wait([rj](boost::system::error_code ec) {
            if (!ec) {
                rj->timed_out = true;
                rj->signal.emit(net::cancellation_type::terminal);
            }
        });
    }
    std::string result_text;
    std::exception_ptr failure;
    try {
        auto task = type->run(ctx);
        auto token = net::bind_cancellation_slot(rj->signal.slot(), net::use_awaitable);
        result_text = co_await net::co_spawn(rj->strand, std::move(task), std::move(token));
    } catch (...) {
        failure = std::current_exception();
    }
    timeout_timer.cancel();

    // A cancelled attempt has already ended in the store. A failure while stopping is most
    // likely our own cancellation: the next start of this node re-runs the job. A success is
    // always recorded, even if a timeout or a stop raced it.
    if (!rj->cancelled && !(stopping_ && failure)) {
        try {
            co_await record_outcome(*rj, std::move(result_text), failure);
        } catch (const std::exception& e) {
            log_with(
                *logger("jobs"),
                spdlog::level::err,
                {{"job_id", j.id}},
                "job {}: outcome not recorded ({}); it runs again when its lease expires",
                j.id,
                e.what()
            );
        }
    }
    forget(rj);
}

net::awaitable<void> engine::record_outcome(
    running_job& rj, std::string result_text, std::exception_ptr failure
) {
    const store::job& j = rj.claimed.job;
    // The attempt's last deltas go before its outcome (if the lease is gone, so is the outcome).
    co_await deltas_.flush(j.id);
    deltas_.forget(j.id);
    const unix_ms now = clock_.now();
    result<store::job> outcome = store::job{};
    if (!failure) {
        outcome = co_await db_.complete_job(j.id, j.lease_token, std::move(result_text), now);
    } else {
        std::string text;
        bool retryable = true;
        if (rj.timed_out) {
            text = error_json(
                "timeout", "attempt ran past its timeout of " + std::to_string(j.timeout_s) + " s"
            );
        } else {
            try {
                std::rethrow_exception(failure);
            } catch (const handler_error& e) {
                text = error_json(e.code(), e.what());
                retryable = e.retryable();
            } catch (const std::exception& e) {
                text = error_json("handler_error", e.what());
            }
        }
        outcome =
            co_await db_.fail_job(j.id, j.lease_token, std::move(text), retryable, policy_, now);
    }
    if (!outcome) {
        // Fenced: the attempt lost its lease (taken over, or the job cancelled) meanwhile.
        metrics::global()
            .counter(
                "conclave_job_outcomes_refused_total",
                {{"type", j.type}, {"code", to_string(outcome.error().code)}},
                "In-process attempts whose outcome the store refused (lease_lost: the job was "
                "taken over; invalid_transition: it was cancelled), by type and error code"
            )
            .inc();
        log_with(
            *logger("jobs"),
            spdlog::level::debug,
            {{"job_id", j.id}},
            "job {}: outcome not recorded: {}",
            j.id,
            outcome.error().message
        );
        co_return;
    }
    observe_attempt(*outcome, j.attempts, j.started_at, now);
    if (outcome->state == store::job_state::queued) {
        dispatch_wakeup_.notify_all();
    }
}

void engine::forget(const std::shared_ptr<running_job>& rj) {
    {
        std::lock_guard lock(running_mutex_);
        // A newer attempt of the same job may have been claimed meanwhile: leave it.
        auto it = running_jobs_.find(rj->claimed.job.id);
        if (it != running_jobs_.end() && it->second == rj) {
            running_jobs_.erase(it);
        }
    }
    // A freed slot matters to the dispatcher only if it had stopped claiming for lack of one.
    if (running_.fetch_sub(1) == options_.concurrency) {
        dispatch_wakeup_.notify_all();
    }
}

void engine::cancel_running(const std::string& id, int attempt) {
    std::shared_ptr<running_job> rj;
    {
        std::lock_guard lock(running_mutex_);
        auto it = running_jobs_.find(id);
        if (it == running_jobs_.end() || it->second->claimed.job.attempts != attempt) {
            return;
        }
        rj = it->second;
    }
    net::post(rj->strand, [rj] {
        rj->cancelled = true;
        rj->signal.emit(net::cancellation_type::terminal);
    });
}

net::awaitable<result<store::submitted>> engine::submit(const json::value& body) {
    const unix_ms now = clock_.now();
    auto spec = parse_submission(body, types_, now);
    if (!spec) {
        co_return spec.error();
    }
    std::vector<store::new_job> specs;
    specs.push_back(std::move(*spec));
    auto created = co_await db_.create_jobs(std::move(specs), now);
    if (!created) {
        co_return created.error();
    }
    dispatch_wakeup_.notify_all();
    remote_wakeup_.notify_all();
    co_return std::move(created->front());
}

net::awaitable<result<std::vector<store::submitted>>> engine::submit_batch(const json::value& body
) {
    const auto* jobs = body.is_object() ? body.get_object().if_contains("jobs") : nullptr;
    if (!jobs || !jobs->is_array()) {
        co_return fail(errc::bad_request, "a batch must be an object with a 'jobs' array");
    }
    const auto& items = jobs->get_array();
    if (items.empty() || items.size() > max_batch_size) {
        co_return fail(errc::bad_request, "'jobs' must hold 1 to 1000 submissions");
    }
    const unix_ms now = clock_.now();
    std::vector<store::new_job> specs;
    specs.reserve(items.size());
    for (std::size_t idx = 0; idx < items.size(); ++idx) {
        auto spec = parse_submission(items[idx], types_, now);
        if (!spec) {
            auto e = spec.error();
            e.message = "jobs[" + std::to_string(idx) + "]: " + e.message;
            co_return e;
        }
        specs.push_back(std::move(*spec));
    }
    auto created = co_await db_.create_jobs(std::move(specs), now);
    if (created) {
        dispatch_wakeup_.notify_all();
        remote_wakeup_.notify_all();
    }
    co_return created;
}

unix_ms engine::now() const {
    return clock_.now();
}

net::awaitable<result<store::turn>> engine::start_turn(
    std::string conversation_id, std::string content, const json::value& job_body
) {
    const unix_ms now = clock_.now();
    auto spec = parse_submission(job_body, types_, now);
    if (!spec) {
        co_return spec.error();
    }
    store::new_turn t{std::move(conversation_id), std::move(content), std::move(*spec)};
    auto started = co_await db_.start_turn(std::move(t), now);
    if (started) {
        dispatch_wakeup_.notify_all();
        remote_wakeup_.notify_all();
    }
    co_return started;
}

net::awaitable<result<void>> engine::delete_conversation(std::string id) {
    auto found = co_await db_.find_conversation(id);
    if (!found) {
        co_return found.error();
    }
    auto deleted = co_await db_.delete_conversation(id, clock_.now());
    if (deleted && !found->last_job_id.empty()) {
        auto j = co_await db_.find_job(found->last_job_id);
        if (j && j->state == store::job_state::cancelled && j->lease_owner == options_.node_id) {
            cancel_running(j->id, j->attempts);
        }
    }
    co_return deleted;
}

net::awaitable<result<store::job>> engine::find(std::string id) {
    co_return co_await db_.find_job(std::move(id));
}

net::awaitable<store::job_page> engine::list(store::job_filter filter) {
    co_return co_await db_.list_jobs(std::move(filter));
}

net::awaitable<store::job_counts> engine::counts() {
    co_return co_await db_.count_jobs();
}

net::awaitable<std::vector<store::job_group_counts>> engine::counts_by_queue_and_type() {
    co_return co_await db_.count_jobs_by_queue_and_type();
}

net::awaitable<result<store::job>> engine::cancel(std::string id) {
    auto cancelled = co_await db_.cancel_job(id, clock_.now());
    if (cancelled && cancelled->lease_owner == options_.node_id) {
        cancel_running(id, cancelled->attempts);
    }
    co_return cancelled;
}

net::awaitable<result<store::job>> engine::retry(std::string id) {
    auto retried = co_await db_.retry_job(std::move(id), clock_.now());
    if (retried) {
        dispatch_wakeup_.notify_all();
        remote_wakeup_.notify_all();
    }
    co_return retried;
}

net::awaitable<result<std::vector<store::claimed_job>>> engine::claim(remote_claim request) {
    if (request.worker.empty() || request.worker.size() > max_worker_name) {
        co_return fail(errc::bad_request, "'worker' must be a string of 1-200 characters");
    }
    if (request.worker == options_.node_id) {
        co_return fail(errc::bad_request, "'worker' may not be this node's own id");
    }
    if (request.types.empty()) {
        co_return fail(errc::bad_request, "'types' must name at least one job type");
    }
    std::vector<std::pair<std::string, int>> limits;
    for (const auto& name : request.types) {
        const auto* type = types_.find(name);
        if (!type || type->exec != executor::remote) {
            co_return fail(
                errc::unknown_job_type, "job type '" + name + "' is not served by remote workers"
            );
        }
        if (type->concurrency > 0) {
            limits.emplace_back(name, type->concurrency);
        }
    }
    if (request.max < 1 || request.max > max_claim) {
        co_return fail(errc::bad_request, "'max' must be between 1 and 1000");
    }
    if (request.wait < milliseconds(0) || request.wait > max_claim_wait) {
        co_return fail(errc::bad_request, "'wait_s' must be between 0 and 60");
    }
    const unix_ms lease_ms = request.lease_ms == 0 ? options_.remote_lease_ms : request.lease_ms;
    if (lease_ms < 1000 || lease_ms > max_lease_ms) {
        co_return fail(errc::bad_request, "'lease_s' must be between 1 and 3600");
    }
    const auto deadline = std::chrono::steady_clock::now() + request.wait;
    for (;;) {
        const auto seen = remote_wakeup_.generation();
        store::claim_request claim{
            request.worker,
            request.types,
            limits,
            types_.queue_limits(),
            request.max,
            clock_.now(),
            lease_ms};
        auto claimed = co_await db_.claim_jobs(std::move(claim));
        for (const auto& c : claimed) {
            observe_claim(c.job);
        }
        const auto remaining =
            std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
        if (!claimed.empty() || stopping_ || remaining <= milliseconds(0)) {
            co_return claimed;
        }
        co_await remote_wakeup_.wait(
            seen, std::min(remaining, milliseconds(options_.idle_poll_ms))
        );
    }
}

net::awaitable<result<store::lease_info>> engine::heartbeat(
    std::string id, std::string token, std::string progress
) {
    co_await deltas_.flush(id);  // a failure here shows in the heartbeat's own answer
    co_return co_await db_.heartbeat(
        std::move(id), std::move(token), clock_.now(), options_.remote_lease_ms, std::move(progress)
    );
}

net::awaitable<result<posted_events>> engine::post_events(
    std::string id, std::string token, std::vector<store::event_spec> events, bool flush
) {
    if (auto invalid = check_event_specs(events)) {
        co_return *invalid;
    }
    // Deltas carry {part, text}; the coalescer adds attempt and at.
    struct delta_text {
        std::string part, text;
    };
    std::vector<std::optional<delta_text>> deltas(events.size());
    for (std::size_t idx = 0; idx < events.size(); ++idx) {
        if (!store::is_delta_type(events[idx].type)) {
            continue;
        }
        boost::system::error_code ec;
        auto data = json::parse(events[idx].data, ec);
        const auto* obj = ec ? nullptr : data.if_object();
        const auto* part = obj != nullptr ? obj->if_contains("part") : nullptr;
        const auto* text = obj != nullptr ? obj->if_contains("text") : nullptr;
        if (part == nullptr || !part->is_string() || part->as_string().empty() ||
            part->as_string().size() > store::max_part_length || text == nullptr ||
            !text->is_string()) {
            co_return fail(
                errc::bad_request,
                "a delta event's data must be {part: string of 1-200 characters, text: string}"
            );
        }
        deltas[idx] = delta_text{std::string(part->as_string()), std::string(text->as_string())};
    }
    posted_events out;
    std::vector<store::event_spec> plain;
    auto append_plain = [&]() -> net::awaitable<result<void>> {
        if (plain.empty()) {
            co_return result<void>{};
        }
        auto written = co_await deltas_.flush(id);  // deltas posted before these go first
        if (!written) {
            co_return written.error();
        }
        auto appended = co_await db_.append_job_events(id, token, std::move(plain), clock_.now());
        plain.clear();
        if (!appended) {
            co_return appended.error();
        }
        out.events.insert(out.events.end(), written->begin(), written->end());
        out.events.insert(out.events.end(), appended->begin(), appended->end());
        co_return result<void>{};
    };
    for (std::size_t idx = 0; idx < events.size(); ++idx) {
        if (!deltas[idx]) {
            plain.push_back(std::move(events[idx]));
            continue;
        }
        auto appended = co_await append_plain();
        if (!appended) {
            co_return appended.error();
        }
        auto added = co_await deltas_.add(
            id, token, events[idx].type, std::move(deltas[idx]->part), std::move(deltas[idx]->text)
        );
        if (!added) {
            co_return added.error();
        }
        ++out.buffered;
    }
    auto appended = co_await append_plain();
    if (!appended) {
        co_return appended.error();
    }
    if (flush && out.buffered > 0) {
        auto written = co_await deltas_.flush(id);
        if (!written) {
            co_return written.error();
        }
        out.events.insert(out.events.end(), written->begin(), written->end());
        out.buffered = 0;
    }
    co_return out;
}

net::awaitable<result<store::step>> engine::save_step(
    std::string id, std::string token, std::string key, std::string value
) {
    if (key.empty() || key.size() > max_event_type * 2) {
        co_return fail(errc::bad_request, "a step key must be 1-200 characters");
    }
    co_await deltas_.flush(id);
    co_return co_await db_.save_step(
        std::move(id), std::move(token), std::move(key), std::move(value), clock_.now()
    );
}

net::awaitable<result<std::vector<store::step>>> engine::steps(std::string id) {
    co_return co_await db_.load_steps(std::move(id));
}

net::awaitable<result<store::job>> engine::complete(
    std::string id, std::string token, std::string result_json
) {
    co_await deltas_.flush(id);
    deltas_.forget(id);
    const unix_ms now = clock_.now();
    auto completed =
        co_await db_.complete_job(std::move(id), std::move(token), std::move(result_json), now);
    if (completed) {
        observe_attempt(*completed, completed->attempts, completed->started_at, now);
    }
    co_return completed;
}

net::awaitable<result<store::job>> engine::fail_attempt(
    std::string id, std::string token, std::string error_json_text, bool retryable
) {
    co_await deltas_.flush(id);
    deltas_.forget(id);
    const unix_ms now = clock_.now();
    auto failed = co_await db_.fail_job(
        std::move(id), std::move(token), std::move(error_json_text), retryable, policy_, now
    );
    if (failed) {
        observe_attempt(*failed, failed->attempts, failed->started_at, now);
    }
    if (failed && failed->state == store::job_state::queued) {
        dispatch_wakeup_.notify_all();
        remote_wakeup_.notify_all();
    }
    co_return failed;
}

net::awaitable<result<std::vector<store::event>>> engine::publish(
    std::string topic, std::vector<store::event_spec> events
) {
    if (!store::is_valid_topic(topic)) {
        co_return fail(
            errc::bad_request, "invalid topic name: segments of [A-Za-z0-9_.-] joined by ':'"
        );
    }
    if (store::is_job_topic(topic)) {
        co_return fail(
            errc::bad_request,
            "job topics are written by their job's worker (POST /v1/jobs/{id}/events)"
        );
    }
    if (auto invalid = check_event_specs(events)) {
        co_return *invalid;
    }
    co_return co_await db_.append_events(std::move(topic), std::move(events), clock_.now());
}

net::awaitable<result<std::vector<store::event>>> engine::events(
    std::string topic, std::int64_t after, std::size_t limit
) {
    co_return co_await db_.read_events(std::move(topic), after, limit);
}

net::awaitable<std::int64_t> engine::last_offset(std::string topic) {
    co_return co_await db_.last_offset(std::move(topic));
}

net::awaitable<result<job_snapshot>> engine::snapshot(std::string id) {
    auto job = co_await db_.find_job(id);
    if (!job) {
        co_return job.error();
    }
    const auto fold = co_await fold_job_events(db_, id, job->attempts);
    job_snapshot out{
        .job = std::move(*job),
        .attempt = fold.attempt(),
        .parts = fold.parts(),
        .offset = fold.offset(),
        .complete = fold.complete(),
        .events = fold.others(),
        .events_truncated = fold.others_truncated(),
    };
    co_return out;
}

}  // namespace conclave::jobs
