#include "store/postgres/pg_migrations.hpp"

#include <array>

#include "store/postgres/pg_conn.hpp"

namespace conclave::store::postgres {
namespace {

struct migration {
    int version;
    const char* sql;
};

// Append only: a released migration is never edited. Text keys that are ordered or compared
// by range (topics, types, queues, step keys) use the "C" collation: byte order, as on SQLite,
// whatever the database's locale; since migration 4 so do the job ids, states and owners.
constexpr std::array<migration, 4> migrations{{
    {1, R"sql(
CREATE TABLE jobs (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    type             TEXT COLLATE "C" NOT NULL,
    queue            TEXT COLLATE "C" NOT NULL,
    state            TEXT NOT NULL,
    priority         INTEGER NOT NULL,
    payload          TEXT NOT NULL,
    result           TEXT,
    error            TEXT,
    progress         TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    run_at           BIGINT NOT NULL,
    timeout_s        INTEGER NOT NULL,
    backoff_base_ms  BIGINT NOT NULL,
    backoff_cap_ms   BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_token      TEXT,
    lease_expires_at BIGINT,
    lease_ms         BIGINT NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT false,
    idempotency_key  TEXT,
    request_hash     TEXT,
    topics           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT
);
-- As on SQLite: the claim order of queued jobs (the claim query walks it per type); the active
-- set, small, scanned for limits, lease expiry and restart recovery; listing by state;
-- idempotency keys.
CREATE INDEX jobs_claim ON jobs(type, priority DESC, run_at, seq) WHERE state = 'queued';
CREATE INDEX jobs_active ON jobs(type, queue, lease_owner) WHERE state = 'active';
CREATE INDEX jobs_state_seq ON jobs(state, seq);
CREATE UNIQUE INDEX jobs_idempotency ON jobs(idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE job_steps (
    job_id     TEXT NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    result     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, key)
);

-- A topic's last offset. The appending transaction locks the row until it commits, so on each
-- topic commit order is offset order, across every node (see docs/architecture.md).
CREATE TABLE topics (
    name        TEXT COLLATE "C" PRIMARY KEY,
    last_offset BIGINT NOT NULL
);

CREATE TABLE events (
    topic      TEXT COLLATE "C" NOT NULL,
    "offset"   BIGINT NOT NULL,
    type       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (topic, "offset")
);
)sql"},
    {2, R"sql(
-- The council's chats. A conversation's newest council job is last_job_id; its messages are
-- numbered from 1 by seq. A council job is linked back by its extra topic conversation:ID.
CREATE TABLE conversations (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    title            TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    processing_state TEXT NOT NULL,
    council          TEXT NOT NULL,
    last_job_id      TEXT
);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    role            TEXT NOT NULL,
    content         TEXT NOT NULL,
    stages          TEXT,
    metadata        TEXT,
    job_id          TEXT,
    created_at      BIGINT NOT NULL,
    UNIQUE (conversation_id, seq)
);
)sql"},
    {3, R"sql(
-- A job's topic keeps its newest offset on the job's row instead of a topics row: every write
-- that appends to it has locked that row already and changes it in the same statement.
ALTER TABLE jobs ADD COLUMN events_offset BIGINT NOT NULL DEFAULT 0;
UPDATE jobs SET events_offset = t.last_offset FROM topics t WHERE t.name = 'job:' || jobs.id;
DELETE FROM topics WHERE name >= 'job:' AND name < 'job;';
-- A node of an older version still running against this schema would give a job's topic a
-- topics row again and number its events from 1: refuse that with a message that says why.
CREATE FUNCTION conclave_no_job_topic_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'topic % has its offset on its job''s row since schema version 3: upgrade this conclave node', NEW.name
        USING ERRCODE = 'feature_not_supported';
END $$;
CREATE TRIGGER topics_no_job_topics BEFORE INSERT ON topics FOR EACH ROW
    WHEN (NEW.name >= 'job:' AND NEW.name < 'job;') EXECUTE FUNCTION conclave_no_job_topic_rows();
)sql"},
    {4, R"sql(
-- Job ids, states and lease owners are ASCII, compared for equality or in byte order (as on
-- SQLite). Under the database's locale (even C.UTF-8, on PostgreSQL 15) every comparison in
-- their indexes (jobs_id_key, jobs_state_seq, jobs_active, job_steps' key) was a strcoll()
-- call, made some twenty times per index entry on each of a job's three writes; "C" compares
-- bytes. Only the collation changes: the indexes are rebuilt, the table is not rewritten.
ALTER TABLE jobs ALTER COLUMN id TYPE TEXT COLLATE "C",
                 ALTER COLUMN state TYPE TEXT COLLATE "C",
                 ALTER COLUMN lease_owner TYPE TEXT COLLATE "C",
                 ALTER COLUMN idempotency_key TYPE TEXT COLLATE "C";
ALTER TABLE job_steps ALTER COLUMN job_id TYPE TEXT COLLATE "C";
)sql"},
}};

// Held by each migration's transaction: one node migrates a schema at a time.
constexpr const char* lock_sql =
    "SELECT pg_advisory_xact_lock(hashtext('conclave.migrate'), hashtext($1))";

int current_version(connection& db) {
    auto r = db.exec("SELECT coalesce(max(version), 0) FROM schema_migrations");
    return static_cast<int>(r.int64(0, 0));
}

// Runs fn() in a transaction holding the migration lock.
template <class F>
void locked(connection& db, const std::string& schema, F fn) {
    db.exec_script("BEGIN");
    try {
        db.exec(lock_sql, schema);
        fn();
        db.exec_script("COMMIT");
    } catch (...) {
        if (!db.broken()) {
            db.exec_script("ROLLBACK");
        }
        throw;
    }
}

}  // namespace

int latest_schema_version() {
    return migrations.back().version;
}

int migrate(connection& db, const std::string& schema, int up_to) {
    locked(db, schema, [&] {
        // Only when missing: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when
        // the schema is there, and a deployment may have made it for us.
        if (!schema.empty() &&
            db.exec("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema).empty()) {
            db.exec_script("CREATE SCHEMA " + db.quote_identifier(schema));
        }
        if (db.exec("SELECT to_regclass('schema_migrations') IS NULL").boolean(0, 0)) {
            db.exec_script(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT "
                "NOT NULL)"
            );
        }
    });
    const int from = current_version(db);
    if (from > latest_schema_version()) {
        throw pg_error(
            "",
            "database schema version " + std::to_string(from) + " is newer than this binary's (" +
                std::to_string(latest_schema_version()) + "): upgrade conclave"
        );
    }
    int applied = 0;
    for (const auto& m : migrations) {
        if (m.version <= from || (up_to > 0 && m.version > up_to)) {
            continue;
        }
        locked(db, schema, [&] {
            if (current_version(db) >= m.version) {
                return;  // another node applied it while we waited for the lock
            }
            db.exec_script(m.sql);
            db.exec(
                "INSERT INTO schema_migrations(version, applied_at) VALUES ($1, "
                "(extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
                m.version
            );
            ++applied;
        });
    }
    return applied;
}

}  // namespace conclave::store::postgres
