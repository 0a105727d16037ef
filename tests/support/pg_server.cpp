#include "support/pg_server.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/pg_database.hpp"

namespace conclave::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr auto ready_limit = 30s;
constexpr auto fast_shutdown_limit = 30s;
constexpr auto immediate_shutdown_limit = 10s;
constexpr int port_tries = 20;

// Debian's newest server: /usr/lib/postgresql/<version>/bin.
fs::path find_bindir() {
    fs::path best;
    std::vector<int> best_version;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
        const auto bin = entry.path() / "bin";
        if (!fs::exists(bin / "initdb") || !fs::exists(bin / "postgres")) {
            continue;
        }
        std::vector<int> version;
        std::istringstream parts(entry.path().filename().string());
        for (std::string part; std::getline(parts, part, '.');) {
            version.push_back(std::atoi(part.c_str()));
        }
        if (best.empty() || version > best_version) {
            best = bin;
            best_version = std::move(version);
        }
    }
    if (best.empty()) {
        throw std::runtime_error(
            "pg_server: no PostgreSQL server under /usr/lib/postgresql (scripts/install-deps.sh "
            "installs Debian's postgresql)"
        );
    }
    return best;
}

// The first `name` on PATH.
std::string find_on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        const auto candidate = fs::path(dir) / name;
        if (access(candidate.c_str(), X_OK) == 0) {
            return candidate.string();
        }
    }
    throw std::runtime_error("pg_server: no " + name + " on PATH");
}

bool running_as_root() {
    return geteuid() == 0;
}

// A port below the kernel's ephemeral range (so no outgoing connection takes it while the
// server is down) that nothing listens on now.
unsigned short pick_port() {
    int low = 32768;
    std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low;
    low = std::max(low, 20001);
    static std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<int> dist(20000, low - 1);
    for (int attempt = 0; attempt < 1000; ++attempt) {
        const auto port = static_cast<unsigned short>(dist(rng));
        const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw std::runtime_error("pg_server: socket failed");
        }
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        close(fd);
        if (free) {
            return port;
        }
    }
    throw std::runtime_error("pg_server: no free port below the ephemeral range");
}

// Forks and execs `args` (as the `postgres` user when running as root) in `dir`, its stdout and
// stderr appended to `log`; returns the child's pid. The child gets SIGKILL if this thread dies.
pid_t spawn_in(const fs::path& dir, std::vector<std::string> args, const fs::path& log) {
    if (running_as_root()) {
        std::vector<std::string> as_pg{
            find_on_path("setpriv"),
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--pdeathsig",
            "KILL",  // set again after the switch of user, which clears it
            "--"};
        args.insert(args.begin(), as_pg.begin(), as_pg.end());
    }
    // Everything the child needs is made here: between fork and exec only system calls.
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    const std::string dir_text = dir.string();
    const std::string log_text = log.string();
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        throw std::runtime_error("pg_server: fork failed");
    }
    if (pid == 0) {
        const int out = open(log_text.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        const int null = open("/dev/null", O_RDONLY);
        if (out < 0 || null < 0 || chdir(dir_text.c_str()) != 0) {
            _exit(126);
        }
        dup2(null, STDIN_FILENO);
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(1);  // the test died before the line above
        }
        execv(argv[0], argv.data());
        _exit(127);
    }
    return pid;
}

// Waits up to `limit` for child `pid` to exit; true when it did (it is reaped).
bool wait_exit(pid_t pid, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        int status = 0;
        const pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid || (done < 0 && errno == ECHILD)) {
            return true;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(20ms);
    }
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string conninfo(unsigned short port, const std::string& database) {
    return "host=127.0.0.1 port=" + std::to_string(port) + " user=postgres dbname=" + database +
           " connect_timeout=5";
}

}  // namespace

pg_server::pg_server() : bindir_(find_bindir()) {
    std::string pattern = (fs::temp_directory_path() / "conclave-pg-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
        throw std::runtime_error("pg_server: mkdtemp failed");
    }
    dir_ = pattern;
    try {
        if (running_as_root()) {
            const passwd* pg = getpwnam("postgres");
            if (pg == nullptr || chown(dir_.c_str(), pg->pw_uid, pg->pw_gid) != 0) {
                throw std::runtime_error(
                    "pg_server: cannot give " + dir_.string() + " to postgres"
                );
            }
        }
        const pid_t initdb = spawn_in(
            dir_,
            {(bindir_ / "initdb").string(),
             "-D",
             (dir_ / "data").string(),
             "-U",
             "postgres",
             "--auth=trust",
             "--encoding=UTF8",
             "--locale=C.UTF-8",
             "--no-sync"},
            dir_ / "initdb.log"
        );
        int status = 0;
        if (waitpid(initdb, &status, 0) != initdb || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            throw std::runtime_error(
                "pg_server: initdb failed:\n" + read_file(dir_ / "initdb.log")
            );
        }
        for (int attempt = 1; attempt <= port_tries; ++attempt) {
            port_ = pick_port();
            if (spawn()) {
                return;
            }
        }
        throw std::runtime_error("pg_server: found no free port in 20 tries:\n" + log());
    } catch (...) {
        stop();
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
        throw;
    }
}

pg_server::~pg_server() {
    stop();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
}

void pg_server::start() {
    if (running()) {
        throw std::logic_error("pg_server::start: already running");
    }
    // The port is ours (below the ephemeral range, and the server sets SO_REUSEADDR); should
    // something hold it for a moment anyway, try again.
    for (int attempt = 1; attempt <= port_tries; ++attempt) {
        if (spawn()) {
            return;
        }
        std::this_thread::sleep_for(250ms);
    }
    throw std::runtime_error(
        "pg_server: port " + std::to_string(port_) + " stayed taken on restart:\n" + log()
    );
}

bool pg_server::spawn() {
    const auto log_path = dir_ / "server.log";
    std::error_code ec;
    const auto log_before = fs::exists(log_path) ? fs::file_size(log_path, ec) : 0;
    pid_ = spawn_in(
        dir_,
        {(bindir_ / "postgres").string(),
         "-D",
         (dir_ / "data").string(),
         "-p",
         std::to_string(port_),
         "-k",
         dir_.string(),
         "-c",
         "listen_addresses=127.0.0.1",
         "-c",
         "max_connections=300",
         "-c",
         "fsync=on"},
        log_path
    );
    if (wait_ready()) {
        return true;
    }
    const auto output = read_file(log_path).substr(log_before);
    if (output.find("could not bind") != std::string::npos ||
        output.find("could not create any TCP/IP sockets") != std::string::npos) {
        return false;
    }
    throw std::runtime_error("pg_server: the server did not start:\n" + output);
}

bool pg_server::wait_ready() {
    const auto info = conninfo(port_, "postgres");
    const auto deadline = std::chrono::steady_clock::now() + ready_limit;
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return false;
        }
        if (PQping(info.c_str()) == PQPING_OK) {
            return true;
        }
        std::this_thread::sleep_for(50ms);
    }
    stop();
    return false;
}

void pg_server::stop() {
    if (pid_ <= 0) {
        return;
    }
    kill(pid_, SIGINT);  // fast shutdown
    if (!wait_exit(pid_, fast_shutdown_limit)) {
        kill(pid_, SIGQUIT);  // immediate shutdown
        if (!wait_exit(pid_, immediate_shutdown_limit)) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    pid_ = -1;
}

std::string pg_server::url(const std::string& database) const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

std::string pg_server::query(const std::string& sql, const std::string& database) const {
    return run_sql(conninfo(port_, database), sql);
}

std::string pg_server::log() const {
    return read_file(dir_ / "server.log");
}

}  // namespace conclave::test
