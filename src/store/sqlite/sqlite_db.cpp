#include "store/sqlite/sqlite_db.hpp"

#include <sqlite3.h>

namespace conclave::store::sqlite {
namespace {

[[noreturn]] void throw_error(sqlite3* db, int rc) {
    throw sqlite_error(
        rc, std::string("sqlite: ") + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc))
    );
}

}  // namespace

query::~query() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

void query::check(int rc) const {
    if (rc != SQLITE_OK) {
        throw_error(sqlite3_db_handle(stmt_), rc);
    }
}

void query::bind_one(int idx, std::int64_t value) {
    check(sqlite3_bind_int64(stmt_, idx, value));
}

void query::bind_one(int idx, std::string_view value) {
    check(sqlite3_bind_text64(stmt_, idx, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8)
    );
}

void query::bind_one(int idx, std::nullptr_t) {
    check(sqlite3_bind_null(stmt_, idx));
}

void query::bind_text_or_null(int idx, std::string_view value) {
    if (value.empty()) {
        bind_one(idx, nullptr);
    } else {
        bind_one(idx, value);
    }
}

bool query::step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
        return true;
    }
    if (rc == SQLITE_DONE) {
        return false;
    }
    throw_error(sqlite3_db_handle(stmt_), rc);
}

void query::run() {
    while (step()) {
    }
}

std::int64_t query::int64_at(int col) const {
    return sqlite3_column_int64(stmt_, col);
}

std::string query::text_at(int col) const {
    const auto* text = sqlite3_column_text(stmt_, col);
    if (text == nullptr) {
        return {};
    }
    return {
        reinterpret_cast<const char*>(text),
        static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))};
}

bool query::is_null(int col) const {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

namespace {

// Process-wide settings, before the first connection: no allocation statistics (they take a
// global mutex on every malloc).
void configure_once() {
    static const bool configured = [] {
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        return true;
    }();
    (void)configured;
}

}  // namespace

connection::connection(const std::string& path) {
    configure_once();
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        const std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close(db_);
        db_ = nullptr;
        throw sqlite_error(rc, "sqlite: cannot open " + path + ": " + message);
    }
    sqlite3_busy_timeout(db_, 5000);
    // synchronous=FULL: in WAL mode every commit fsyncs the log, so a committed job survives
    // power loss, not just a process crash. Group commit keeps that affordable.
    exec(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA "
        "temp_store=MEMORY;"
    );
}

connection::~connection() {
    for (auto& [sql, stmt] : cache_) {
        sqlite3_finalize(stmt);
    }
    sqlite3_close(db_);
}

void connection::exec(const std::string& sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
        const std::string text = message ? message : sqlite3_errstr(rc);
        sqlite3_free(message);
        throw sqlite_error(rc, "sqlite: " + text);
    }
}

query connection::prepare(const char* sql) {
    auto found = cache_.find(sql);
    if (found != cache_.end()) {
        return query(found->second);
    }
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
        throw_error(db_, rc);
    }
    cache_.emplace(sql, stmt);
    return query(stmt);
}

void connection::set_cache_kib(int kib) {
    exec("PRAGMA cache_size=-" + std::to_string(kib));
}

std::int64_t connection::last_insert_rowid() const {
    return sqlite3_last_insert_rowid(db_);
}

std::int64_t connection::changes() const {
    return sqlite3_changes64(db_);
}

}  // namespace conclave::store::sqlite
