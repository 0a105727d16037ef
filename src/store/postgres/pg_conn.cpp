#include "store/postgres/pg_conn.hpp"

#include <charconv>
#include <cstdint>
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

// Type OIDs (pg_type.dat): the element types and the array types we send.
constexpr std::uint32_t int4_oid = 23;
constexpr std::uint32_t int8_oid = 20;
constexpr std::uint32_t text_oid = 25;
constexpr std::uint32_t int4_array_oid = 1007;
constexpr std::uint32_t int8_array_oid = 1016;
constexpr std::uint32_t text_array_oid = 1009;

void append_be32(std::string& out, std::uint32_t v) {
    const char bytes[4] = {
        static_cast<char>(v >> 24),
        static_cast<char>(v >> 16),
        static_cast<char>(v >> 8),
        static_cast<char>(v)};
    out.append(bytes, 4);
}

void append_be64(std::string& out, std::uint64_t v) {
    append_be32(out, static_cast<std::uint32_t>(v >> 32));
    append_be32(out, static_cast<std::uint32_t>(v));
}

// The header of a one-dimensional array without NULLs (array_recv's input): dimensions, flags,
// element type, then length and lower bound of the dimension. An empty array has no dimension.
std::string array_header(std::uint32_t element_oid, std::size_t count, std::size_t payload) {
    std::string out;
    out.reserve(20 + payload);
    append_be32(out, count == 0 ? 0 : 1);
    append_be32(out, 0);
    append_be32(out, element_oid);
    if (count > 0) {
        append_be32(out, static_cast<std::uint32_t>(count));
        append_be32(out, 1);
    }
    return out;
}

}  // namespace

void params::add_text(std::string_view value) {
    data_.emplace_back(value);
    is_null_.push_back(false);
    lengths_.push_back(0);  // ignored for text
    formats_.push_back(0);
    types_.push_back(0);
}

void params::add_null() {
    data_.emplace_back();
    is_null_.push_back(true);
    lengths_.push_back(0);
    formats_.push_back(0);
    types_.push_back(0);
}

void params::add_binary(std::string bytes, unsigned type) {
    lengths_.push_back(static_cast<int>(bytes.size()));
    data_.push_back(std::move(bytes));
    is_null_.push_back(false);
    formats_.push_back(1);
    types_.push_back(type);
}

void params::add(std::int64_t value) {
    add_text(std::to_string(value));
}

void params::add(const std::vector<std::string>& values) {
    std::size_t payload = 0;
    for (const auto& v : values) {
        payload += 4 + v.size();
    }
    auto out = array_header(text_oid, values.size(), payload);
    for (const auto& v : values) {
        append_be32(out, static_cast<std::uint32_t>(v.size()));
        out += v;
    }
    add_binary(std::move(out), text_array_oid);
}

void params::add(const std::vector<std::int64_t>& values) {
    auto out = array_header(int8_oid, values.size(), values.size() * 12);
    for (auto v : values) {
        append_be32(out, 8);
        append_be64(out, static_cast<std::uint64_t>(v));
    }
    add_binary(std::move(out), int8_array_oid);
}

void params::add(const std::vector<int>& values) {
    auto out = array_header(int4_oid, values.size(), values.size() * 8);
    for (auto v : values) {
        append_be32(out, 4);
        append_be32(out, static_cast<std::uint32_t>(v));
    }
    add_binary(std::move(out), int4_array_oid);
}

std::vector<const char*> params::values() const {
    std::vector<const char*> out;
    out.reserve(data_.size());
    for (std::size_t idx = 0; idx < data_.size(); ++idx) {
        out.push_back(is_null_[idx] ? nullptr : data_[idx].data());
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
        checked(PQprepare(conn_, name.c_str(), sql, p.size(), p.types().data()), sql);
        found = prepared_.emplace(sql, std::move(name)).first;
    }
    const auto values = p.values();
    return checked(
        PQexecPrepared(
            conn_,
            found->second.c_str(),
            p.size(),
            values.data(),
            p.lengths().data(),
            p.formats().data(),
            0
        ),
        sql
    );
}

void connection::exec_script(const std::string& sql) {
    checked(PQexec(conn_, sql.c_str()), sql.c_str());
}

}  // namespace conclave::store::postgres
