// tests/support/pg_database.hpp: a fresh database on the test PostgreSQL server, for tests that
// run several `conclave serve` nodes on it. The server is the one scripts/with-postgres.sh
// starts (CONCLAVE_TEST_PG_URL); `make test` always provides it.
#pragma once

#include <string>

namespace conclave::test {

// Runs `sql` (one or more statements) on the database at `url` (a postgresql:// URL or a libpq
// conninfo) over a connection of its own; returns the first column of the first row of the
// last statement ("" when none). Throws std::runtime_error with the server's message.
std::string run_sql(const std::string& url, const std::string& sql);

class pg_database {
public:
    // Creates database "conclave_<pid>_<n>". Throws (naming with-postgres.sh) when
    // CONCLAVE_TEST_PG_URL is not set or the server refuses.
    pg_database();
    ~pg_database();  // drops it (the nodes must be gone)
    pg_database(const pg_database&) = delete;
    pg_database& operator=(const pg_database&) = delete;

    // postgresql://…/NAME
    const std::string& url() const { return url_; }

    const std::string& name() const { return name_; }

    // Runs `sql` on this database (run_sql).
    std::string query(const std::string& sql) const;
    // The same on the server's own database (e.g. to lock this one's clients out).
    std::string admin_query(const std::string& sql) const;

private:
    std::string admin_url_;
    std::string name_;
    std::string url_;
};

}  // namespace conclave::test
