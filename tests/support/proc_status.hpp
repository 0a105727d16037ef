// tests/support/proc_status.hpp: a process's memory figures from /proc (benchmarks, memory tests).
#pragma once

#include <fstream>
#include <string>

#include <sys/types.h>

namespace conclave::test {

// A field of /proc/PID/status in KiB (VmHWM: peak RSS; VmRSS: RSS now; RssAnon: heap and
// stacks; RssFile: mapped files); -1 when absent.
inline long status_kib(pid_t pid, const std::string& field) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind(field + ":", 0) == 0) {
            return std::stol(line.substr(field.size() + 1));
        }
    }
    return -1;
}

}  // namespace conclave::test
