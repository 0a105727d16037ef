// tests/support/proc_status.hpp: a process's memory and CPU figures from /proc (benchmarks,
// memory tests).
#pragma once

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include <sys/types.h>
#include <unistd.h>

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

// CPU time (user + system) process `pid` has used so far, in milliseconds; -1 when unknown.
inline double cpu_ms(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos) {
        return -1;
    }
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    long long utime = 0;
    long long stime = 0;
    for (int idx = 3; fields >> field; ++idx) {  // field 3 is the state
        if (idx == 14) {
            utime = std::stoll(field);
        } else if (idx == 15) {
            stime = std::stoll(field);
            break;
        }
    }
    return static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace conclave::test
