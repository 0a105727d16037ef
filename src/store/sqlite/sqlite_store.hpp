// store/sqlite/sqlite_store.hpp: the embedded store on one SQLite file.
//
// One writer thread owns the only write connection and runs group commit: it takes every write
// waiting in its queue, runs each in its own savepoint inside one transaction, commits once
// (one fsync for the whole batch), then resumes the waiting coroutines and calls the commit
// listener. Reads run on a small thread pool, each thread with its own connection (WAL lets
// readers proceed while the writer commits).
#pragma once

#include <memory>
#include <string>

#include "store/store.hpp"

namespace conclave::store::sqlite {

struct sqlite_options {
    std::string path = "./data/conclave.db";
    int reader_threads = 2;
    std::size_t max_batch = 4096;  // writes per transaction at most
};

// Opens the database (creating it and its folder if needed) and applies migrations.
// Throws on failure (unwritable path, corrupt file, schema newer than this binary).
std::unique_ptr<store> open_sqlite_store(const sqlite_options& options);

// Applies pending migrations to the database at `path`; returns how many were applied.
int migrate_sqlite(const std::string& path);

}  // namespace conclave::store::sqlite
