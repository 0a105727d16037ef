// store/sqlite/sqlite_db.hpp: a thin RAII layer over one sqlite3 connection.
//
// A connection is used by one thread at a time (opened SQLITE_OPEN_NOMUTEX). Statements are
// prepared once per connection and cached by their SQL text; `query` hands one out reset and
// resets it again when it goes out of scope, so no statement holds a read snapshot open.
// Errors throw sqlite_error.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace conclave::store::sqlite {

class sqlite_error : public std::runtime_error {
public:
    sqlite_error(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
    int code() const noexcept { return code_; }

private:
    int code_;
};

class query {
public:
    explicit query(sqlite3_stmt* stmt) : stmt_(stmt) {}
    query(const query&) = delete;
    query& operator=(const query&) = delete;
    ~query();

    // Binds parameters 1..n in order; std::string_view/string bind as text, integers as int64,
    // std::nullptr_t as NULL.
    template <class... Args>
    query& bind(const Args&... args) {
        int idx = 0;
        (bind_one(++idx, args), ...);
        return *this;
    }
    void bind_one(int idx, std::int64_t value);
    void bind_one(int idx, int value) { bind_one(idx, static_cast<std::int64_t>(value)); }
    void bind_one(int idx, bool value) { bind_one(idx, static_cast<std::int64_t>(value ? 1 : 0)); }
    void bind_one(int idx, std::string_view value);
    void bind_one(int idx, const std::string& value) { bind_one(idx, std::string_view(value)); }
    void bind_one(int idx, const char* value) { bind_one(idx, std::string_view(value)); }
    void bind_one(int idx, std::nullptr_t);
    // Binds NULL for an empty string (optional text columns).
    void bind_text_or_null(int idx, std::string_view value);

    // Advances to the next row: true when there is one.
    bool step();
    // Runs a statement that returns no rows.
    void run();

    std::int64_t int64_at(int col) const;
    std::string text_at(int col) const;  // NULL reads as ""
    bool is_null(int col) const;

private:
    void check(int rc) const;
    sqlite3_stmt* stmt_;
};

class connection {
public:
    // Opens (creating if needed) the database at `path` and sets WAL, synchronous=FULL,
    // foreign keys and a busy timeout.
    explicit connection(const std::string& path);
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection();

    void exec(const std::string& sql);
    // A cached prepared statement for `sql`, reset and with no bindings.
    // REQUIRES: `sql` is a string literal (or otherwise outlives the connection): statements
    // are cached by the address of their text, so a lookup costs one pointer hash.
    query prepare(const char* sql);
    // The page cache's size in KiB (SQLite's default is 2 MiB).
    void set_cache_kib(int kib);
    std::int64_t last_insert_rowid() const;
    // Rows changed by the last INSERT, UPDATE or DELETE.
    std::int64_t changes() const;

private:
    sqlite3* db_ = nullptr;
    std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

}  // namespace conclave::store::sqlite
