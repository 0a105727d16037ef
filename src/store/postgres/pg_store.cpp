#include "store/postgres/pg_store.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <boost/asio/thread_pool.hpp>

#include "core/ids.hpp"
#include "core/logging.hpp"
#include "core/text.hpp"
#include "store/conversations.hpp"
#include "store/job_rules.hpp"
#include "store/postgres/pg_conn.hpp"
#include "store/postgres/pg_conversation_rows.hpp"
#include "store/postgres/pg_group_commit.hpp"
#include "store/postgres/pg_listener.hpp"
#include "store/postgres/pg_migrations.hpp"
#include "store/records_json.hpp"

namespace conclave::store::postgres {
namespace {

#define CONCLAVE_JOB_COLUMNS                                                                 \
    "seq, id, type, queue, state, priority, payload, result, error, progress, attempts, "    \
    "max_attempts, run_at, timeout_s, backoff_base_ms, backoff_cap_ms, lease_owner, "        \
    "lease_token, lease_expires_at, cancel_requested, idempotency_key, topics, created_at, " \
    "started_at, finished_at, lease_ms, events_offset"

// The column of CONCLAVE_JOB_COLUMNS that holds the offset of the newest event on the job's topic.
constexpr int events_offset_column = 26;

// The job of row `row` whose CONCLAVE_JOB_COLUMNS start at column `first`.
job read_job(const rows& r, int row, int first = 0) {
    auto col = [first](int idx) { return first + idx; };
    job j;
    j.seq = r.int64(row, col(0));
    j.id = r.text(row, col(1));
    j.type = r.text(row, col(2));
    j.queue = r.text(row, col(3));
    j.state = parse_job_state(r.text(row, col(4))).value_or(job_state::failed);
    j.priority = static_cast<int>(r.int64(row, col(5)));
    j.payload = r.text(row, col(6));
    j.result = r.text(row, col(7));
    j.error = r.text(row, col(8));
    j.progress = r.text(row, col(9));
    j.attempts = static_cast<int>(r.int64(row, col(10)));
    j.max_attempts = static_cast<int>(r.int64(row, col(11)));
    j.run_at = r.int64(row, col(12));
    j.timeout_s = static_cast<int>(r.int64(row, col(13)));
    j.backoff_base_ms = r.int64(row, col(14));
    j.backoff_cap_ms = r.int64(row, col(15));
    j.lease_owner = r.text(row, col(16));
    j.lease_token = r.text(row, col(17));
    j.lease_expires_at = r.int64(row, col(18));
    j.cancel_requested = r.boolean(row, col(19));
    j.idempotency_key = r.text(row, col(20));
    j.topics = topics_from_text(r.text(row, col(21)));
    j.created_at = r.int64(row, col(22));
    j.started_at = r.int64(row, col(23));
    j.finished_at = r.int64(row, col(24));
    j.lease_ms = r.int64(row, col(25));
    return j;
}

std::vector<job> read_jobs(const rows& r) {
    std::vector<job> out;
    out.reserve(static_cast<std::size_t>(r.size()));
    for (int row = 0; row < r.size(); ++row) {
        out.push_back(read_job(r, row));
    }
    return out;
}

std::optional<job> load_job(connection& db, const std::string& id) {
    auto r = db.exec("SELECT " CONCLAVE_JOB_COLUMNS " FROM jobs WHERE id = $1", id);
    if (r.empty()) {
        return std::nullopt;
    }
    return read_job(r, 0);
}

// The job of row `row`, read with its row locked: the transaction holds the job's topic (see
// write_txn::hold_topic).
job held_job(write_txn& txn, const rows& r, int row) {
    auto j = read_job(r, row);
    txn.hold_topic(job_topic(j.id), r.int64(row, events_offset_column));
    return j;
}

std::vector<job> held_jobs(write_txn& txn, const rows& r) {
    std::vector<job> out;
    out.reserve(static_cast<std::size_t>(r.size()));
    for (int row = 0; row < r.size(); ++row) {
        out.push_back(held_job(txn, r, row));
    }
    return out;
}

// The job, its row locked until the batch commits: every write that changes a job reads it
// this way, so two nodes never both act on the same state of it.
std::optional<job> lock_job(write_txn& txn, const std::string& id) {
    auto r =
        txn.db().exec("SELECT " CONCLAVE_JOB_COLUMNS " FROM jobs WHERE id = $1 FOR UPDATE", id);
    if (r.empty()) {
        return std::nullopt;
    }
    return held_job(txn, r, 0);
}

// Locks the rows of the extra topics of every job in `jobs` at once (a write about to append
// to all; their own topics are held through their rows).
template <class Jobs, class Get>
void lock_topics_of(write_txn& txn, const Jobs& jobs, Get get) {
    std::vector<std::string> topics;
    for (const auto& item : jobs) {
        const job& j = get(item);
        topics.insert(topics.end(), j.topics.begin(), j.topics.end());
    }
    txn.lock_topics(std::move(topics));
}

// Appends an event of job `j` to its own topic and to each of its extra topics, having locked
// the latter's rows in name order: two writes to jobs sharing topics in another order do not
// deadlock. `stored` is the events_offset the write's statement has just written into the
// job's row (one more than it held): the event on the job's topic must take that offset.
void append_job_event(
    write_txn& txn,
    const job& j,
    const char* type,
    const std::string& data,
    unix_ms now,
    std::int64_t stored
) {
    if (j.topics.size() > 1) {
        txn.lock_topics(j.topics);
    }
    const auto topic = job_topic(j.id);
    if (const auto& e = txn.append(topic, type, data, now); e.offset != stored) {
        throw std::logic_error(
            "job " + j.id + " stored offset " + std::to_string(stored) + " for event " +
            std::to_string(e.offset)
        );
    }
    txn.stored_on_row(topic);
    for (const auto& extra : j.topics) {
        txn.append(extra, type, data, now);
    }
}

result<job> leased_job(write_txn& txn, const std::string& id, const std::string& token) {
    return check_lease(lock_job(txn, id), id, token);
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
        auto r = txn.db().exec(
            "UPDATE jobs SET state = 'queued', run_at = $1, error = $2, lease_owner = NULL, "
            "lease_token = NULL, lease_expires_at = NULL, events_offset = events_offset + 1 "
            "WHERE seq = $3 RETURNING events_offset",
            *retry_at,
            j.error,
            j.seq
        );
        const auto stored = r.int64(0, 0);
        j.state = job_state::queued;
        j.run_at = *retry_at;
        append_job_event(txn, j, "job.retrying", retrying_data(j, *retry_at), now, stored);
        txn.jobs_queued();
    } else {
        auto r = txn.db().exec(
            "UPDATE jobs SET state = 'failed', error = $1, finished_at = $2, lease_owner = NULL, "
            "lease_token = NULL, lease_expires_at = NULL, events_offset = events_offset + 1 "
            "WHERE seq = $3 RETURNING events_offset",
            j.error,
            now,
            j.seq
        );
        const auto stored = r.int64(0, 0);
        j.state = job_state::failed;
        j.finished_at = now;
        append_job_event(txn, j, "job.failed", failed_data(j), now, stored);
        end_turn(txn, j, now);
    }
    j.lease_owner.clear();
    j.lease_token.clear();
    j.lease_expires_at = 0;
}

// The completions (active → succeeded) of a batch, run together: one UPDATE moves every job
// whose lease holds (the check is its WHERE clause, so it needs no locking read first: a row
// another transaction is changing is waited for and looked at again once that commits), one
// read explains those it left alone, one statement locks the topics, then the events are
// numbered in memory. A job completed twice in one batch (a stale worker and the current one)
// starts a new group: the second completion reads what the first wrote.
class completions final : public write_txn::deferred_group {
public:
    using outcome = std::shared_ptr<result<job>>;

    // The completion's outcome, filled in when the group runs (before the batch commits).
    outcome add(std::string id, std::string token, std::string result_text, unix_ms now) {
        auto out = std::make_shared<result<job>>(job{});
        ids_.insert(id);
        entries_.push_back(entry{std::move(id), std::move(token), std::move(result_text), now, out}
        );
        return out;
    }

    bool has(const std::string& id) const { return ids_.contains(id); }

    void run(write_txn& txn) override {
        auto& db = txn.db();
        // In id order: two batches completing overlapping jobs tend to lock them in the same
        // order (a deadlock, should the plan visit them otherwise, runs the batch again).
        std::sort(entries_.begin(), entries_.end(), [](const entry& a, const entry& b) {
            return a.id < b.id;
        });
        std::vector<std::string> ids, tokens, results;
        std::vector<std::int64_t> times;
        for (const auto& e : entries_) {
            ids.push_back(e.id);
            tokens.push_back(e.token);
            results.push_back(e.result_text);
            times.push_back(e.now);
        }
        std::unordered_map<std::string, job> moved;
        auto r = db.exec(
            "UPDATE jobs SET state = 'succeeded', result = c.c_result, finished_at = c.c_finished, "
            "lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, "
            "events_offset = events_offset + 1 "
            "FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) "
            "AS c(c_id, c_token, c_result, c_finished) "
            "WHERE jobs.id = c.c_id AND jobs.state = 'active' AND jobs.lease_token = c.c_token "
            "RETURNING " CONCLAVE_JOB_COLUMNS,
            ids,
            tokens,
            results,
            times
        );
        std::unordered_map<std::string, std::int64_t> stored;  // the job's new events_offset
        for (int row = 0; row < r.size(); ++row) {
            auto j = read_job(r, row);
            const auto offset = r.int64(row, events_offset_column);
            txn.hold_topic(job_topic(j.id), offset - 1);  // the row is locked: it was updated
            stored.emplace(j.id, offset);
            auto id = j.id;
            moved.emplace(std::move(id), std::move(j));
        }
        std::unordered_map<std::string, job> refused;  // why: read as they are now
        if (moved.size() < entries_.size()) {
            std::vector<std::string> missing;
            for (const auto& e : entries_) {
                if (!moved.contains(e.id)) {
                    missing.push_back(e.id);
                }
            }
            auto left = db.exec(
                "SELECT " CONCLAVE_JOB_COLUMNS " FROM jobs WHERE id = ANY($1::text[])", missing
            );
            for (int row = 0; row < left.size(); ++row) {
                auto j = read_job(left, row);
                auto id = j.id;
                refused.emplace(std::move(id), std::move(j));
            }
        }
        std::vector<const job*> done;
        for (auto& e : entries_) {
            if (auto it = moved.find(e.id); it != moved.end()) {
                *e.out = std::move(it->second);
                done.push_back(&**e.out);
                continue;
            }
            auto it = refused.find(e.id);
            auto checked = check_lease(
                it == refused.end() ? std::nullopt : std::optional<job>(std::move(it->second)),
                e.id,
                e.token
            );
            *e.out = checked
                         ? result<job>(fail(
                               errc::lease_lost, "lease token for job " + e.id + " is not current"
                           ))
                         : result<job>(checked.error());
        }
        if (done.empty()) {
            return;
        }
        lock_topics_of(txn, done, [](const job* j) -> const job& { return *j; });
        for (const job* j : done) {
            append_job_event(
                txn, *j, "job.succeeded", succeeded_data(*j), j->finished_at, stored.at(j->id)
            );
            end_turn(txn, *j, j->finished_at);
        }
    }

private:
    struct entry {
        std::string id;
        std::string token;
        std::string result_text;
        unix_ms now;
        outcome out;
    };
    std::vector<entry> entries_;
    std::unordered_set<std::string> ids_;  // of entries_ (a batch holds thousands)
};

// queued|active job `j` (its row locked) → cancelled (see store::cancel_job).
void cancel(write_txn& txn, job& j, unix_ms now) {
    // An active job keeps its lease token: its worker's next heartbeat is told.
    auto r = txn.db().exec(
        "UPDATE jobs SET state = 'cancelled', cancel_requested = true, finished_at = $1, "
        "lease_expires_at = NULL, events_offset = events_offset + 1 WHERE seq = $2 RETURNING "
        "events_offset",
        now,
        j.seq
    );
    const auto stored = r.int64(0, 0);
    const bool was_active = j.state == job_state::active;
    j.state = job_state::cancelled;
    j.cancel_requested = true;
    j.finished_at = now;
    append_job_event(txn, j, "job.cancelled", cancelled_data(j, was_active), now, stored);
    end_turn(txn, j, now);
}

// Creates the jobs of `specs` (or finds those whose idempotency key is known) with one
// multi-row INSERT. Throws rejected on an idempotency conflict (the caller's savepoint undoes
// the others).
std::vector<submitted> create_all(write_txn& txn, const std::vector<new_job>& specs, unix_ms now) {
    auto& db = txn.db();
    std::map<std::string, std::pair<std::string, job>> existing;  // key → (hash, job)
    {
        std::vector<std::string> keys;
        for (const auto& spec : specs) {
            if (!spec.idempotency_key.empty()) {
                keys.push_back(spec.idempotency_key);
            }
        }
        if (!keys.empty()) {
            auto r = db.exec(
                "SELECT request_hash, " CONCLAVE_JOB_COLUMNS
                " FROM jobs WHERE idempotency_key = ANY($1::text[])",
                keys
            );
            for (int row = 0; row < r.size(); ++row) {
                auto j = read_job(r, row, 1);
                auto key = j.idempotency_key;
                existing.emplace(std::move(key), std::make_pair(r.text(row, 0), std::move(j)));
            }
        }
    }
    std::vector<submitted> out;
    out.reserve(specs.size());
    std::vector<std::size_t> fresh;  // indexes into `out` of the jobs to insert
    std::map<std::string, std::pair<std::size_t, std::string>> fresh_by_key;  // → (index, hash)
    std::vector<std::pair<std::size_t, std::size_t>> repeats;  // (index, index of its original)
    for (const auto& spec : specs) {
        const auto& key = spec.idempotency_key;
        if (!key.empty()) {
            if (auto it = existing.find(key); it != existing.end()) {
                const auto& [hash, j] = it->second;
                if (auto conflict = idempotency_mismatch(spec, j.id, hash)) {
                    throw rejected(*conflict);
                }
                out.push_back(submitted{j, false});
                continue;
            }
            // The same key twice in one call: the second finds the first, as on SQLite.
            if (auto it = fresh_by_key.find(key); it != fresh_by_key.end()) {
                const auto& [index, hash] = it->second;
                if (auto conflict = idempotency_mismatch(spec, out[index].job.id, hash)) {
                    throw rejected(*conflict);
                }
                repeats.emplace_back(out.size(), index);
                out.push_back(submitted{job{}, false});
                continue;
            }
            fresh_by_key.emplace(key, std::make_pair(out.size(), spec.request_hash));
        }
        fresh.push_back(out.size());
        out.push_back(submitted{job_from_spec(spec, now), true});
    }
    if (fresh.empty()) {
        return out;
    }

    std::vector<std::string> ids, types, queues, payloads, keys, hashes, topics;
    std::vector<int> priorities, max_attempts, timeouts;
    std::vector<std::int64_t> run_ats, bases, caps;
    for (auto idx : fresh) {  // `out` holds one entry per spec, in order
        const auto& j = out[idx].job;
        ids.push_back(j.id);
        types.push_back(j.type);
        queues.push_back(j.queue);
        priorities.push_back(j.priority);
        payloads.push_back(j.payload);
        max_attempts.push_back(j.max_attempts);
        run_ats.push_back(j.run_at);
        timeouts.push_back(j.timeout_s);
        bases.push_back(j.backoff_base_ms);
        caps.push_back(j.backoff_cap_ms);
        keys.push_back(j.idempotency_key);
        hashes.push_back(specs[idx].request_hash);
        topics.push_back(topics_to_text(j.topics));
    }
    // One statement for the whole batch; rows take their seq in submission order.
    auto inserted = db.exec(
        R"(INSERT INTO jobs(id, type, queue, state, priority, payload, max_attempts, run_at,
                            timeout_s, backoff_base_ms, backoff_cap_ms, idempotency_key,
                            request_hash, topics, created_at, events_offset)
           SELECT s.id, s.type, s.queue, 'queued', s.priority, s.payload, s.max_attempts,
                  s.run_at, s.timeout_s, s.base, s.cap, NULLIF(s.key, ''), NULLIF(s.hash, ''),
                  s.topics, $14, 1
           FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::int[],
                       $7::bigint[], $8::int[], $9::bigint[], $10::bigint[], $11::text[],
                       $12::text[], $13::text[])
                WITH ORDINALITY AS s(id, type, queue, priority, payload, max_attempts, run_at,
                                     timeout_s, base, cap, key, hash, topics, ord)
           ORDER BY s.ord
           RETURNING id, seq)",
        ids,
        types,
        queues,
        priorities,
        payloads,
        max_attempts,
        run_ats,
        timeouts,
        bases,
        caps,
        keys,
        hashes,
        topics,
        now
    );
    std::unordered_map<std::string, std::int64_t> seq_of;
    for (int row = 0; row < inserted.size(); ++row) {
        seq_of.emplace(inserted.text(row, 0), inserted.int64(row, 1));
    }
    for (auto idx : fresh) {
        out[idx].job.seq = seq_of.at(out[idx].job.id);
    }
    for (const auto& [idx, original] : repeats) {
        out[idx].job = out[original].job;
    }

    // A new job's row is ours until we commit; it holds the offset of its job.queued event.
    std::vector<std::string> extra_topics;
    for (auto idx : fresh) {
        txn.hold_topic(job_topic(out[idx].job.id), 0);
        const auto& extra = out[idx].job.topics;
        extra_topics.insert(extra_topics.end(), extra.begin(), extra.end());
    }
    txn.lock_topics(std::move(extra_topics));
    for (auto idx : fresh) {
        const auto& j = out[idx].job;
        append_job_event(txn, j, "job.queued", queued_data(j, now), now, 1);
    }
    txn.jobs_queued();
    return out;
}

std::vector<claimed_job> claim(write_txn& txn, const claim_request& request) {
    auto& db = txn.db();
    std::map<std::string, std::int64_t> active_of_type;
    std::map<std::string, std::int64_t> active_in_queue;
    if (!request.type_limits.empty() || !request.queue_limits.empty()) {
        // Counting the active jobs and claiming must be one step across nodes: the lock is
        // held until COMMIT, so the next limited claim (on any node) counts ours.
        db.exec(
            "SELECT pg_advisory_xact_lock(hashtext('conclave.claims'), hashtext(current_schema()))"
        );
        std::vector<std::string> limited_types;
        std::vector<std::string> limited_queues;
        for (const auto& limit : request.type_limits) {
            limited_types.push_back(limit.first);
        }
        for (const auto& limit : request.queue_limits) {
            limited_queues.push_back(limit.first);
        }
        auto r = db.exec(
            "SELECT type, queue, count(*) FROM jobs WHERE state = 'active' AND (type = "
            "ANY($1::text[]) OR queue = ANY($2::text[])) GROUP BY type, queue",
            limited_types,
            limited_queues
        );
        for (int row = 0; row < r.size(); ++row) {
            active_of_type[r.text(row, 0)] += r.int64(row, 2);
            active_in_queue[r.text(row, 1)] += r.int64(row, 2);
        }
    }
    auto budget = claim_budget::from(request, active_of_type, active_in_queue);
    // Each type once: a repeated type would read (and claim) the same rows twice.
    const std::set<std::string> distinct(request.types.begin(), request.types.end());
    std::vector<std::string> types;
    std::vector<std::int64_t> fetches;
    for (const auto& type : distinct) {
        if (const auto fetch = budget.fetch_for(type, request.max); fetch > 0) {
            types.push_back(type);
            fetches.push_back(fetch);
        }
    }
    if (types.empty()) {
        return {};
    }
    // Per type, the first queued jobs in claim order (an index walk each), skipping those
    // another transaction holds: two nodes never wait for each other here, nor take the same
    // job. Candidates not picked below stay locked (skipped by others) until COMMIT.
    auto candidates = db.exec(
        "SELECT j.* FROM unnest($1::text[], $2::bigint[]) AS w(type, n) CROSS JOIN LATERAL ("
        "SELECT " CONCLAVE_JOB_COLUMNS
        " FROM jobs WHERE state = 'queued' AND jobs.type = w.type AND run_at <= $3 "
        "ORDER BY priority DESC, run_at, seq LIMIT w.n FOR UPDATE SKIP LOCKED) AS j",
        types,
        fetches,
        request.now
    );
    // Every candidate's row is locked until COMMIT, picked or not: the batch holds their topics.
    auto picked = pick_claims(held_jobs(txn, candidates), request.max, budget);
    if (picked.empty()) {
        return {};
    }
    std::vector<std::int64_t> seqs;
    std::vector<std::string> tokens;
    std::vector<std::string> rerun;  // jobs that ran before: they may have recorded steps
    for (auto& j : picked) {
        if (j.started_at != 0) {
            rerun.push_back(j.id);
        }
        start_attempt(j, request, random_token());
        seqs.push_back(j.seq);
        tokens.push_back(j.lease_token);
    }
    auto updated = db.exec(
        "UPDATE jobs SET state = 'active', attempts = jobs.attempts + 1, lease_owner = $3, "
        "lease_token = c.token, lease_expires_at = $4, started_at = $5, cancel_requested = false, "
        "lease_ms = $6, events_offset = jobs.events_offset + 1 FROM unnest($1::bigint[], "
        "$2::text[]) AS c(seq, token) WHERE jobs.seq = c.seq RETURNING jobs.seq, "
        "jobs.events_offset",
        seqs,
        tokens,
        request.owner,
        request.now + request.lease_ms,
        request.now,
        request.lease_ms
    );
    std::unordered_map<std::int64_t, std::int64_t> stored;  // seq → new events_offset
    for (int row = 0; row < updated.size(); ++row) {
        stored.emplace(updated.int64(row, 0), updated.int64(row, 1));
    }
    std::map<std::string, std::vector<step>> steps;
    if (!rerun.empty()) {
        auto r = db.exec(
            "SELECT job_id, key, result FROM job_steps WHERE job_id = ANY($1::text[]) ORDER BY "
            "job_id, created_at, key",
            rerun
        );
        for (int row = 0; row < r.size(); ++row) {
            steps[r.text(row, 0)].push_back(step{r.text(row, 1), r.text(row, 2)});
        }
    }
    lock_topics_of(txn, picked, [](const job& j) -> const job& { return j; });
    std::vector<claimed_job> out;
    out.reserve(picked.size());
    for (auto& j : picked) {
        append_job_event(txn, j, "job.started", started_data(j), request.now, stored.at(j.seq));
        auto found = steps.find(j.id);
        auto job_steps = found != steps.end() ? std::move(found->second) : std::vector<step>{};
        out.push_back(claimed_job{std::move(j), std::move(job_steps)});
    }
    return out;
}

// Runs fn(db) in one read-only snapshot.
template <class F>
auto in_snapshot(connection& db, F fn) -> decltype(fn()) {
    db.exec_script("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    try {
        auto out = fn();
        db.exec_script("COMMIT");
        return out;
    } catch (...) {
        if (!db.broken()) {
            db.exec_script("ROLLBACK");
        }
        throw;
    }
}

// Whether `topic` has had an event (a deleted event leaves its topic's row behind).
bool has_events(connection& db, const std::string& topic) {
    auto r = is_job_topic(topic) ? db.exec(
                                       "SELECT 1 FROM jobs WHERE id = $1 AND events_offset > 0",
                                       std::string(job_of_topic(topic))
                                   )
                                 : db.exec("SELECT 1 FROM topics WHERE name = $1", topic);
    return !r.empty();
}

error conversation_not_found(const std::string& id) {
    return fail(errc::not_found, "conversation " + id + " does not exist");
}

class postgres_store final : public store {
public:
    postgres_store(const postgres_options& options, const std::string& node_id)
        : url_(options.url),
          schema_(options.schema),
          node_id_(node_id),
          readers_(static_cast<std::size_t>(std::max(1, options.reader_connections))) {
        const int lanes = std::max(1, options.writer_connections);
        for (int idx = 0; idx < lanes; ++idx) {
            writer_options w{options.url, options.schema, node_id, options.max_batch};
            w.commit_order = lanes > 1 ? &commit_order_ : nullptr;
            writers_.push_back(std::make_unique<writer>(std::move(w)));
        }
    }

    ~postgres_store() override { readers_.join(); }

    void set_commit_listener(commit_listener listener) override {
        for (auto& w : writers_) {
            w->set_commit_listener(listener);  // called one commit at a time (commit_order_)
        }
    }

    // Starts this node's LISTEN connection (pg_listener.hpp): other nodes' commits and new
    // jobs reach `listener` as wake-ups, and reachable() follows that connection too. A batch
    // whose COMMIT lost its connection may have committed events the hub never got (this
    // node's own NOTIFYs are skipped): the node catches up as after a lost LISTEN connection.
    void set_cluster_listener(cluster_listener callbacks) override {
        for (auto& w : writers_) {
            w->set_unknown_outcome_listener(callbacks.reconnected);
        }
        listener_ = std::make_unique<listener>(url_, schema_, node_id_, std::move(callbacks));
    }

    bool reachable() const override {
        const bool writing = std::all_of(writers_.begin(), writers_.end(), [](const auto& w) {
            return w->connected();
        });
        return writing && (!listener_ || listener_->connected());
    }

    net::awaitable<result<std::vector<submitted>>> create_jobs(
        std::vector<new_job> specs, unix_ms now
    ) override {
        const bool keyed = std::any_of(specs.begin(), specs.end(), [](const new_job& spec) {
            return !spec.idempotency_key.empty();
        });
        auto op = [specs = std::move(specs), now](write_txn& txn) {
            return create_all(txn, specs, now);
        };
        // Only an idempotency conflict can refuse a submission half-way, and then the jobs
        // before it in the batch must be undone: that needs a savepoint.
        const auto mode = keyed ? writer::mode::with_savepoint : writer::mode::plain;
        co_return co_await write_result<std::vector<submitted>>(any_lane(), std::move(op), mode);
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
            const auto limit = static_cast<std::int64_t>(filter.limit + 1);
            const text_or_null type{filter.type};
            const text_or_null queue{filter.queue};
            auto r = filter.state
                         ? db.exec(
                               "SELECT " CONCLAVE_JOB_COLUMNS
                               " FROM jobs WHERE state = $1 AND seq < $2 AND ($3::text IS NULL "
                               "OR type = $3) AND ($4::text IS NULL OR queue = $4) ORDER BY seq "
                               "DESC LIMIT $5",
                               to_string(*filter.state),
                               before,
                               type,
                               queue,
                               limit
                           )
                         : db.exec(
                               "SELECT " CONCLAVE_JOB_COLUMNS
                               " FROM jobs WHERE seq < $1 AND ($2::text IS NULL OR type = $2) "
                               "AND ($3::text IS NULL OR queue = $3) ORDER BY seq DESC LIMIT $4",
                               before,
                               type,
                               queue,
                               limit
                           );
            job_page page;
            page.jobs = read_jobs(r);
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
            // One statement, one snapshot; each count an index scan of jobs_state_seq.
            auto r = db.exec(
                "SELECT (SELECT count(*) FROM jobs WHERE state = 'queued'), (SELECT count(*) FROM "
                "jobs WHERE state = 'active'), (SELECT count(*) FROM jobs WHERE state = "
                "'succeeded'), (SELECT count(*) FROM jobs WHERE state = 'failed'), (SELECT "
                "count(*) FROM jobs WHERE state = 'cancelled')"
            );
            return job_counts{
                r.int64(0, 0), r.int64(0, 1), r.int64(0, 2), r.int64(0, 3), r.int64(0, 4)};
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<std::vector<job_group_counts>> count_jobs_by_queue_and_type() override {
        auto op = [](connection& db) {
            // A scan of the whole table, as on SQLite; callers cache (http/api_stats.cpp).
            auto r = db.exec(
                "SELECT queue, type, state, count(*) FROM jobs GROUP BY queue, type, state ORDER "
                "BY queue, type"
            );
            std::vector<job_group_counts> groups;
            for (int row = 0; row < r.size(); ++row) {
                auto queue = r.text(row, 0);
                auto type = r.text(row, 1);
                if (groups.empty() || groups.back().queue != queue || groups.back().type != type) {
                    groups.push_back(job_group_counts{std::move(queue), std::move(type), {}});
                }
                if (auto state = parse_job_state(r.text(row, 2))) {
                    groups.back().counts.add(*state, r.int64(row, 3));
                }
            }
            return groups;
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<std::vector<claimed_job>> claim_jobs(claim_request request) override {
        auto op = [request = std::move(request)](write_txn& txn) { return claim(txn, request); };
        auto task = any_lane().submit<std::vector<claimed_job>>(std::move(op));
        co_return co_await std::move(task);
    }

    net::awaitable<result<lease_info>> heartbeat(
        std::string id, std::string token, unix_ms now, unix_ms lease_ms, std::string progress
    ) override {
        auto op = [=](write_txn& txn) -> result<lease_info> {
            auto j = leased_job(txn, id, token);
            if (!j) {
                if (j.error().code == errc::invalid_transition) {
                    return lease_info{0, true};  // cancelled while leased: tell the worker
                }
                return j.error();
            }
            const unix_ms expires = now + (j->lease_ms > 0 ? j->lease_ms : lease_ms);
            if (progress.empty()) {
                txn.db().exec(
                    "UPDATE jobs SET lease_expires_at = $1 WHERE seq = $2", expires, j->seq
                );
            } else {
                auto r = txn.db().exec(
                    "UPDATE jobs SET lease_expires_at = $1, progress = $2, events_offset = "
                    "events_offset + 1 WHERE seq = $3 RETURNING events_offset",
                    expires,
                    progress,
                    j->seq
                );
                const auto stored = r.int64(0, 0);
                append_job_event(txn, *j, "job.progress", progress_data(*j, progress), now, stored);
            }
            return lease_info{expires, j->cancel_requested};
        };
        co_return co_await write_result<lease_info>(lane(id), std::move(op));
    }

    net::awaitable<void> renew_leases(
        std::string owner, std::vector<std::string> ids, unix_ms until
    ) override {
        // Each job's through its own lane: on this node only that lane writes its row, so the
        // lanes never wait for each other's row locks (nor deadlock).
        std::vector<std::vector<std::string>> by_lane(writers_.size());
        for (auto& id : ids) {
            by_lane[lane_index(id)].push_back(std::move(id));
        }
        for (std::size_t idx = 0; idx < by_lane.size(); ++idx) {
            if (by_lane[idx].empty()) {
                continue;
            }
            auto op = [owner, ids = std::move(by_lane[idx]), until](write_txn& txn) {
                txn.db().exec(
                    "UPDATE jobs SET lease_expires_at = $1 WHERE id = ANY($2::text[]) AND state = "
                    "'active' AND lease_owner = $3",
                    until,
                    ids,
                    owner
                );
                return true;
            };
            auto task = writers_[idx]->submit<bool>(std::move(op));
            co_await std::move(task);
        }
    }

    net::awaitable<result<job>> complete_job(
        std::string id, std::string token, std::string result_text, unix_ms now
    ) override {
        if (!is_text(id) || !is_text(token) || !is_text(result_text)) {
            // The group's one statement would be refused for it, and the batch with it.
            co_return fail(
                errc::bad_request, "a completion's job id, lease token and result must be text"
            );
        }
        // Joins the batch's group of completions (see `completions`): its outcome is known
        // once the group has run, before the batch commits.
        auto op = [=](write_txn& txn) {
            if (auto* group = &txn.deferred<completions>(); group->has(id)) {
                txn.settle();
            }
            return txn.deferred<completions>().add(id, token, result_text, now);
        };
        auto task = lane(id).submit<completions::outcome>(std::move(op));
        auto outcome = co_await std::move(task);
        co_return std::move(*outcome);
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
            auto j = leased_job(txn, id, token);
            if (!j) {
                return j.error();
            }
            end_attempt(txn, *j, error, retryable, policy, now);
            return *j;
        };
        co_return co_await write_result<job>(lane(id), std::move(op));
    }

    net::awaitable<result<job>> cancel_job(std::string id, unix_ms now) override {
        auto op = [=](write_txn& txn) -> result<job> {
            auto j = check_move(
                lock_job(txn, id), id, job_state::queued, job_state::active, "cancelled"
            );
            if (!j) {
                return j.error();
            }
            cancel(txn, *j, now);
            return *j;
        };
        co_return co_await write_result<job>(lane(id), std::move(op));
    }

    net::awaitable<result<job>> retry_job(std::string id, unix_ms now) override {
        auto op = [=](write_txn& txn) -> result<job> {
            auto j = check_move(
                lock_job(txn, id), id, job_state::failed, job_state::cancelled, "retried"
            );
            if (!j) {
                return j.error();
            }
            if (auto reopened = reopen_turn(txn, *j, now); !reopened) {
                return reopened.error();
            }
            auto r = txn.db().exec(
                "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $1, finished_at = NULL, "
                "cancel_requested = false, lease_owner = NULL, lease_token = NULL, "
                "lease_expires_at = NULL, events_offset = events_offset + 1 WHERE seq = $2 "
                "RETURNING events_offset",
                now,
                j->seq
            );
            const auto stored = r.int64(0, 0);
            j->state = job_state::queued;
            j->attempts = 0;
            j->run_at = now;
            j->finished_at = 0;
            j->cancel_requested = false;
            j->lease_owner.clear();
            j->lease_token.clear();
            append_job_event(txn, *j, "job.queued", requeued_data(), now, stored);
            txn.jobs_queued();
            return *j;
        };
        co_return co_await write_result<job>(lane(id), std::move(op));
    }

    net::awaitable<std::vector<job>> expire_leases(
        unix_ms now, unix_ms timeout_grace_ms, retry_policy policy
    ) override {
        auto op = [=](write_txn& txn) {
            // SKIP LOCKED: a job another transaction is writing (its heartbeat, its completion)
            // is looked at again by the next sweep, when that write has committed.
            auto expired = held_jobs(
                txn,
                txn.db().exec(
                    "SELECT " CONCLAVE_JOB_COLUMNS " FROM jobs WHERE state = 'active' AND "
                    "(lease_expires_at < $1 OR (timeout_s > 0 "
                    "AND started_at + timeout_s::bigint * 1000 + $2 < $1)) ORDER BY seq FOR UPDATE "
                    "SKIP "
                    "LOCKED",
                    now,
                    timeout_grace_ms
                )
            );
            lock_topics_of(txn, expired, [](const job& j) -> const job& { return j; });
            for (auto& j : expired) {
                end_attempt(txn, j, expiry_error(j, now), true, policy, now);
            }
            return expired;
        };
        auto task = any_lane().submit<std::vector<job>>(std::move(op));
        co_return co_await std::move(task);
    }

    net::awaitable<std::vector<job>> release_owner(
        std::string owner, unix_ms now, retry_policy policy
    ) override {
        auto op = [=](write_txn& txn) {
            auto released = held_jobs(
                txn,
                txn.db().exec(
                    "SELECT " CONCLAVE_JOB_COLUMNS " FROM jobs WHERE state = 'active' AND "
                    "lease_owner = $1 ORDER BY seq FOR UPDATE",
                    owner
                )
            );
            lock_topics_of(txn, released, [](const job& j) -> const job& { return j; });
            for (auto& j : released) {
                end_attempt(txn, j, restart_error(), true, policy, now);
            }
            return released;
        };
        auto task = any_lane().submit<std::vector<job>>(std::move(op));
        co_return co_await std::move(task);
    }

    net::awaitable<result<std::vector<event>>> append_job_events(
        std::string id, std::string token, std::vector<event_spec> events, unix_ms now
    ) override {
        auto op = [=](write_txn& txn) -> result<std::vector<event>> {
            auto j = leased_job(txn, id, token);
            if (!j) {
                return j.error();
            }
            std::vector<event> out;
            const auto topic = job_topic(id);
            if (events.empty()) {
                return out;
            }
            txn.lock_topics(j->topics);  // in name order, as append_job_event
            for (const auto& spec : events) {
                out.push_back(txn.append(topic, spec.type, spec.data, now));
                for (const auto& extra : j->topics) {
                    txn.append(extra, spec.type, spec.data, now);
                }
            }
            txn.db().exec(
                "UPDATE jobs SET events_offset = $1 WHERE seq = $2", out.back().offset, j->seq
            );
            txn.stored_on_row(topic);
            return out;
        };
        co_return co_await write_result<std::vector<event>>(lane(id), std::move(op));
    }

    net::awaitable<std::vector<event>> append_events(
        std::string topic, std::vector<event_spec> events, unix_ms now
    ) override {
        auto& to = lane(topic);
        auto op = [topic = std::move(topic), events = std::move(events), now](write_txn& txn) {
            std::vector<event> out;
            out.reserve(events.size());
            for (const auto& spec : events) {
                out.push_back(txn.append(topic, spec.type, spec.data, now));
            }
            return out;
        };
        auto task = to.submit<std::vector<event>>(std::move(op));
        co_return co_await std::move(task);
    }

    net::awaitable<std::size_t> prune_events(
        std::string prefix, unix_ms older_than, std::int64_t keep, std::size_t limit
    ) override {
        auto op = [=](write_txn& txn) -> std::size_t {
            // Topic names are ASCII below '~' and compared in byte order (COLLATE "C"), so
            // [prefix, prefix + "~") is every name with it. A topic's row (a job's topic: its
            // job's row) holds the offset of its newest event, which is never deleted.
            auto r = txn.db().exec(
                R"(DELETE FROM events WHERE (topic, "offset") IN (
                       SELECT e.topic, e."offset" FROM events e
                       LEFT JOIN topics t ON t.name = e.topic
                       LEFT JOIN jobs j ON e.topic >= 'job:' AND e.topic < 'job;'
                                       AND j.id = substr(e.topic, 5)
                       CROSS JOIN LATERAL (SELECT coalesce(t.last_offset, j.events_offset) AS last) n
                       WHERE e.topic >= $1 AND e.topic < $2 AND e."offset" < n.last
                         AND (($3::bigint > 0 AND e.created_at < $3::bigint)
                              OR ($4::bigint > 0 AND e."offset" <= n.last - $4::bigint))
                       LIMIT $5))",
                prefix,
                prefix + "~",
                older_than,
                keep,
                static_cast<std::int64_t>(limit)
            );
            return static_cast<std::size_t>(r.affected());
        };
        auto task = any_lane().submit<std::size_t>(std::move(op));
        co_return co_await std::move(task);
    }

    net::awaitable<result<step>> save_step(
        std::string id, std::string token, std::string key, std::string result_text, unix_ms now
    ) override {
        auto op = [=](write_txn& txn) -> result<step> {
            auto j = leased_job(txn, id, token);
            if (!j) {
                return j.error();
            }
            // The CTE's row is not visible to the second SELECT (one snapshot): whichever
            // exists is the step's result, the first one recorded.
            auto r = txn.db().exec(
                "WITH saved AS (INSERT INTO job_steps(job_id, key, result, created_at) VALUES "
                "($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING result) SELECT result FROM "
                "saved UNION ALL SELECT result FROM job_steps WHERE job_id = $1 AND key = $2",
                id,
                key,
                result_text,
                now
            );
            return step{key, r.text(0, 0)};
        };
        co_return co_await write_result<step>(lane(id), std::move(op));
    }

    net::awaitable<result<std::vector<step>>> load_steps(std::string id) override {
        auto op = [id](connection& db) -> result<std::vector<step>> {
            if (db.exec("SELECT 1 FROM jobs WHERE id = $1", id).empty()) {
                return job_not_found(id);
            }
            auto r = db.exec(
                "SELECT key, result FROM job_steps WHERE job_id = $1 ORDER BY created_at, key", id
            );
            std::vector<step> steps;
            for (int row = 0; row < r.size(); ++row) {
                steps.push_back(step{r.text(row, 0), r.text(row, 1)});
            }
            return steps;
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<std::int64_t> last_offset(std::string topic) override {
        auto op = [topic](connection& db) -> std::int64_t {
            auto r = is_job_topic(topic)
                         ? db.exec(
                               "SELECT events_offset FROM jobs WHERE id = $1",
                               std::string(job_of_topic(topic))
                           )
                         : db.exec("SELECT last_offset FROM topics WHERE name = $1", topic);
            return r.empty() ? 0 : r.int64(0, 0);
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<result<std::vector<event>>> read_events(
        std::string topic, std::int64_t after, std::size_t limit
    ) override {
        auto op = [topic, after, limit](connection& db) -> result<std::vector<event>> {
            auto r = db.exec(
                R"(SELECT "offset", type, data, created_at FROM events WHERE topic = $1 AND "offset" > $2 ORDER BY "offset" LIMIT $3)",
                topic,
                after,
                static_cast<std::int64_t>(limit)
            );
            // A topic has a row from its first event on (a job's topic: its job's row).
            if (r.empty() && !has_events(db, topic)) {
                return fail(errc::not_found, "topic " + topic + " has no events");
            }
            std::vector<event> out;
            out.reserve(static_cast<std::size_t>(r.size()));
            for (int row = 0; row < r.size(); ++row) {
                out.push_back(event{
                    topic, r.int64(row, 0), r.text(row, 1), r.text(row, 2), r.int64(row, 3)});
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
        auto task = any_lane().submit<conversation>(std::move(op));
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
            // One snapshot: the messages of the conversation found, not of a later one.
            return in_snapshot(db, [&]() -> result<std::vector<message>> {
                if (!select_conversation(db, id)) {
                    return conversation_not_found(id);
                }
                return select_messages(db, id);
            });
        };
        co_return co_await read(std::move(op));
    }

    net::awaitable<result<void>> delete_conversation(std::string id, unix_ms now) override {
        auto op = [id, now](write_txn& txn) -> result<bool> {
            auto c = lock_conversation(txn.db(), id);
            if (!c) {
                return conversation_not_found(id);
            }
            if (!c->last_job_id.empty()) {
                auto j = lock_job(txn, c->last_job_id);
                if (j && !is_terminal(j->state)) {
                    cancel(txn, *j, now);
                }
            }
            delete_conversation_rows(txn, *c, now);
            return true;
        };
        auto done = co_await write_result<bool>(lane(id), std::move(op));
        if (!done) {
            co_return done.error();
        }
        co_return result<void>{};
    }

    net::awaitable<result<turn>> start_turn(new_turn t, unix_ms now) override {
        const bool keyed = !t.job.idempotency_key.empty();
        auto& to = lane(t.conversation_id);
        auto op = [t = std::move(t), now](write_txn& txn) -> result<turn> {
            auto c = lock_conversation(txn.db(), t.conversation_id);
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
            // A copy: the write may run again.
            std::vector<new_job> specs{t.job};
            specs.front().topics.push_back(conversation_topic(c->id));
            auto created = create_all(txn, specs, now);
            auto m = insert_user_message(txn, *c, t.content, created.front().job, now);
            return turn{std::move(m), std::move(created.front().job)};
        };
        const auto mode = keyed ? writer::mode::with_savepoint : writer::mode::plain;
        co_return co_await write_result<turn>(to, std::move(op), mode);
    }

    net::awaitable<result<void>> set_conversation_title(
        std::string id, std::string title, unix_ms now
    ) override {
        auto op = [id, title, now](write_txn& txn) -> result<bool> {
            auto c = lock_conversation(txn.db(), id);
            if (!c) {
                return conversation_not_found(id);
            }
            update_title(txn, *c, title, now);
            return true;
        };
        auto done = co_await write_result<bool>(lane(id), std::move(op));
        if (!done) {
            co_return done.error();
        }
        co_return result<void>{};
    }

private:
    // The writer of every write about `key` (a job's id, a topic, a conversation's id): on
    // this node the writes about one thing run in the order they were made, as with a single
    // writer. Writes about different things run on several connections at once, as they would
    // on several nodes.
    std::size_t lane_index(std::string_view key) const {
        return std::hash<std::string_view>{}(key) % writers_.size();
    }
    writer& lane(std::string_view key) { return *writers_[lane_index(key)]; }
    // A writer for a write about nothing in particular (new jobs, claims, sweeps).
    writer& any_lane() { return *writers_[next_lane_++ % writers_.size()]; }

    // Runs a write whose expected failures come back as result errors, including those thrown
    // as `rejected` to roll the write back.
    template <class T, class F>
    net::awaitable<result<T>> write_result(
        writer& lane, F op, writer::mode mode = writer::mode::plain
    ) {
        try {
            auto task = lane.submit<result<T>>(std::move(op), mode);
            co_return co_await std::move(task);
        } catch (const rejected& r) {
            co_return r.err();
        }
    }

    // Runs fn(connection) on a reader thread. Reads are idempotent: when the connection turns
    // out to be lost (a server restart), the idle ones are dropped too and the read runs once
    // more on a new connection. Throws unavailable when the database cannot be reached.
    template <class F>
    auto read(F fn) -> net::awaitable<std::invoke_result_t<F&, connection&>> {
        auto task = [this, fn = std::move(fn)]() mutable {
            for (int attempt = 1;; ++attempt) {
                std::unique_ptr<connection> conn;
                try {
                    conn = acquire_reader();
                    auto value = fn(*conn);
                    release_reader(std::move(conn));
                    return value;
                } catch (const pg_error& e) {
                    if (conn && !conn->broken()) {
                        release_reader(std::move(conn));
                        throw;
                    }
                    drop_idle_readers();
                    if (attempt > 1 || !conn) {
                        throw unavailable(std::string("the database is unreachable: ") + e.what());
                    }
                }
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
        return std::make_unique<connection>(url_, schema_, "conclave " + node_id_ + " reader");
    }

    void release_reader(std::unique_ptr<connection> conn) {
        std::lock_guard lock(readers_mutex_);
        free_readers_.push_back(std::move(conn));
    }

    void drop_idle_readers() {
        std::vector<std::unique_ptr<connection>> dropped;
        {
            std::lock_guard lock(readers_mutex_);
            dropped.swap(free_readers_);
        }
    }

    std::string url_;
    std::string schema_;
    std::string node_id_;
    std::mutex commit_order_;                       // see writer_options::commit_order
    std::vector<std::unique_ptr<writer>> writers_;  // the lanes (see lane())
    std::atomic<std::size_t> next_lane_{0};
    net::thread_pool readers_;
    std::mutex readers_mutex_;
    std::vector<std::unique_ptr<connection>> free_readers_;
    std::unique_ptr<listener> listener_;  // last: stopped first
};

#undef CONCLAVE_JOB_COLUMNS

std::string checked_node_id(const std::string& node_id) {
    if (node_id.empty()) {
        return "node-" + random_token().substr(0, 12);
    }
    const bool printable = std::none_of(node_id.begin(), node_id.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    });
    if (node_id.size() > max_node_id_length || !printable) {
        throw std::invalid_argument(
            "node id '" + node_id + "' must be 1 to " + std::to_string(max_node_id_length) +
            " characters without control characters"
        );
    }
    return node_id;
}

}  // namespace

std::unique_ptr<store> open_postgres_store(const postgres_options& options) {
    const auto node_id = checked_node_id(options.node_id);
    {
        connection db(options.url, options.schema, "conclave " + node_id + " migrate");
        migrate(db, options.schema);
    }
    return std::make_unique<postgres_store>(options, node_id);
}

int migrate_postgres(const postgres_options& options) {
    const auto node_id = checked_node_id(options.node_id);
    connection db(options.url, options.schema, "conclave " + node_id + " migrate");
    return migrate(db, options.schema);
}

std::vector<std::string> format_event_notices(
    std::string_view node_id, const std::vector<topic_offset>& topics
) {
    std::vector<std::string> out;
    for (const auto& t : topics) {
        const auto offset = std::to_string(t.offset);
        const auto line = 1 + t.topic.size() + 1 + offset.size();  // "\n<topic> <offset>"
        if (out.empty() || out.back().size() + line > max_notice_bytes) {
            out.emplace_back(node_id);
        }
        out.back().append("\n").append(t.topic).append(" ").append(offset);
    }
    return out;
}

std::optional<event_notices> parse_event_notices(std::string_view payload) {
    const auto first = payload.find('\n');
    if (first == std::string_view::npos || first == 0) {
        return std::nullopt;
    }
    event_notices out;
    out.node_id = std::string(payload.substr(0, first));
    auto rest = payload.substr(first + 1);
    for (;;) {
        const auto end = rest.find('\n');
        const auto line = rest.substr(0, end);
        const auto space = line.find(' ');
        if (space == std::string_view::npos || space == 0) {
            return std::nullopt;
        }
        topic_offset t;
        t.topic = std::string(line.substr(0, space));
        const auto number = line.substr(space + 1);
        const char* number_end = number.data() + number.size();
        auto [ptr, ec] = std::from_chars(number.data(), number_end, t.offset);
        if (number.empty() || ec != std::errc() || ptr != number_end || t.offset < 0) {
            return std::nullopt;
        }
        out.topics.push_back(std::move(t));
        if (end == std::string_view::npos) {
            return out;
        }
        rest = rest.substr(end + 1);
    }
}

}  // namespace conclave::store::postgres
