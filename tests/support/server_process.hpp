// tests/support/server_process.hpp: the real `conclave serve` binary (or tools/fake-llm) as a
// child process on a loopback port, for integration and crash tests. The child is killed when
// the thread that started it ends, so construct servers on the test's own thread.
#pragma once

#include <string>
#include <vector>

#include <sys/types.h>

namespace conclave::test {

class server_process {
public:
    // Starts `conclave serve --listen 127.0.0.1:0 --db sqlite:DB_PATH` plus `extra_args`, and
    // waits (up to 20 s) until it prints its URL. Throws if it does not come up.
    server_process(const std::string& db_path, std::vector<std::string> extra_args = {});
    // As above with `--db url` as given (e.g. a PostgreSQL database shared by several nodes).
    struct db_url_t {};
    static constexpr db_url_t db_url{};
    server_process(db_url_t, const std::string& url, std::vector<std::string> extra_args = {});
    // Starts any server that prints its "http://HOST:PORT" on its first line (fake-llm).
    struct command_line_t {};
    static constexpr command_line_t command_line{};
    server_process(std::vector<std::string> argv, command_line_t);
    ~server_process();  // SIGTERM, then SIGKILL if it lingers
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;

    const std::string& url() const { return url_; }
    unsigned short port() const;  // of url()
    pid_t pid() const { return pid_; }

    // kill -9, and reap it.
    void kill_hard();
    // SIGTERM and wait; returns the exit status (as from waitpid).
    int stop();

private:
    void spawn(std::vector<std::string> args);

    pid_t pid_ = -1;
    std::string url_;
};

// The path of the conclave binary under test, and of tools/fake-llm.
std::string conclave_binary();
std::string fake_llm_binary();

}  // namespace conclave::test
