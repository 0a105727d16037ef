// tests/support/run_cli.hpp: the conclave binary run as a command, its output captured.
#pragma once

#include <array>
#include <cstdio>
#include <string>

#include <sys/wait.h>

#include "support/server_process.hpp"

namespace conclave::test {

struct run_result {
    int exit_code = -1;
    std::string output;  // stdout and stderr
};

// Runs `conclave ARGS` through the shell (`env`, e.g. "CONCLAVE_URL=…", goes before it).
inline run_result run_conclave(const std::string& args, const std::string& env = {}) {
    const std::string command = env + " " + conclave_binary() + " " + args + " 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    run_result out;
    std::array<char, 4096> buf{};
    while (std::fgets(buf.data(), buf.size(), pipe)) {
        out.output += buf.data();
    }
    const int status = pclose(pipe);
    out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return out;
}

}  // namespace conclave::test
