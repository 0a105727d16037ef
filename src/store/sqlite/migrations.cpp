#include "store/sqlite/migrations.hpp"

#include <array>

#include "store/sqlite/sqlite_db.hpp"

namespace conclave::store::sqlite {
namespace {

struct migration {
    int version;
    const char* sql;
};

// Append only: a released migration is never edited.
constexpr std::array<migration, 2> migrations{{
    {1, R"sql(
CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    type             TEXT NOT NULL,
    queue            TEXT NOT NULL,
    state            TEXT NOT NULL,
    priority         INTEGER NOT NULL,
    payload          TEXT NOT NULL,
    result           TEXT,
    error            TEXT,
    progress         TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    timeout_s        INTEGER NOT NULL,
    backoff_base_ms  INTEGER NOT NULL,
    backoff_cap_ms   INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_token      TEXT,
    lease_expires_at INTEGER,
    lease_ms         INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    idempotency_key  TEXT,
    request_hash     TEXT,
    topics           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
);
-- Every index is paid for three times per job (submit, claim, finish), so there are few:
-- the claim order of queued jobs; the active set, small (bounded by concurrency), scanned
-- for limits, lease expiry and restart recovery; listing by state; idempotency keys.
CREATE INDEX jobs_claim ON jobs(type, priority DESC, run_at, seq) WHERE state = 'queued';
CREATE INDEX jobs_active ON jobs(type, queue, lease_owner) WHERE state = 'active';
CREATE INDEX jobs_state_seq ON jobs(state, seq);
CREATE UNIQUE INDEX jobs_idempotency ON jobs(idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE job_steps (
    job_id     TEXT NOT NULL,
    key        TEXT NOT NULL,
    result     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, key)
) WITHOUT ROWID;

-- A topic's last offset is the greatest offset of its events: with one writer there is no
-- need for the design's topics(name, last_offset) row lock (see docs/architecture.md).
CREATE TABLE events (
    topic      TEXT NOT NULL,
    "offset"   INTEGER NOT NULL,
    type       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (topic, "offset")
) WITHOUT ROWID;
)sql"},
    {2, R"sql(
-- The council's chats. A conversation's newest council job is last_job_id; its messages are
-- numbered from 1 by seq. A council job is linked back by its extra topic conversation:ID.
CREATE TABLE conversations (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    title            TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    processing_state TEXT NOT NULL,
    council          TEXT NOT NULL,
    last_job_id      TEXT
);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    role            TEXT NOT NULL,
    content         TEXT NOT NULL,
    stages          TEXT,
    metadata        TEXT,
    job_id          TEXT,
    created_at      INTEGER NOT NULL,
    UNIQUE (conversation_id, seq)
);
)sql"},
}};

int current_version(connection& db) {
    db.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at "
        "INTEGER NOT NULL)"
    );
    auto q = db.prepare("SELECT coalesce(max(version), 0) FROM schema_migrations");
    q.step();
    return static_cast<int>(q.int64_at(0));
}

}  // namespace

int latest_schema_version() {
    return migrations.back().version;
}

int migrate(connection& db) {
    int applied = 0;
    const int from = current_version(db);
    if (from > latest_schema_version()) {
        throw sqlite_error(
            0,
            "database schema version " + std::to_string(from) + " is newer than this binary's (" +
                std::to_string(latest_schema_version()) + "): upgrade conclave"
        );
    }
    for (const auto& m : migrations) {
        if (m.version <= from) {
            continue;
        }
        db.exec("BEGIN IMMEDIATE");
        try {
            db.exec(m.sql);
            db.prepare(
                  "INSERT INTO schema_migrations(version, applied_at) VALUES (?, unixepoch() * "
                  "1000)"
            )
                .bind(m.version)
                .run();
            db.exec("COMMIT");
        } catch (...) {
            db.exec("ROLLBACK");
            throw;
        }
        ++applied;
    }
    return applied;
}

}  // namespace conclave::store::sqlite
