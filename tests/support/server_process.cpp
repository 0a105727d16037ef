#include "support/server_process.hpp"

#include <chrono>
#include <stdexcept>
#include <thread>

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace conclave::test {

std::string conclave_binary() {
    return CONCLAVE_BINARY;
}

std::string fake_llm_binary() {
    return FAKE_LLM_BINARY;
}

server_process::server_process(const std::string& db_path, std::vector<std::string> extra_args)
    : server_process(db_url, "sqlite:" + db_path, std::move(extra_args)) {}

server_process::server_process(
    db_url_t, const std::string& url, std::vector<std::string> extra_args
) {
    std::vector<std::string> args{
        conclave_binary(), "serve", "--listen", "127.0.0.1:0", "--db", url, "--log-level", "warn"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    spawn(std::move(args));
}

server_process::server_process(std::vector<std::string> argv, command_line_t) {
    spawn(std::move(argv));
}

void server_process::spawn(std::vector<std::string> args) {
    int out[2];
    if (pipe(out) != 0) {
        throw std::runtime_error("pipe failed");
    }
    // Everything the child needs is made here: between fork and exec only system calls.
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
        // Killed when the thread that started it ends (tests start servers on their main
        // thread): a test binary that crashes or is killed leaves no server running.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);  // the parent was gone before prctl took effect
        }
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        execv(argv[0], argv.data());
        _exit(127);
    }
    close(out[1]);
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (line.find('\n') == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now()
        );
        pollfd pfd{out[0], POLLIN, 0};
        if (left.count() <= 0 || poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
            break;
        }
        char buf[256];
        const auto n = read(out[0], buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        line.append(buf, static_cast<std::size_t>(n));
    }
    close(out[0]);
    const auto at = line.find("http://");
    if (at == std::string::npos) {
        kill_hard();
        throw std::runtime_error(args.front() + " did not start: '" + line + "'");
    }
    url_ = line.substr(at, line.find('\n', at) - at);
}

unsigned short server_process::port() const {
    return static_cast<unsigned short>(std::stoi(url_.substr(url_.rfind(':') + 1)));
}

server_process::~server_process() {
    if (pid_ > 0) {
        stop();
    }
}

void server_process::kill_hard() {
    if (pid_ <= 0) {
        return;
    }
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
}

int server_process::stop() {
    if (pid_ <= 0) {
        return -1;
    }
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int idx = 0; idx < 100; ++idx) {
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return status;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill_hard();
    return status;
}

}  // namespace conclave::test
