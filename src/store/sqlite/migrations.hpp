// store/sqlite/migrations.hpp: the schema, as versioned migrations embedded in the binary.
#pragma once

namespace conclave::store::sqlite {

class connection;

// Applies every migration newer than the database's version, each in its own transaction.
// Returns the number applied. Throws sqlite_error on failure (the database is left at the last
// fully applied version).
int migrate(connection& db);

// The newest schema version this binary knows.
int latest_schema_version();

}  // namespace conclave::store::sqlite
