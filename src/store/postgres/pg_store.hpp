// store/postgres/pg_store.hpp: the store on PostgreSQL, which many nodes can share.
//
// Each node has one writer thread owning one connection that runs group commit, as on SQLite
// (pg_group_commit.hpp): it takes every waiting write, runs them in one transaction, commits
// once, then calls the commit listener and resumes the waiting coroutines. Optionally several
// (postgres_options::writer_connections): each write about one job, topic or conversation goes
// to the same one, so on a node those still run in order, and the writers hand the commit
// listener one commit at a time, in commit order. Reads run on a small
// pool of threads, each with its own connection. No libpq call ever runs on the caller's
// executor. Across nodes: each topic's row in `topics` (a job's topic: the job's row) is locked
// by the transaction appending to it until COMMIT, so on every topic commit order is offset
// order; claims take queued jobs with FOR UPDATE SKIP LOCKED; and the per-type and per-queue
// limits of a claim are counted under a transaction-scoped advisory lock, so they hold across
// nodes.
//
// Wake-ups: the committing transaction NOTIFYs, delivered at COMMIT (never for a rolled-back
// batch), so another node's LISTEN learns that there is something to read:
//
//   channel "conclave_events": per commit that appended events, notifications whose payload
//     is the writing node's id (postgres_options::node_id) on the first line, then one line
//     per topic the batch appended to: the topic, a space, and in decimal the offset of the
//     topic's newest event in that commit. Lines end with "\n" (not the last). Example:
//     "node-a\njob:0192f3c4-5d6e-7f80-9a1b-2c3d4e5f6071 3\nspace:lobby 17". A commit touching
//     many topics packs them into as few payloads as fit under max_notice_bytes (PostgreSQL
//     takes less than 8000 bytes), each starting with the node id: one notification per topic
//     cost the server and every listening node more than the work they announce.
//     parse_event_notices reads one. The events themselves are read from the table
//     (read_events after the last offset the node has): a notification is a wake-up, never
//     the carrier, and one missed (while disconnected) is caught up by reading. A node hears
//     its own commits too: skip those whose node_id is yours (the commit listener already had
//     them). Node ids hold no control characters; topics hold no space.
//   channel "conclave_jobs": payload "" (empty), once per commit that made jobs claimable
//     (created, retried, or back in the queue after a failure, lease expiry or restart; a
//     delayed job is claimable only at its run_at, so workers still wake at least that often).
//
// Channels are database-wide: deployments in different schemas of one database hear each
// other's wake-ups (harmless, a wake-up only costs a read).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.hpp"

namespace conclave::store::postgres {

struct postgres_options {
    // libpq keywords ("host=… dbname=…") or a URL ("postgresql://user@host:5432/db"); empty:
    // libpq's defaults and the PG* environment variables.
    std::string url;
    // The schema holding the tables (the connections' search_path), created if missing. Empty:
    // the server's default search_path (usually "public").
    std::string schema;
    int reader_connections = 2;  // reader threads, each with its own connection
    // Writer threads, each with its own connection and group commit (pg_store.cpp, lane()).
    // One by default: on the 2-core benchmark machine a second writer helped a lone node but
    // cost two nodes more than that (bench/README.md); a node facing a database with more
    // cores than it can keep busy through one connection may want more.
    int writer_connections = 1;
    std::size_t max_batch = 4096;  // writes per transaction at most
    // Names this node in NOTIFY payloads and in its sessions' application_name: 1 to
    // max_node_id_length characters, no control characters. Empty: a random one.
    std::string node_id;
};
inline constexpr std::size_t max_node_id_length = 255;

// Connects, creates the schema if missing and applies migrations, then starts the writer and
// the readers. Throws pg_error (store/postgres/pg_conn.hpp) on failure: unreachable server,
// refused credentials, a schema newer than this binary; std::invalid_argument for a bad node_id.
//
// Once open, an operation that finds the database unreachable throws store::unavailable (a
// write whose connection was lost during COMMIT may have committed: its outcome is unknown),
// and reachable() is false until the writer has reconnected (it retries every second while
// idle, and notices within a second that the server closed its idle connection). Reads run
// once more on a new connection when theirs turns out to be lost.
std::unique_ptr<store> open_postgres_store(const postgres_options& options);

// Applies pending migrations (creating the schema if missing); returns how many were applied.
int migrate_postgres(const postgres_options& options);

// The NOTIFY channels (see above).
inline constexpr const char* events_channel = "conclave_events";
inline constexpr const char* jobs_channel = "conclave_jobs";

// A conclave_events payload, parsed.
struct topic_offset {
    std::string topic;
    std::int64_t offset = 0;
};
struct event_notices {
    std::string node_id;
    std::vector<topic_offset> topics;
};

// Payloads stay under this size (in bytes), a topic's line never split.
inline constexpr std::size_t max_notice_bytes = 7900;

// The payloads announcing `topics` (see above); none when `topics` is empty.
std::vector<std::string> format_event_notices(
    std::string_view node_id, const std::vector<topic_offset>& topics
);
// nullopt unless `payload` is a non-empty node id and at least one "<topic> <offset>" line
// (a topic without spaces, a non-negative decimal offset).
std::optional<event_notices> parse_event_notices(std::string_view payload);

}  // namespace conclave::store::postgres
