#include "store/sqlite/group_commit.hpp"

#include <chrono>

#include "core/logging.hpp"

namespace conclave::store::sqlite {
namespace {

// A bounded cache: past this many topics the writer forgets them after a commit and reloads
// offsets from the events table on demand (one primary-key seek per topic).
constexpr std::size_t max_cached_topics = 65'536;

}  // namespace

const event& write_txn::append(
    const std::string& topic, std::string type, std::string data, unix_ms now
) {
    auto found = offsets_.find(topic);
    if (found == offsets_.end()) {
        auto q = db_.prepare(R"(SELECT coalesce(max("offset"), 0) FROM events WHERE topic = ?)");
        q.bind(topic);
        const std::int64_t last = q.step() ? q.int64_at(0) : 0;
        found = offsets_.emplace(topic, last).first;
    }
    undo_.emplace_back(topic, found->second);
    const std::int64_t offset = ++found->second;
    db_.prepare(
           R"(INSERT INTO events(topic, "offset", type, data, created_at) VALUES (?, ?, ?, ?, ?))"
    )
        .bind(topic, offset, type, data, now)
        .run();
    return write_events_.emplace_back(event{topic, offset, std::move(type), std::move(data), now});
}

void write_txn::begin_write() {
    undo_.clear();
    write_events_.clear();
}

void write_txn::end_write(bool committed) {
    if (committed) {
        for (auto& e : write_events_) {
            batch_events_.push_back(std::move(e));
        }
    } else {
        for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
            offsets_[it->first] = it->second;
        }
    }
    undo_.clear();
    write_events_.clear();
}

// The writer touches every hot index page (queued and active sets, recent events): it gets a
// larger page cache than the readers.
constexpr int writer_cache_kib = 32 << 10;

writer::writer(const std::string& path, std::size_t max_batch)
    : db_(path),
      max_batch_(max_batch),
      batch_size_(metrics::global().histogram(
          "conclave_store_commit_batch_size",
          metrics::size_buckets(),
          {},
          "Writes per group commit (one transaction, one fsync)"
      )),
      commit_seconds_(metrics::global().histogram(
          "conclave_store_commit_seconds",
          metrics::latency_buckets(),
          {},
          "Time from BEGIN to COMMIT of a group commit, the fsync included"
      )),
      commit_failures_(metrics::global().counter(
          "conclave_store_commit_failures_total", {}, "Group commits rolled back by an error"
      )) {
    db_.set_cache_kib(writer_cache_kib);
    thread_ = std::thread([this] { loop(); });
}

writer::~writer() {
    queue_.stop();
    thread_.join();
}

void writer::loop() {
    batch ops;
    while (queue_.take(ops, max_batch_)) {
        run_batch(ops);
        ops.clear();
    }
}

void writer::run_batch(batch& ops) {
    using pending = write_queue<write_txn>::pending;
    write_txn txn(db_, offsets_);
    std::vector<pending*> committed;
    committed.reserve(ops.size());
    std::size_t next = 0;  // the first write not yet run (nor answered)
    const auto began = std::chrono::steady_clock::now();
    try {
        db_.prepare("BEGIN IMMEDIATE").run();
        for (; next < ops.size(); ++next) {
            auto& op = ops[next];
            txn.begin_write();
            if (!op->savepoint) {
                // Cannot fail half-way by design; if it throws anyway, the batch is rolled back.
                op->run(txn);
                txn.end_write(true);
                committed.push_back(op.get());
                continue;
            }
            db_.prepare("SAVEPOINT write").run();
            try {
                op->run(txn);
            } catch (const sqlite_error&) {
                throw;  // the connection itself is in trouble: fail the whole batch
            } catch (...) {
                auto error = std::current_exception();
                db_.prepare("ROLLBACK TO write").run();
                db_.prepare("RELEASE write").run();
                txn.end_write(false);
                op->deliver(error);
                continue;
            }
            db_.prepare("RELEASE write").run();
            txn.end_write(true);
            committed.push_back(op.get());
        }
        db_.prepare("COMMIT").run();
        ++batches_committed_;
        commit_seconds_.observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count()
        );
        batch_size_.observe(static_cast<double>(ops.size()));
    } catch (...) {
        commit_failures_.inc();
        auto error = std::current_exception();
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            logger("store")->error("write batch of {} rolled back: {}", ops.size(), e.what());
        } catch (...) {
            logger("store")->error("write batch of {} rolled back", ops.size());
        }
        try {
            db_.exec("ROLLBACK");
        } catch (const sqlite_error& rollback_error) {
            logger("store")->warn("rollback: {}", rollback_error.what());
        }
        offsets_.clear();
        for (auto* op : committed) {
            op->deliver(error);
        }
        for (; next < ops.size(); ++next) {
            ops[next]->deliver(error);
        }
        return;
    }
    // Live subscribers get the batch before its writers resume, so a client that hears back
    // from a write and then subscribes finds the events already fanned out.
    if (listener_ && !txn.batch_events().empty()) {
        listener_(txn.batch_events());
    }
    for (auto* op : committed) {
        op->deliver(nullptr);
    }
    if (offsets_.size() > max_cached_topics) {
        offsets_.clear();
    }
}

}  // namespace conclave::store::sqlite
