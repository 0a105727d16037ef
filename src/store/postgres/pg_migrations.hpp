// store/postgres/pg_migrations.hpp: the PostgreSQL schema, as versioned migrations embedded in
// the binary. Versions 1 and 2 are the SQLite backend's (store/sqlite/migrations.cpp), with the
// same tables, columns and indexes, plus the design's topics(name, last_offset) table; version 3
// moves a job topic's offset onto its job's row (jobs.events_offset, see pg_group_commit.hpp).
#pragma once

#include <string>

namespace conclave::store::postgres {

class connection;

// Creates the connection's schema (its search_path) if missing, then applies every migration
// newer than the schema's version, each in its own transaction, under an advisory lock so that
// nodes starting together apply each once. Returns the number applied. Throws pg_error on
// failure (the schema is left at the last fully applied version), and when the schema is newer
// than this binary's.
// `up_to` stops at that version (tests of an upgrade); 0 means every one.
// REQUIRES: `schema` is the connection's search_path schema, or empty for the server default.
int migrate(connection& db, const std::string& schema, int up_to = 0);

// The newest schema version this binary knows.
int latest_schema_version();

}  // namespace conclave::store::postgres
