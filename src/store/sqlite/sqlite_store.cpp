#include "store/sqlite/sqlite_store.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include <boost/asio/thread_pool.hpp>

#include "core/ids.hpp"
#include "store/job_rules.hpp"
#include "store/records_json.hpp"
#include "store/sqlite/conversation_rows.hpp"
#include "store/sqlite/group_commit.hpp"
#include "store/sqlite/migrations.hpp"
#include "store/sqlite/sqlite_db.hpp"

namespace conclave::store::sqlite {
namespace {

#define CONCLAVE_JOB_COLUMNS                                                                 \
    "seq, id, type, queue, state, priority, payload, result, error, progress, attempts, "    \
    "max_attempts, run_at, timeout_s, backoff_base_ms, backoff_cap_ms, lease_owner, "        \
    "lease_token, lease_expires_at, cancel_requested, idempotency_key, topics, created_at, " \
    "started_at, finished_at, lease_ms"

job read_job(const query& q) {
    job j;
    j.seq = q.int64_at(0);
    j.id = q.text_at(1);
    j.type = q.text_at(2);
    j.queue = q.text_at(3);
    j.state = parse_job_state(q.text_at(4)).value_or(job_state::failed);
    j.priority = static_cast<int>(q.int64_at(5));
    j.payload = q.text_at(6);
    j.result = q.text_at(7);
    j.error = q.text_at(8);
    j.progress = q.text_at(9);
    j.attempts = static_cast<int>(q.int64_at(10));
    j.max_attempts = static_cast<int>(q.int64_at(11));
    j.run_at = q.int64_at(12);
    j.timeout_s = static_cast<int>(q.int64_at(13));
    j.backoff_base_ms = q.int64_at(14);
    j.backoff_cap_ms = q.int64_at(15);
    j.lease_owner = q.text_at(16);
    j.lease_token = q.text_at(17);
    j.lease_expires_at = q.int64_at(18);
    j.cancel_requested = q.int64_at(19) != 0;
    j.idempotency_key = q.text_at(20);
    j.topics = topics_from_text(q.text_at(21));
    j.created_at = q.int64_at(22);
    j.started_at = q.int64_at(23);
    j.finished_at = q.int64_at(24);
    j.lease_ms = q.int64_at(25);
    return j;
}

std::optional<job> load_job(connection& db, const std::string& id) {
    auto q = db.prepare("SELECT " CONCLAVE_JOB_COLUMNS " FROM jobs WHERE id = ?");
    q.bind(id);
    if (!q.step()) {
        return std::nullopt;
    }
    return read_job(q);
}

std::vector<step> load_steps_of(connection& db, const std::string& id) {
    std::vector<step> steps;
    auto q =
        db.prepare("SELECT key, result FROM job_steps WHERE job_id = ? ORDER BY created_at, key");
    q.bind(id);
    while (q.step()) {
        steps.push_back(step{q.text_at(0), q.text_at(1)});
    }
    return steps;
}

// Appends an event of job `j` to its own topic and to each of its extra topics.
void append_job_event(
    write_txn& txn, const job& j, const char* type, const std::string& data, unix_ms now
) {
    txn.append(job_topic(j.id), type, data, now);
    for (const auto& topic : j.topics) {
        txn.append(topic, type, data, now);
    }
}

constexpr int reader_cache_kib = 8 << 10;

// The lease check every worker write goes through (fencing, store/job_rules.hpp).
result<job> leased_job(connection& db, const std::string& id, const std::string& token) {
    return check_lease(load_job(db, id), id, token);
}

// Loads job `id` for a user's move (cancel, retry), allowed only from states `a` or `b`.
// Errors: not_found, invalid_transition.
result<job> job_for_move(
    connection& db, const std::string& id, job_state a, job_state b, const char* moved
) {
    return check_move(load_job(db, id), id, a, b, moved);
}

// Ends the current attempt of active job `j` with `error_text`: retried or failed per `policy`.
void end_attempt(
    write_txn& txn,
    job& j,
    std::string error_text,
    bool retryable,
    const retry_policy& policy,
    unix_ms now
) {
    j.error = std::move(error_text);
    const auto retry_at = policy(j, retryable, now);
    if (retry_at) {
        txn.db()
            .prepare(
                "UPDATE jobs SET state = 'queued', run_at = ?, error = ?, lease_owner = NULL, "
                "lease_token = NULL, lease_expires_at = NULL WHERE seq = ?"
            )
            .bind(*retry_at, j.error, j.seq)
            .run();
        j.state = job_state::queued;
        j.run_at = *retry_at;
        append_job_event(txn, j, "job.retrying", retrying_data(j, *retry_at), now);
    } else {
        txn.db()
            .prepare(
                "UPDATE jobs SET state = 'failed', error = ?, finished_at = ?, lease_owner = NULL, "
                "lease_token = NULL, lease_expires_at = NULL WHERE seq = ?"
            )
            .bind(j.error, now, j.seq)
            .run();
        j.state = job_state::failed;
        j.finished_at = now;
        append_job_event(txn, j, "job.failed", failed_data(j), now);
        end_turn(txn, j, now);
    }
    j.lease_owner.clear();
    j.lease_token.clear();
    j.lease_expires_at = 0;
}

class sqlite_store final : public store {
public:
    explicit sqlite_store(const sqlite_options& options)
        : path_(options.path),
          writer_(options.path, options.max_batch),
          readers_(options.reader_threads) {}

    ~sqlite_store() override { readers_.join(); }

    void set_commit_listener(commit_listener listener) override {
        writer_.set_commit_listener(std::move(listener));
    }

    net::awaitable<result<std::vector<submitted>>> create_jobs(
        std::vector<new_job> specs, unix_ms now
    ) override {
        const bool keyed = std::any_of(specs.begin(), specs.end(), [](const new_job& spec) {
            return !spec.idempotency_key.empty();
        });
        auto op = [specs = std::move(specs), now](write_txn& txn) {
            std::vector<submitted> out;
            out.reserve(specs.size());
            for (const auto& spec : specs) {
                out.push_back(create_one(txn, spec, now));
            }
            return out;
        };
        // Only an idempotency conflict can refuse a submission half-way, and then the jobs
        // before it in the batch must be undone: that needs a savepoint.
        const auto mode = keyed ? writer::mode::with_savepoint : writer::mode::plain;
        co_return co_await write_result<std::vector<submitted>>(std::move(op), mode);
    }

    net::awaitable<result<job>> find_job(std::string id) override {
        auto op = [id](connection& db) -> result<job> {
            auto j = load_job(db, id);
            if (!j) {
                return job_not_found(id);
            }
            return *j;
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<job_page> list_jobs(job_filter filter) override {
        auto op = [filter](connection& db) {
            const std::int64_t before = filter.before_seq > 0 ? filter.before_seq : INT64_MAX;
            auto q =
                filter.state
                    ? db.prepare("SELECT " CONCLAVE_JOB_COLUMNS
                                 " FROM jobs WHERE state = ?1 AND seq < ?2 "
                                 "AND (?3 IS NULL OR type = ?3) AND (?4 IS NULL OR queue = ?4) "
                                 "ORDER BY seq DESC LIMIT ?5")
                    : db.prepare("SELECT " CONCLAVE_JOB_COLUMNS
                                 " FROM jobs WHERE ?1 IS NULL AND seq < ?2 "
                                 "AND (?3 IS NULL OR type = ?3) AND (?4 IS NULL OR queue = ?4) "
                                 "ORDER BY seq DESC LIMIT ?5");
            if (filter.state) {
                q.bind_one(1, to_string(*filter.state));
            } else {
                q.bind_one(1, nullptr);
            }
            q.bind_one(2, before);
            q.bind_text_or_null(3, filter.type);
            q.bind_text_or_null(4, filter.queue);
            q.bind_one(5, static_cast<std::int64_t>(filter.limit + 1));
            job_page page;
            while (q.step()) {
                page.jobs.push_back(read_job(q));
            }
            if (page.jobs.size() > filter.limit) {
                page.jobs.pop_back();
                page.next_cursor = page.jobs.back().seq;
            }
            return page;
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<job_counts> count_jobs() override {
        auto op = [](connection& db) {
            // One indexed count per state (jobs_state_seq), all from one read snapshot.
            auto count = [&db](const char* state) {
                auto q = db.prepare("SELECT count(*) FROM jobs WHERE state = ?");
                q.bind(state);
                q.step();
                return q.int64_at(0);
            };
            db.exec("BEGIN");
            try {
                job_counts counts{
                    count("queued"),
                    count("active"),
                    count("succeeded"),
                    count("failed"),
                    count("cancelled")};
                db.exec("COMMIT");
                return counts;
            } catch (...) {
                db.exec("ROLLBACK");
                throw;
            }
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<std::vector<job_group_counts>> count_jobs_by_queue_and_type() override {
        auto op = [](connection& db) {
            // A scan of the whole table, counted here: SQLite's GROUP BY would sort every
            // row's key first, in memory (temp_store=MEMORY) — 55 MB with 1.1 M jobs — where
            // this holds one entry per (queue, type). An index on (queue, type, state) would
            // make it a covering-index scan but cost every state change one more b-tree write,
            // and the writer is the bottleneck; callers cache instead (http/api_stats.cpp).
            auto q = db.prepare("SELECT queue, type, state FROM jobs");
            std::map<std::pair<std::string, std::string>, job_counts> counts;
            job_counts* last = nullptr;  // rows of one (queue, type) tend to come together
            std::pair<std::string, std::string> key;
            while (q.step()) {
                auto queue = q.text_at(0);
                auto type = q.text_at(1);
                if (last == nullptr || queue != key.first || type != key.second) {
                    key = {std::move(queue), std::move(type)};
                    last = &counts[key];
                }
                if (auto state = parse_job_state(q.text_at(2))) {
                    last->add(*state, 1);
                }
            }
            std::vector<job_group_counts> groups;
            groups.reserve(counts.size());
            for (auto& [k, c] : counts) {
                groups.push_back(job_group_counts{k.first, k.second, c});
            }
            return groups;
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<std::vector<claimed_job>> claim_jobs(claim_request request) override {
        auto op = [request = std::move(request)](write_txn& txn) { return claim(txn, request); };
        auto task = writer_.submit<std::vector<claimed_job>>(std::move(op));
        co_return co_await std::move(task);
    }

    net::awaitable<result<lease_info>> heartbeat(
        std::string id, std::string token, unix_ms now, unix_ms lease_ms, std::string progress
    ) override {
        auto op = [=](write_txn& txn) -> result<lease_info> {
            auto j = leased_job(txn.db(), id, token);
            if (!j) {
                if (j.error().code == errc::invalid_transition) {
                    return lease_info{0, true};  // cancelled while leased: tell the worker
                }
                return j.error();
            }
            const unix_ms expires = now + (j->lease_ms > 0 ? j->lease_ms : lease_ms);
            if (progress.empty()) {
                txn.db()
                    .prepare("UPDATE jobs SET lease_expires_at = ? WHERE seq = ?")
                    .bind(expires, j->seq)
                    .run();
            } else {
                txn.db()
                    .prepare("UPDATE jobs SET lease_expires_at = ?, progress = ? WHERE seq = ?")
                    .bind(expires, progress, j->seq)
                    .run();
                append_job_event(txn, *j, "job.progress", progress_data(*j, progress), now);
            }
            return lease_info{expires, j->cancel_requested};
        };
        co_return co_await write_result<lease_info>(std::move(op));
    }

    net::awaitable<void> renew_leases(
        std::string owner, std::vector<std::string> ids, unix_ms until
    ) override {
        auto op = [owner = std::move(owner), ids = std::move(ids), until](write_txn& txn) {
            for (const auto& id : ids) {
                txn.db()
                    .prepare(
                        "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND state = 'active' "
                        "AND "
                        "lease_owner = ?"
                    )
                    .bind(until, id, owner)
                    .run();
            }
            return true;
        };
        auto task = writer_.submit<bool>(std::move(op));
        co_await std::move(task);
    }

    net::awaitable<result<job>> complete_job(
        std::string id, std::string token, std::string result_text, unix_ms now
    ) override {
        auto op = [=](write_txn& txn) -> result<job> {
            auto j = leased_job(txn.db(), id, token);
            if (!j) {
                return j.error();
            }
            txn.db()
                .prepare(
                    "UPDATE jobs SET state = 'succeeded', result = ?, finished_at = ?, lease_owner "
                    "= NULL, "
                    "lease_token = NULL, lease_expires_at = NULL WHERE seq = ?"
                )
                .bind(result_text, now, j->seq)
                .run();
            j->state = job_state::succeeded;
            j->result = result_text;
            j->finished_at = now;
            j->lease_owner.clear();
            j->lease_token.clear();
            append_job_event(txn, *j, "job.succeeded", succeeded_data(*j), now);
            end_turn(txn, *j, now);
            return *j;
        };
        co_return co_await write_result<job>(std::move(op));
    }

    net::awaitable<result<job>> fail_job(
        std::string id,
        std::string token,
        std::string error,
        bool retryable,
        retry_policy policy,
        unix_ms now
    ) override {
        auto op = [=](write_txn& txn) -> result<job> {
            auto j = leased_job(txn.db(), id, token);
            if (!j) {
                return j.error();
            }
            end_attempt(txn, *j, error, retryable, policy, now);
            return *j;
        };
        co_return co_await write_result<job>(std::move(op));
    }

    net::awaitable<result<job>> cancel_job(std::string id, unix_ms now) override {
        auto op = [=](write_txn& txn) -> result<job> {
            auto j = job_for_move(txn.db(), id, job_state::queued, job_state::active, "cancelled");
            if (!j) {
                return j.error();
            }
            cancel(txn, *j, now);
            return *j;
        };
        co_return co_await write_result<job>(std::move(op));
    }

    net::awaitable<result<job>> retry_job(std::string id, unix_ms now) override {
        auto op = [=](write_txn& txn) -> result<job> {
            auto j = job_for_move(txn.db(), id, job_state::failed, job_state::cancelled, "retried");
            if (!j) {
                return j.error();
            }
            if (auto reopened = reopen_turn(txn, *j, now); !reopened) {
                return reopened.error();
            }
            txn.db()
                .prepare(
                    "UPDATE jobs SET state = 'queued', attempts = 0, run_at = ?, finished_at = "
                    "NULL, "
                    "cancel_requested = 0, lease_owner = NULL, lease_token = NULL, "
                    "lease_expires_at = NULL "
                    "WHERE seq = ?"
                )
                .bind(now, j->seq)
                .run();
            j->state = job_state::queued;
            j->attempts = 0;
            j->run_at = now;
            j->finished_at = 0;
            j->cancel_requested = false;
            j->lease_owner.clear();
            j->lease_token.clear();
            append_job_event(txn, *j, "job.queued", requeued_data(), now);
            return *j;
        };
        co_return co_await write_result<job>(std::move(op));
    }

    // queued|active job `j` → cancelled (see cancel_job).
    static void cancel(write_txn& txn, job& j, unix_ms now) {
        // An active job keeps its lease token: its worker's next heartbeat is told.
        txn.db()
            .prepare(
                "UPDATE jobs SET state = 'cancelled', cancel_requested = 1, finished_at = ?, "
                "lease_expires_at = NULL WHERE seq = ?"
            )
            .bind(now, j.seq)
            .run();
        const bool was_active = j.state == job_state::active;
        j.state = job_state::cancelled;
        j.cancel_requested = true;
        j.finished_at = now;
        append_job_event(txn, j, "job.cancelled", cancelled_data(j, was_active), now);
        end_turn(txn, j, now);
    }

    net::awaitable<std::vector<job>> expire_leases(
        unix_ms now, unix_ms timeout_grace_ms, retry_policy policy
    ) override {
        auto op = [=](write_txn& txn) {
            std::vector<job> expired;
            {
                auto q = txn.db().prepare("SELECT " CONCLAVE_JOB_COLUMNS
                                          " FROM jobs WHERE state = 'active' AND "
                                          "(lease_expires_at < ?1 OR (timeout_s > 0 AND started_at "
                                          "+ timeout_s * 1000 + ?2 < ?1))");
                q.bind(now, timeout_grace_ms);
                while (q.step()) {
                    expired.push_back(read_job(q));
                }
            }
            for (auto& j : expired) {
                end_attempt(txn, j, expiry_error(j, now), true, policy, now);
            }
            return expired;
        };
        auto task = writer_.submit<std::vector<job>>(std::move(op));
        co_return co_await std::move(task);
    }

    net::awaitable<std::vector<job>> release_owner(
        std::string owner, unix_ms now, retry_policy policy
    ) override {
        auto op = [=](write_txn& txn) {
            std::vector<job> released;
            {
                auto q = txn.db().prepare("SELECT " CONCLAVE_JOB_COLUMNS
                                          " FROM jobs WHERE state = 'active' AND lease_owner = ?");
                q.bind(owner);
                while (q.step()) {
                    released.push_back(read_job(q));
                }
            }
            for (auto& j : released) {
                end_attempt(txn, j, restart_error(), true, policy, now);
            }
            return released;
        };
        auto task = writer_.submit<std::vector<job>>(std::move(op));
        co_return co_await std::move(task);
    }

    net::awaitable<result<std::vector<event>>> append_job_events(
        std::string id, std::string token, std::vector<event_spec> events, unix_ms now
    ) override {
        auto op = [=](write_txn& txn) -> result<std::vector<event>> {
            auto j = leased_job(txn.db(), id, token);
            if (!j) {
                return j.error();
            }
            std::vector<event> out;
            const auto topic = job_topic(id);
            for (const auto& spec : events) {
                out.push_back(txn.append(topic, spec.type, spec.data, now));
                for (const auto& extra : j->topics) {
                    txn.append(extra, spec.type, spec.data, now);
                }
            }
            return out;
        };
        co_return co_await write_result<std::vector<event>>(std::move(op));
    }

    net::awaitable<std::vector<event>> append_events(
        std::string topic, std::vector<event_spec> events, unix_ms now
    ) override {
        auto op = [topic = std::move(topic), events = std::move(events), now](write_txn& txn) {
            std::vector<event> out;
            out.reserve(events.size());
            for (const auto& spec : events) {
                out.push_back(txn.append(topic, spec.type, spec.data, now));
            }
            return out;
        };
        auto task = writer_.submit<std::vector<event>>(std::move(op));
        co_return co_await std::move(task);
    }

    net::awaitable<std::size_t> prune_events(
        std::string prefix, unix_ms older_than, std::int64_t keep, std::size_t limit
    ) override {
        auto op = [=](write_txn& txn) -> std::size_t {
            // Topic names are ASCII below '~', so [prefix, prefix + "~") is every name with it.
            auto q = txn.db().prepare(R"(
                DELETE FROM events WHERE (topic, "offset") IN (
                    SELECT e.topic, e."offset" FROM events e
                    JOIN (SELECT topic, MAX("offset") AS last FROM events
                          WHERE topic >= ?1 AND topic < ?2 GROUP BY topic) t ON e.topic = t.topic
                    WHERE e."offset" < t.last
                      AND ((?3 > 0 AND e.created_at < ?3) OR (?4 > 0 AND e."offset" <= t.last - ?4))
                    LIMIT ?5))");
            q.bind(prefix, prefix + "~", older_than, keep, static_cast<std::int64_t>(limit));
            q.run();
            return static_cast<std::size_t>(txn.db().changes());
        };
        auto task = writer_.submit<std::size_t>(std::move(op));
        co_return co_await std::move(task);
    }

    net::awaitable<result<step>> save_step(
        std::string id, std::string token, std::string key, std::string result_text, unix_ms now
    ) override {
        auto op = [=](write_txn& txn) -> result<step> {
            auto j = leased_job(txn.db(), id, token);
            if (!j) {
                return j.error();
            }
            txn.db()
                .prepare(
                    "INSERT INTO job_steps(job_id, key, result, created_at) VALUES (?, ?, ?, ?) ON "
                    "CONFLICT DO NOTHING"
                )
                .bind(id, key, result_text, now)
                .run();
            auto q = txn.db().prepare("SELECT result FROM job_steps WHERE job_id = ? AND key = ?");
            q.bind(id, key);
            q.step();
            return step{key, q.text_at(0)};
        };
        co_return co_await write_result<step>(std::move(op));
    }

    net::awaitable<result<std::vector<step>>> load_steps(std::string id) override {
        auto op = [id](connection& db) -> result<std::vector<step>> {
            if (!load_job(db, id)) {
                return job_not_found(id);
            }
            return load_steps_of(db, id);
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<std::int64_t> last_offset(std::string topic) override {
        auto op = [topic](connection& db) -> std::int64_t {
            // A primary-key seek: the newest event of the topic (retention keeps it).
            auto q = db.prepare(
                R"(SELECT "offset" FROM events WHERE topic = ? ORDER BY "offset" DESC LIMIT 1)"
            );
            q.bind(topic);
            return q.step() ? q.int64_at(0) : 0;
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<result<std::vector<event>>> read_events(
        std::string topic, std::int64_t after, std::size_t limit
    ) override {
        auto op = [topic, after, limit](connection& db) -> result<std::vector<event>> {
            {
                auto q = db.prepare("SELECT 1 FROM events WHERE topic = ? LIMIT 1");
                q.bind(topic);
                if (!q.step()) {
                    return fail(errc::not_found, "topic " + topic + " has no events");
                }
            }
            std::vector<event> out;
            auto q = db.prepare(
                R"(SELECT "offset", type, data, created_at FROM events WHERE topic = ? AND "offset" > ? ORDER BY "offset" LIMIT ?)"
            );
            q.bind(topic, after, static_cast<std::int64_t>(limit));
            while (q.step()) {
                out.push_back(event{topic, q.int64_at(0), q.text_at(1), q.text_at(2), q.int64_at(3)}
                );
            }
            return out;
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<conversation> create_conversation(
        std::string title, std::string council, unix_ms now
    ) override {
        auto op = [title = std::move(title), council = std::move(council), now](write_txn& txn) {
            return insert_conversation(txn, title, council, now);
        };
        auto task = writer_.submit<conversation>(std::move(op));
        co_return co_await std::move(task);
    }

    net::awaitable<conversation_page> list_conversations(std::size_t limit, std::int64_t before_seq)
        override {
        auto op = [limit, before_seq](connection& db) {
            return select_conversations(db, limit, before_seq);
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<result<conversation>> find_conversation(std::string id) override {
        auto op = [id](connection& db) -> result<conversation> {
            auto c = select_conversation(db, id);
            if (!c) {
                return conversation_not_found(id);
            }
            return *c;
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<result<std::vector<message>>> load_messages(std::string id) override {
        auto op = [id](connection& db) -> result<std::vector<message>> {
            // One read transaction: the messages of the conversation found, not of a later one.
            db.exec("BEGIN");
            try {
                result<std::vector<message>> out = conversation_not_found(id);
                if (select_conversation(db, id)) {
                    out = select_messages(db, id);
                }
                db.exec("COMMIT");
                return out;
            } catch (...) {
                db.exec("ROLLBACK");
                throw;
            }
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<result<void>> delete_conversation(std::string id, unix_ms now) override {
        auto op = [id, now](write_txn& txn) -> result<bool> {
            auto c = select_conversation(txn.db(), id);
            if (!c) {
                return conversation_not_found(id);
            }
            if (!c->last_job_id.empty()) {
                auto j = load_job(txn.db(), c->last_job_id);
                if (j && !is_terminal(j->state)) {
                    cancel(txn, *j, now);
                }
            }
            delete_conversation_rows(txn, *c, now);
            return true;
        };
        auto done = co_await write_result<bool>(std::move(op));
        if (!done) {
            co_return done.error();
        }
        co_return result<void>{};
    }

    net::awaitable<result<turn>> start_turn(new_turn t, unix_ms now) override {
        auto op = [t = std::move(t), now](write_txn& txn) mutable -> result<turn> {
            auto c = select_conversation(txn.db(), t.conversation_id);
            if (!c) {
                return conversation_not_found(t.conversation_id);
            }
            if (c->processing_state == "active") {
                return fail(
                    errc::conversation_busy,
                    "conversation " + c->id + " is already running a council (job " +
                        c->last_job_id + "); wait for it to finish"
                );
            }
            t.job.topics.push_back(conversation_topic(c->id));
            auto created = create_one(txn, t.job, now);
            auto m = insert_user_message(txn, *c, t.content, created.job, now);
            return turn{std::move(m), std::move(created.job)};
        };
        co_return co_await write_result<turn>(std::move(op));
    }

    net::awaitable<result<void>> set_conversation_title(
        std::string id, std::string title, unix_ms now
    ) override {
        auto op = [id, title, now](write_txn& txn) -> result<bool> {
            auto c = select_conversation(txn.db(), id);
            if (!c) {
                return conversation_not_found(id);
            }
            update_title(txn, *c, title, now);
            return true;
        };
        auto done = co_await write_result<bool>(std::move(op));
        if (!done) {
            co_return done.error();
        }
        co_return result<void>{};
    }

private:
    static error conversation_not_found(const std::string& id) {
        return fail(errc::not_found, "conversation " + id + " does not exist");
    }

    static submitted create_one(write_txn& txn, const new_job& spec, unix_ms now) {
        if (!spec.idempotency_key.empty()) {
            auto q =
                txn.db().prepare("SELECT id, request_hash FROM jobs WHERE idempotency_key = ?");
            q.bind(spec.idempotency_key);
            if (q.step()) {
                const std::string existing_id = q.text_at(0);
                if (auto conflict = idempotency_mismatch(spec, existing_id, q.text_at(1))) {
                    throw rejected(*conflict);
                }
                return submitted{*load_job(txn.db(), existing_id), false};
            }
        }
        job j = job_from_spec(spec, now);
        auto insert = txn.db().prepare(
            "INSERT INTO jobs(id, type, queue, state, priority, payload, max_attempts, run_at, "
            "timeout_s, "
            "backoff_base_ms, backoff_cap_ms, idempotency_key, request_hash, topics, created_at) "
            "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        insert.bind(
            j.id, j.type, j.queue, j.priority, j.payload, j.max_attempts, j.run_at, j.timeout_s
        );
        insert.bind_one(9, j.backoff_base_ms);
        insert.bind_one(10, j.backoff_cap_ms);
        insert.bind_text_or_null(11, j.idempotency_key);
        insert.bind_text_or_null(12, spec.request_hash);
        insert.bind_one(13, topics_to_text(j.topics));
        insert.bind_one(14, now);
        insert.run();
        j.seq = txn.db().last_insert_rowid();
        txn.new_topic(job_topic(j.id));
        append_job_event(txn, j, "job.queued", queued_data(j, now), now);
        return submitted{std::move(j), true};
    }

    static std::vector<claimed_job> claim(write_txn& txn, const claim_request& request) {
        auto& db = txn.db();
        std::map<std::string, std::int64_t> active_of_type;
        for (const auto& [type, limit] : request.type_limits) {
            auto q = db.prepare("SELECT count(*) FROM jobs WHERE state = 'active' AND type = ?");
            q.bind(type);
            q.step();
            active_of_type[type] = q.int64_at(0);
        }
        std::map<std::string, std::int64_t> active_in_queue;
        for (const auto& [queue, limit] : request.queue_limits) {
            auto q = db.prepare("SELECT count(*) FROM jobs WHERE state = 'active' AND queue = ?");
            q.bind(queue);
            q.step();
            active_in_queue[queue] = q.int64_at(0);
        }
        auto budget = claim_budget::from(request, active_of_type, active_in_queue);
        std::vector<job> candidates;
        // Each type once: a repeated type would read (and claim) the same rows twice.
        const std::set<std::string> types(request.types.begin(), request.types.end());
        for (const auto& type : types) {
            const std::int64_t fetch = budget.fetch_for(type, request.max);
            if (fetch <= 0) {
                continue;
            }
            auto q = db.prepare("SELECT " CONCLAVE_JOB_COLUMNS
                                " FROM jobs WHERE state = 'queued' AND type = ? AND run_at <= ? "
                                "ORDER BY priority DESC, run_at, seq LIMIT ?");
            q.bind(type, request.now, fetch);
            while (q.step()) {
                candidates.push_back(read_job(q));
            }
        }
        std::vector<claimed_job> out;
        for (auto& j : pick_claims(std::move(candidates), request.max, budget)) {
            start_attempt(j, request, random_token());
            db.prepare(
                  "UPDATE jobs SET state = 'active', attempts = ?, lease_owner = ?, lease_token = "
                  "?, "
                  "lease_expires_at = ?, started_at = ?, cancel_requested = 0, lease_ms = ? WHERE "
                  "seq = ?"
            )
                .bind(
                    j.attempts,
                    j.lease_owner,
                    j.lease_token,
                    j.lease_expires_at,
                    j.started_at,
                    request.lease_ms,
                    j.seq
                )
                .run();
            append_job_event(txn, j, "job.started", started_data(j), request.now);
            auto steps = load_steps_of(db, j.id);
            out.push_back(claimed_job{std::move(j), std::move(steps)});
        }
        return out;
    }

    // Runs a write whose expected failures come back as result errors, including those thrown
    // as `rejected` to roll the write back.
    template <class T, class F>
    net::awaitable<result<T>> write_result(F op, writer::mode mode = writer::mode::plain) {
        try {
            auto task = writer_.submit<result<T>>(std::move(op), mode);
            co_return co_await std::move(task);
        } catch (const rejected& r) {
            co_return r.err();
        }
    }

    template <class F>
    auto read(F fn) -> net::awaitable<std::invoke_result_t<F&, connection&>> {
        auto task = [this, fn = std::move(fn)]() mutable {
            auto conn = acquire_reader();
            auto release = [this, &conn] { release_reader(std::move(conn)); };
            try {
                auto value = fn(*conn);
                release();
                return value;
            } catch (...) {
                release();
                throw;
            }
        };
        auto awaitable = run_on(readers_.get_executor(), std::move(task));
        co_return co_await std::move(awaitable);
    }

    std::unique_ptr<connection> acquire_reader() {
        {
            std::lock_guard lock(readers_mutex_);
            if (!free_readers_.empty()) {
                auto conn = std::move(free_readers_.back());
                free_readers_.pop_back();
                return conn;
            }
        }
        auto conn = std::make_unique<connection>(path_);
        conn->set_cache_kib(reader_cache_kib);
        return conn;
    }

    void release_reader(std::unique_ptr<connection> conn) {
        std::lock_guard lock(readers_mutex_);
        free_readers_.push_back(std::move(conn));
    }

    std::string path_;
    writer writer_;
    net::thread_pool readers_;
    std::mutex readers_mutex_;
    std::vector<std::unique_ptr<connection>> free_readers_;
};

#undef CONCLAVE_JOB_COLUMNS

}  // namespace

std::unique_ptr<store> open_sqlite_store(const sqlite_options& options) {
    migrate_sqlite(options.path);
    return std::make_unique<sqlite_store>(options);
}

int migrate_sqlite(const std::string& path) {
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
        std::filesystem::create_directories(parent);
    }
    connection db(path);
    return migrate(db);
}

}  // namespace conclave::store::sqlite
