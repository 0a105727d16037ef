// store/postgres/pg_conn.hpp: a thin RAII layer over one libpq connection.
//
// A connection is used by one thread at a time. Statements are prepared once per connection and
// cached by the address of their SQL text (as the SQLite wrapper does), then run with scalar
// parameters sent as text, arrays in PostgreSQL's binary array format, and every column read as
// text. Errors throw pg_error carrying the server's SQLSTATE; when the connection itself is lost
// the SQLSTATE is of class 08 and broken() turns true: the connection is then useless and is
// dropped by its owner.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct pg_conn;    // libpq's PGconn
struct pg_result;  // libpq's PGresult

namespace conclave::store::postgres {

// The SQLSTATEs the store acts on.
namespace sqlstate {
inline constexpr std::string_view serialization_failure = "40001";
inline constexpr std::string_view deadlock_detected = "40P01";
inline constexpr std::string_view unique_violation = "23505";
inline constexpr std::string_view connection_failure = "08006";
}  // namespace sqlstate

class pg_error : public std::runtime_error {
public:
    // `state`: the five-character SQLSTATE, or empty for a refusal of our own (e.g. a schema
    // newer than the binary).
    pg_error(std::string state, const std::string& what)
        : std::runtime_error(what), sqlstate_(std::move(state)) {}
    const std::string& sqlstate() const noexcept { return sqlstate_; }
    // Class 08: the connection is gone (or never came up).
    bool connection_lost() const noexcept { return sqlstate_.starts_with("08"); }

private:
    std::string sqlstate_;
};

// The parameters of one statement: scalars as text or NULL, arrays in binary (text[], bigint[],
// int[]: their type is declared when the statement is prepared, so the SQL's casts, as in
// `unnest($1::text[])`, are no-ops). Binary because the server parses a text array literal
// element by element (array_in was 7% of a writer backend's CPU in cluster_bench) and we had
// to escape every element to build one.
class params {
public:
    void add(std::int64_t value);
    void add(int value) { add(static_cast<std::int64_t>(value)); }
    void add(bool value) { add_text(value ? "t" : "f"); }
    void add(std::string_view value) { add_text(value); }
    void add(const std::string& value) { add_text(value); }
    void add(const char* value) { add_text(value); }
    void add(std::nullptr_t) { add_null(); }
    void add(const std::vector<std::string>& values);
    void add(const std::vector<std::int64_t>& values);
    void add(const std::vector<int>& values);

    int size() const { return static_cast<int>(is_null_.size()); }
    // For libpq: the values (pointers into this object, nullptr for NULL), their lengths, their
    // formats (0 text, 1 binary) and their type OIDs (0: inferred from the SQL).
    std::vector<const char*> values() const;
    const std::vector<int>& lengths() const { return lengths_; }
    const std::vector<int>& formats() const { return formats_; }
    const std::vector<unsigned>& types() const { return types_; }

private:
    void add_text(std::string_view value);
    void add_null();
    void add_binary(std::string bytes, unsigned type);

    std::vector<std::string> data_;
    std::vector<bool> is_null_;
    std::vector<int> lengths_;
    std::vector<int> formats_;
    std::vector<unsigned> types_;
};

// Optional text: NULL when empty (nullable text columns).
struct text_or_null {
    std::string_view value;
};
inline void add_param(params& p, text_or_null v) {
    if (v.value.empty()) {
        p.add(nullptr);
    } else {
        p.add(v.value);
    }
}
template <class T>
void add_param(params& p, const T& value) {
    p.add(value);
}

// The rows a statement returned (or none), owning libpq's result.
class rows {
public:
    explicit rows(pg_result* result);
    int size() const;
    bool empty() const { return size() == 0; }
    std::string text(int row, int col) const;    // NULL reads as ""
    std::int64_t int64(int row, int col) const;  // NULL reads as 0
    bool boolean(int row, int col) const;        // NULL reads as false
    bool is_null(int row, int col) const;
    // Rows an INSERT, UPDATE or DELETE changed.
    std::int64_t affected() const;

private:
    struct free_result {
        void operator()(pg_result* r) const noexcept;
    };
    std::unique_ptr<pg_result, free_result> result_;
};

class connection {
public:
    // Connects with `conninfo` (libpq keywords or a postgres:// URL; empty: libpq's defaults and
    // PG* variables), naming the session `application_name`, with UTF-8 and a 10 s connect
    // timeout unless conninfo says otherwise. A non-empty `schema` becomes the search_path (it
    // need not exist yet). Throws pg_error.
    connection(
        const std::string& conninfo, const std::string& schema, const std::string& application_name
    );
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection();

    // Runs `sql` as a prepared statement (prepared on first use) with `args` bound to $1..$n
    // (see params::add; text_or_null for nullable text). Throws pg_error.
    // REQUIRES: `sql` is a string literal (or otherwise outlives the connection): statements
    // are cached by the address of their text.
    template <class... Args>
    rows exec(const char* sql, const Args&... args) {
        params p;
        (add_param(p, args), ...);
        return exec_params(sql, p);
    }

    // Runs one or more statements without parameters (BEGIN, COMMIT, DDL). Throws pg_error.
    void exec_script(const std::string& sql);

    // true when the connection is lost: every further call fails.
    bool broken() const;
    // Reads what the server sent without waiting: false when it closed the connection (a
    // restart, an administrator's pg_terminate_backend). For an idle connection.
    bool alive();

    // The identifier quoted for SQL ("name").
    std::string quote_identifier(std::string_view name) const;

    // For what this wrapper does not cover (LISTEN in tests). The connection keeps ownership.
    ::pg_conn* native_handle() { return conn_; }

private:
    rows exec_params(const char* sql, const params& p);
    rows checked(pg_result* result, const char* what);

    ::pg_conn* conn_ = nullptr;
    std::unordered_map<const char*, std::string> prepared_;  // SQL text → statement name
};

}  // namespace conclave::store::postgres
