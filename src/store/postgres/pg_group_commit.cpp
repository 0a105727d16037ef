#include "store/postgres/pg_group_commit.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "core/logging.hpp"
#include "core/text.hpp"
#include "store/postgres/pg_conn.hpp"
#include "store/postgres/pg_store.hpp"

namespace conclave::store::postgres {
namespace {

const metrics::label_set backend_label{{"backend", "postgres"}};

metrics::counter& retries(const char* reason) {
    return metrics::global().counter(
        "conclave_store_commit_retries_total",
        {{"backend", "postgres"}, {"reason", reason}},
        "Group commits rolled back by the database and run again"
    );
}

// Whether a write that threw `e` failed on its own, and the batch's other writes can commit
// without it: an error about the statement's own data, which it would meet again in any batch —
// a data exception (bytes that are not text, a number out of range), an integrity violation
// other than a unique key's (that one is a race with another node, settled by running the batch
// again), a value over one of the server's limits (an index entry too long). Anything else — a
// lost connection, a deadlock, a serialization failure, a server shutting down — is the
// transaction's.
bool fails_alone(const pg_error& e) {
    const std::string_view state = e.sqlstate();
    if (state == sqlstate::unique_violation) {
        return false;
    }
    return state.starts_with("22") || state.starts_with("23") || state.starts_with("54");
}

// What `error` says, for the log.
std::string what_of(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception that is not a std::exception";
    }
}

// Thrown out of a run by a plain write that failed on its own: the batch is rolled back and run
// again without it.
struct plain_write_failed {
    std::size_t idx;
    std::exception_ptr error;
};

}  // namespace

void write_txn::settle() {
    if (!deferred_) {
        return;
    }
    auto group = std::move(deferred_);  // its statements may call db() again: nothing pending
    // The group's writes are plain ones that already ran (for their callers): what it appends
    // belongs to the batch, whichever write's turn it is now, and no savepoint undoes it.
    const auto events_before = write_events_.size();
    const auto undo_before = undo_.size();
    try {
        group->run(*this);
    } catch (...) {
        group_failed_ = true;  // not the failure of the write that happened to settle it
        throw;
    }
    for (auto i = events_before; i < write_events_.size(); ++i) {
        batch_events_.push_back(std::move(write_events_[i]));
    }
    write_events_.resize(events_before);
    undo_.resize(undo_before);
}

void write_txn::hold_topic(const std::string& topic, std::int64_t last) {
    settle();
    if (auto found = topics_.find(topic); found != topics_.end()) {
        // Held earlier in this batch: the row holds what that write stored.
        if (!found->second.on_job_row || found->second.stored != last) {
            throw std::logic_error("job topic " + topic + " held at two offsets in one batch");
        }
        return;
    }
    undo_.emplace_back(topic, std::nullopt);
    topics_.emplace(topic, topic_state{last, last, true, false});
}

void write_txn::stored_on_row(const std::string& topic) {
    auto& state = topics_.at(topic);
    undo_.emplace_back(topic, state);
    state.stored = state.last;
}

void write_txn::lock_topics(std::vector<std::string> topics) {
    settle();
    std::erase_if(topics, [this](const std::string& t) {
        return topics_.contains(t) || is_job_topic(t);
    });
    if (topics.empty()) {
        return;
    }
    std::sort(topics.begin(), topics.end());
    topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
    auto r = db_.exec(
        "SELECT name, last_offset FROM topics WHERE name = ANY($1::text[]) ORDER BY name FOR "
        "UPDATE",
        topics
    );
    for (int row = 0; row < r.size(); ++row) {
        auto name = r.text(row, 0);
        const auto last = r.int64(row, 1);
        undo_.emplace_back(name, std::nullopt);
        topics_.emplace(std::move(name), topic_state{last, last, false, false});
    }
}

const event& write_txn::append(
    const std::string& topic, std::string type, std::string data, unix_ms now
) {
    settle();
    if (!is_text(topic) || !is_text(type) || !is_text(data)) {
        // PostgreSQL would refuse it at flush(), failing the whole batch: refuse it here, where
        // only this write fails.
        throw std::invalid_argument(
            is_text(topic) ? "an event for " + topic + " holds bytes that are not text"
                           : std::string("an event's topic holds bytes that are not text")
        );
    }
    std::int64_t offset = 0;
    auto found = topics_.find(topic);
    if (found == topics_.end()) {
        if (is_job_topic(topic)) {
            throw std::logic_error("append to job topic " + topic + " without its job's row");
        }
        // Locks the row until COMMIT: another node's append to this topic waits for us, so it
        // commits after us with a greater offset.
        auto r = db_.exec(
            "INSERT INTO topics(name, last_offset) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE "
            "SET last_offset = topics.last_offset + 1 RETURNING last_offset",
            topic
        );
        offset = r.int64(0, 0);
        undo_.emplace_back(topic, std::nullopt);
        topics_.emplace(topic, topic_state{offset, offset, false, true});
    } else {
        undo_.emplace_back(topic, found->second);
        offset = ++found->second.last;
        found->second.appended = true;
    }
    return write_events_.emplace_back(event{topic, offset, std::move(type), std::move(data), now});
}

void write_txn::flush(const std::string& node_id) {
    settle();
    std::vector<std::string> moved_names;
    std::vector<std::int64_t> moved_lasts;
    std::vector<topic_offset> appended;
    for (const auto& [name, state] : topics_) {
        if (!state.appended) {
            continue;
        }
        if (state.on_job_row) {
            if (state.last != state.stored) {
                throw std::logic_error("job topic " + name + " appended to but not stored");
            }
        } else if (state.last != state.stored) {
            moved_names.push_back(name);
            moved_lasts.push_back(state.last);
        }
        appended.push_back(topic_offset{name, state.last});
    }
    std::vector<std::string> payloads = format_event_notices(node_id, appended);
    std::vector<std::string> channels(payloads.size(), events_channel);
    if (jobs_queued_) {
        channels.emplace_back(jobs_channel);
        payloads.emplace_back();
    }
    if (batch_events_.empty() && channels.empty()) {
        return;
    }
    std::vector<std::string> topic_of;
    std::vector<std::int64_t> offset_of;
    std::vector<std::string> type_of;
    std::vector<std::string> data_of;
    std::vector<std::int64_t> time_of;
    topic_of.reserve(batch_events_.size());
    offset_of.reserve(batch_events_.size());
    type_of.reserve(batch_events_.size());
    data_of.reserve(batch_events_.size());
    time_of.reserve(batch_events_.size());
    for (const auto& e : batch_events_) {
        topic_of.push_back(e.topic);
        offset_of.push_back(e.offset);
        type_of.push_back(e.type);
        data_of.push_back(e.data);
        time_of.push_back(e.time);
    }
    // One round trip. Data-modifying CTEs always run, referenced or not; NOTIFY is delivered
    // at COMMIT, and only if the transaction commits.
    db_.exec(
        R"(WITH moved_topics AS (
               UPDATE topics SET last_offset = m.last
               FROM unnest($1::text[], $2::bigint[]) AS m(name, last) WHERE topics.name = m.name
           ), new_events AS (
               INSERT INTO events(topic, "offset", type, data, created_at)
               SELECT * FROM unnest($3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[])
           )
           SELECT count(pg_notify(n.channel, n.payload))
           FROM unnest($8::text[], $9::text[]) AS n(channel, payload))",
        moved_names,
        moved_lasts,
        topic_of,
        offset_of,
        type_of,
        data_of,
        time_of,
        channels,
        payloads
    );
}

void write_txn::begin_write() {
    undo_.clear();
    write_events_.clear();
    jobs_queued_before_write_ = jobs_queued_;
}

void write_txn::end_write(bool committed) {
    if (committed) {
        for (auto& e : write_events_) {
            batch_events_.push_back(std::move(e));
        }
    } else {
        for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
            if (it->second) {
                topics_[it->first] = *it->second;
            } else {
                topics_.erase(it->first);
            }
        }
        jobs_queued_ = jobs_queued_before_write_;
    }
    undo_.clear();
    write_events_.clear();
}

writer::writer(writer_options options)
    : options_(std::move(options)),
      batch_size_(metrics::global().histogram(
          "conclave_store_commit_batch_size",
          metrics::size_buckets(),
          backend_label,
          "Writes per group commit (one transaction, one fsync)"
      )),
      commit_seconds_(metrics::global().histogram(
          "conclave_store_commit_seconds",
          metrics::latency_buckets(),
          backend_label,
          "Time from BEGIN to COMMIT of a group commit, the fsync included"
      )),
      commit_failures_(metrics::global().counter(
          "conclave_store_commit_failures_total",
          backend_label,
          "Group commits rolled back by an error"
      )),
      retries_deadlock_(retries("deadlock")),
      retries_serialization_(retries("serialization")),
      retries_unique_(retries("unique_violation")),
      reconnects_(metrics::global().counter(
          "conclave_store_reconnects_total",
          backend_label,
          "Writer connections replaced after the database connection was lost"
      )) {
    connect();
    thread_ = std::thread([this] { loop(); });
}

writer::~writer() {
    queue_.stop();
    thread_.join();
}

void writer::connect() {
    db_ = std::make_unique<connection>(
        options_.conninfo, options_.schema, "conclave " + options_.node_id + " writer"
    );
    // A batch runs its statements back to back, so its transaction is idle only when this
    // process stopped (frozen, or stalled for seconds): the server then ends the session and
    // releases its row locks, which would otherwise stop the other nodes' writes to those jobs
    // and topics — and their sweeps, which skip locked jobs — for as long as the node is stuck.
    db_->exec_script(
        "SET idle_in_transaction_session_timeout = " +
        std::to_string(options_.idle_in_transaction_ms)
    );
    connected_ = true;
}

void writer::drop_connection(const std::string& why) {
    db_.reset();
    if (connected_.exchange(false)) {
        logger("store.pg")->warn("lost the database connection: {}", why);
    }
}

void writer::keep_alive() {
    if (db_) {
        if (!db_->alive()) {
            drop_connection("the server closed it");
        }
        return;
    }
    try {
        connect();
        reconnects_.inc();
        logger("store.pg")->info("reconnected to the database");
    } catch (const pg_error&) {
        // Still unreachable: the next tick tries again; writes meanwhile get unavailable.
    }
}

void writer::loop() {
    using taken = write_queue<write_txn>::taken;
    constexpr auto idle_tick = std::chrono::seconds(1);
    batch ops;
    for (;;) {
        const auto got = queue_.take_for(ops, options_.max_batch, idle_tick);
        if (got == taken::stopped) {
            return;
        }
        if (got == taken::timed_out) {
            keep_alive();
            continue;
        }
        run_batch(ops);
        ops.clear();
    }
}

void writer::run_once(
    batch& ops,
    const std::vector<std::exception_ptr>& left_out,
    write_txn& txn,
    std::vector<std::exception_ptr>& refused
) {
    for (std::size_t idx = 0; idx < ops.size(); ++idx) {
        if (left_out[idx]) {
            continue;
        }
        auto& op = ops[idx];
        if (op->savepoint) {
            // A deferred group runs before the savepoint: this write's failure must not undo it.
            txn.settle();
        }
        txn.begin_write();
        if (op->savepoint) {
            db_->exec_script("SAVEPOINT write");
        }
        std::exception_ptr own;
        try {
            op->run(txn);
        } catch (const pg_error& e) {
            if (txn.group_failed() || !fails_alone(e) || db_->broken()) {
                throw;  // the transaction itself is in trouble: roll back (and perhaps re-run) all
            }
            own = std::current_exception();
        } catch (...) {
            if (txn.group_failed() || db_->broken()) {
                throw;  // the group's writes failed together (see deferred_group), or the
                        // connection went with it
            }
            own = std::current_exception();
        }
        if (!own) {
            if (op->savepoint) {
                db_->exec_script("RELEASE SAVEPOINT write");
            }
            txn.end_write(true);
            continue;
        }
        if (!op->savepoint) {
            throw plain_write_failed{idx, own};  // what it wrote can only go with the batch
        }
        refused[idx] = own;
        db_->exec_script("ROLLBACK TO SAVEPOINT write");
        db_->exec_script("RELEASE SAVEPOINT write");
        txn.end_write(false);
    }
}

void writer::rollback_quietly() {
    if (!db_) {
        return;
    }
    if (!db_->broken()) {
        try {
            db_->exec_script("ROLLBACK");
        } catch (const pg_error& e) {
            logger("store.pg")->warn("rollback: {}", e.what());
        }
    }
    if (db_->broken()) {
        drop_connection("a statement found it closed");  // the next batch reconnects
    }
}

void writer::run_batch(batch& ops) {
    std::vector<std::exception_ptr> refused;
    std::vector<std::exception_ptr> left_out(ops.size());  // plain writes that failed alone
    std::optional<write_txn> txn;
    std::exception_ptr failure;
    std::unique_lock<std::mutex> in_commit_order;  // see writer_options::commit_order
    if (options_.commit_order != nullptr) {
        in_commit_order = std::unique_lock(*options_.commit_order, std::defer_lock);
    }
    bool outcome_unknown = false;
    for (int run = 1;; ++run) {
        refused.assign(ops.size(), nullptr);
        const bool had_connection = db_ != nullptr;
        bool began = false;
        bool committing = false;
        try {
            if (!db_) {
                connect();
                reconnects_.inc();
                logger("store.pg")->info("reconnected to the database");
            }
            txn.emplace(*db_);
            const auto started = std::chrono::steady_clock::now();
            db_->exec_script("BEGIN");
            began = true;
            run_once(ops, left_out, *txn, refused);
            txn->flush(options_.node_id);
            if (in_commit_order.mutex() != nullptr) {
                in_commit_order.lock();
            }
            committing = true;
            db_->exec_script("COMMIT");
            commit_seconds_.observe(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
            );
            break;
        } catch (const plain_write_failed& f) {
            // Not counted as a run: each one leaves a write out, so they end.
            --run;
            rollback_quietly();
            left_out[f.idx] = f.error;
            logger("store.pg")
                ->warn(
                    "a write failed on its own; its batch of {} runs again without it: {}",
                    ops.size(),
                    what_of(f.error)
                );
            continue;
        } catch (const pg_error& e) {
            if (in_commit_order.owns_lock()) {
                in_commit_order.unlock();
            }
            rollback_quietly();
            const auto& state = e.sqlstate();
            metrics::counter* retry = nullptr;
            if (state == sqlstate::deadlock_detected) {
                retry = &retries_deadlock_;
            } else if (state == sqlstate::serialization_failure) {
                retry = &retries_serialization_;
            } else if (state == sqlstate::unique_violation) {
                retry = &retries_unique_;
            }
            if (retry != nullptr && run < max_runs) {
                retry->inc();
                logger("store.pg")->debug("write batch of {} runs again: {}", ops.size(), e.what());
                continue;
            }
            if (e.connection_lost() && had_connection && !began && run < max_runs) {
                // The connection died while idle (a server restart, an idle timeout): nothing
                // of this batch reached the server, so it runs again on a new connection.
                continue;
            }
            outcome_unknown = committing && e.connection_lost();
            failure = e.connection_lost()
                          ? std::make_exception_ptr(
                                unavailable(std::string("the database is unreachable: ") + e.what())
                            )
                          : std::current_exception();
            break;
        } catch (...) {
            if (in_commit_order.owns_lock()) {
                in_commit_order.unlock();
            }
            rollback_quietly();
            failure = std::current_exception();
            break;
        }
    }
    if (failure) {
        commit_failures_.inc();
        logger("store.pg")
            ->error("write batch of {} rolled back: {}", ops.size(), what_of(failure));
        if (outcome_unknown && unknown_outcome_) {
            unknown_outcome_();  // before the writers resume, as the commit listener is
        }
        for (std::size_t idx = 0; idx < ops.size(); ++idx) {
            ops[idx]->deliver(left_out[idx] ? left_out[idx] : failure);
        }
        return;
    }
    ++batches_committed_;
    batch_size_.observe(static_cast<double>(ops.size()));
    // Live subscribers get the batch before its writers resume, so a client that hears back
    // from a write and then subscribes finds the events already fanned out.
    if (listener_ && !txn->batch_events().empty()) {
        listener_(txn->batch_events());
    }
    if (in_commit_order.owns_lock()) {
        in_commit_order.unlock();
    }
    for (std::size_t idx = 0; idx < ops.size(); ++idx) {
        ops[idx]->deliver(left_out[idx] ? left_out[idx] : refused[idx]);
    }
}

}  // namespace conclave::store::postgres
