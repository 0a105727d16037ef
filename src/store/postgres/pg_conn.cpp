#include "store/postgres/pg_conn.hpp"

#include <charconv>
#include <cstring>

#include <libpq-fe.h>

#include "core/logging.hpp"

namespace conclave::store::postgres {
namespace {

// libpq's messages end with a newline.
std::string trimmed(const char* message) {
    std::string text = message != nullptr ? message : "";
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.pop_back();
    }
    return text.empty() ? "unknown libpq error" : text;
}

template <class Int>
void append_int_array(std::string& out, const std::vector<Int>& values) {
    out += '{';
    for (std::size_t idx = 0; idx < values.size(); ++idx) {
        if (idx > 0) {
            out += ',';
        }
        out += std::to_string(values[idx]);
    }
    out += '}';
}

}  // namespace

void params::add_text(std::string_view value) {
    text_.emplace_back(value);
    is_null_.push_back(false);
}

void params::add_null() {
    text_.emplace_back();
    is_null_.push_back(true);
}

void params::add(std::int64_t value) {
    add_text(std::to_string(value));
}

void params::add(const std::vector<std::string>& values) {
    // An array literal: every element quoted, with " and \ escaped by a backslash.
    std::string out = "{";
    for (std::size_t idx = 0; idx < values.size(); ++idx) {
        if (idx > 0) {
            out += ',';
        }
        out += '"';
        for (char c : values[idx]) {
            if (c == '"' || c == '\\') {
                out += '\\';
            }
            out += c;
        }
        out += '"';
    }
    out += '}';
    text_.push_back(std::move(out));
    is_null_.push_back(false);
}

void params::add(const std::vector<std::int64_t>& values) {
    std::string out;
    append_int_array(out, values);
    text_.push_back(std::move(out));
    is_null_.push_back(false);
}

void params::add(const std::vector<int>& values) {
    std::string out;
    append_int_array(out, values);
    text_.push_back(std::move(out));
    is_null_.push_back(false);
}

std::vector<const char*> params::values() const {
    std::vector<const char*> out;
    out.reserve(text_.size());
    for (std::size_t idx = 0; idx < text_.size(); ++idx) {
        out.push_back(is_null_[idx] ? nullptr : text_[idx].c_str());
    }
    return out;
}

void rows::free_result::operator()(pg_result* r) const noexcept {
    PQclear(r);
}

rows::rows(pg_result* result) : result_(result) {}

int rows::size() const {
    return PQntuples(result_.get());
}

std::string rows::text(int row, int col) const {
    if (PQgetisnull(result_.get(), row, col)) {
        return {};
    }
    return {
        PQgetvalue(result_.get(), row, col),
        static_cast<std::size_t>(PQgetlength(result_.get(), row, col))};
}

std::int64_t rows::int64(int row, int col) const {
    if (PQgetisnull(result_.get(), row, col)) {
        return 0;
    }
    const char* text = PQgetvalue(result_.get(), row, col);
    const char* end = text + PQgetlength(result_.get(), row, col);
    std::int64_t value = 0;
    auto [ptr, ec] = std::from_chars(text, end, value);
    if (ec != std::errc() || ptr != end) {
        throw pg_error("", std::string("not an integer: '") + text + "'");
    }
    return value;
}

bool rows::boolean(int row, int col) const {
    return !PQgetisnull(result_.get(), row, col) && PQgetvalue(result_.get(), row, col)[0] == 't';
}

bool rows::is_null(int row, int col) const {
    return PQgetisnull(result_.get(), row, col) != 0;
}

std::int64_t rows::affected() const {
    const char* count = PQcmdTuples(result_.get());
    if (count == nullptr || *count == '\0') {
        return 0;
    }
    std::int64_t value = 0;
    std::from_chars(count, count + std::strlen(count), value);
    return value;
}

connection::connection(
    const std::string& conninfo, const std::string& schema, const std::string& application_name
) {
    // Later keywords win, and the expanded conninfo counts as coming where "dbname" is: the
    // defaults go first so that conninfo can override them.
    const char* keys[] = {
        "application_name", "client_encoding", "connect_timeout", "dbname", nullptr};
    const char* values[] = {application_name.c_str(), "UTF8", "10", conninfo.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (conn_ == nullptr) {
        throw pg_error(std::string(sqlstate::connection_failure), "libpq: out of memory");
    }
    if (PQstatus(conn_) != CONNECTION_OK) {
        std::string message = "connecting to PostgreSQL: " + trimmed(PQerrorMessage(conn_));
        PQfinish(conn_);
        conn_ = nullptr;
        throw pg_error(std::string(sqlstate::connection_failure), message);
    }
    // Notices (e.g. "drop cascades to …") go to the log, not to stderr.
    PQsetNoticeProcessor(
        conn_,
        [](void*, const char* message) { logger("store.pg")->debug("{}", trimmed(message)); },
        nullptr
    );
    if (!schema.empty()) {
        try {
            exec("SELECT set_config('search_path', $1, false)", quote_identifier(schema));
        } catch (...) {
            PQfinish(conn_);
            conn_ = nullptr;
            throw;
        }
    }
}

connection::~connection() {
    if (conn_ != nullptr) {
        PQfinish(conn_);
    }
}

bool connection::broken() const {
    return PQstatus(conn_) != CONNECTION_OK;
}

bool connection::alive() {
    return PQconsumeInput(conn_) != 0 && PQstatus(conn_) == CONNECTION_OK;
}

std::string connection::quote_identifier(std::string_view name) const {
    char* quoted = PQescapeIdentifier(conn_, name.data(), name.size());
    if (quoted == nullptr) {
        throw pg_error("", "cannot quote identifier: " + trimmed(PQerrorMessage(conn_)));
    }
    std::string out = quoted;
    PQfreemem(quoted);
    return out;
}

rows connection::checked(pg_result* result, const char* what) {
    rows out(result);
    const auto status = result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        return out;
    }
    const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    std::string code = state != nullptr ? state : "";
    if (broken() && !code.starts_with("08")) {
        // The connection went away under the statement (perhaps after the server said why,
        // e.g. 57P01 when an administrator terminated the session): report it as lost.
        code = std::string(sqlstate::connection_failure);
    }
    const char* message = result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn_);
    if (message == nullptr || *message == '\0') {
        message = PQerrorMessage(conn_);
    }
    throw pg_error(code, trimmed(message) + " (" + what + ")");
}

rows connection::exec_params(const char* sql, const params& p) {
    auto found = prepared_.find(sql);
    if (found == prepared_.end()) {
        std::string name = "conclave_" + std::to_string(prepared_.size());
        checked(PQprepare(conn_, name.c_str(), sql, p.size(), nullptr), sql);
        found = prepared_.emplace(sql, std::move(name)).first;
    }
    const auto values = p.values();
    return checked(
        PQexecPrepared(conn_, found->second.c_str(), p.size(), values.data(), nullptr, nullptr, 0),
        sql
    );
}

void connection::exec_script(const std::string& sql) {
    checked(PQexec(conn_, sql.c_str()), sql.c_str());
}

}  // namespace conclave::store::postgres
