#include "support/pg_database.hpp"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#include <libpq-fe.h>
#include <unistd.h>

namespace conclave::test {

std::string run_sql(const std::string& url, const std::string& sql) {
    const std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(url.c_str()), &PQfinish);
    if (PQstatus(conn.get()) != CONNECTION_OK) {
        throw std::runtime_error(std::string("cannot connect: ") + PQerrorMessage(conn.get()));
    }
    const std::unique_ptr<PGresult, decltype(&PQclear)> res(
        PQexec(conn.get(), sql.c_str()), &PQclear
    );
    const auto status = PQresultStatus(res.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        throw std::runtime_error(sql + ": " + PQresultErrorMessage(res.get()));
    }
    return PQntuples(res.get()) > 0 ? PQgetvalue(res.get(), 0, 0) : "";
}

pg_database::pg_database() {
    const char* url = std::getenv("CONCLAVE_TEST_PG_URL");
    if (url == nullptr || *url == '\0') {
        throw std::runtime_error(
            "CONCLAVE_TEST_PG_URL is not set: run the tests through scripts/with-postgres.sh "
            "(make test does)"
        );
    }
    admin_url_ = url;
    static std::atomic<int> counter{0};
    name_ = "conclave_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
    const auto slash = admin_url_.rfind('/');
    url_ = admin_url_.substr(0, slash + 1) + name_;
    run_sql(admin_url_, "CREATE DATABASE " + name_);
}

pg_database::~pg_database() {
    try {
        run_sql(admin_url_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception&) {
        // Left for the throwaway server's removal.
    }
}

std::string pg_database::query(const std::string& sql) const {
    return run_sql(url_, sql);
}

std::string pg_database::admin_query(const std::string& sql) const {
    return run_sql(admin_url_, sql);
}

}  // namespace conclave::test
