// tests/support/pg_server.hpp: a PostgreSQL server of a test's own, which the test can stop and
// start again: a real restart, where pg_database (a database on the server that
// scripts/with-postgres.sh starts, shared with the other tests) can only refuse connections.
//
// Set up as with-postgres.sh does: Debian's binaries (the newest /usr/lib/postgresql/*/bin),
// initdb in a temp dir, the socket in that dir, listening on 127.0.0.1 only on a free port, trust
// auth for local connections, run as the `postgres` user when the test runs as root (setpriv).
// The server is a child of the test process (not daemonised): stop() and the destructor reap it,
// and it gets SIGKILL should the thread that started it (the test) die first, so nothing is left
// running. Not thread-safe: one test thread drives it.
#pragma once

#include <filesystem>
#include <string>

#include <sys/types.h>

namespace conclave::test {

class pg_server {
public:
    // initdb in a new temp dir, then start() on a free port. Throws std::runtime_error (with the
    // server's log) when there is no PostgreSQL under /usr/lib/postgresql or it does not start.
    pg_server();
    // stop(), then removes the dir.
    ~pg_server();
    pg_server(const pg_server&) = delete;
    pg_server& operator=(const pg_server&) = delete;

    // Starts the server on the same data dir and port as before and waits (up to 30 s) until it
    // accepts connections. REQUIRES: stopped. Throws as the constructor.
    void start();
    // Fast shutdown (SIGINT: open transactions are rolled back, clients are disconnected) and
    // waits until the server has exited; SIGQUIT after 30 s, SIGKILL after 10 more. Does nothing
    // when stopped.
    void stop();

    bool running() const { return pid_ > 0; }
    unsigned short port() const { return port_; }

    // postgresql://postgres@127.0.0.1:PORT/DATABASE
    std::string url(const std::string& database) const;
    // Runs `sql` on `database`; returns the first column of the first row ("" when none).
    // Throws std::runtime_error when it fails.
    std::string query(const std::string& sql, const std::string& database = "postgres") const;
    // The server's output so far (for failure messages).
    std::string log() const;

private:
    // Forks the postmaster on port_; false when the port turned out to be taken.
    bool spawn();
    // Waits until the server answers, or exits (then reaped); true when it answers.
    bool wait_ready();

    std::filesystem::path bindir_;
    std::filesystem::path dir_;  // the temp dir: data/, the socket, the logs
    unsigned short port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace conclave::test
