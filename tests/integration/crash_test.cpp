// kill -9 the real server while hundreds of sleep jobs run, restart it, check every invariant.
#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include <boost/json.hpp>

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http/client.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace conclave::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr int job_total = 300;

std::vector<json::value> all_jobs(http::client& c) {
    std::vector<json::value> out;
    std::string cursor;
    for (;;) {
        auto res = c.get("/v1/jobs?limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor));
        auto page = json::parse(res.body);
        for (auto& j : page.at("jobs").as_array()) {
            out.push_back(j);
        }
        if (!page.at("next_cursor").is_string()) {
            return out;
        }
        cursor = std::string(page.at("next_cursor").as_string());
    }
}

int count_state(http::client& c, const std::string& state) {
    int n = 0;
    for (const auto& j : all_jobs(c)) {
        n += j.at("state").as_string() == state ? 1 : 0;
    }
    return n;
}

TEST(CrashTest, KillNineMidRunLosesNothingAndCompletesEachJobOnce) {
    temp_dir dir;
    const auto db = dir.file("crash.db");
    const std::vector<std::string> args{"--node-id", "crash-node", "--concurrency", "64"};
    auto server = std::make_unique<server_process>(db, args);
    {
        http::client c(server->url());
        std::mt19937 rng(7);
        std::uniform_int_distribution<int> ms(100, 400);
        for (int batch = 0; batch < job_total / 100; ++batch) {
            json::array jobs;
            for (int idx = 0; idx < 100; ++idx) {
                jobs.push_back(json::object{
                    {"type", "sleep"}, {"payload", json::object{{"ms", ms(rng)}}}});
            }
            auto res =
                c.post("/v1/jobs:batch", json::serialize(json::object{{"jobs", std::move(jobs)}}));
            ASSERT_EQ(res.status, 201) << res.body;
        }
        // Let part of the work finish, then pull the plug while 64 jobs are mid-sleep.
        for (int idx = 0; idx < 400 && count_state(c, "succeeded") < 60; ++idx) {
            std::this_thread::sleep_for(25ms);
        }
        ASSERT_GT(count_state(c, "active"), 0) << "the kill must land while jobs run";
    }
    server->kill_hard();
    server = std::make_unique<server_process>(db, args);
    http::client c(server->url());
    for (int idx = 0; idx < 600 && count_state(c, "succeeded") < job_total; ++idx) {
        std::this_thread::sleep_for(50ms);
    }
    const auto jobs = all_jobs(c);
    ASSERT_EQ(jobs.size(), static_cast<std::size_t>(job_total));
    int restarted = 0;
    for (const auto& j : jobs) {
        const auto id = std::string(j.at("id").as_string());
        EXPECT_EQ(j.at("state").as_string(), "succeeded") << id;
        auto page = json::parse(c.get("/v1/jobs/" + id + "/events?limit=1000").body);
        const auto& events = page.at("events").as_array();
        std::int64_t expected_offset = 1;
        int succeeded_events = 0;
        for (const auto& e : events) {
            EXPECT_EQ(e.at("offset").as_int64(), expected_offset++)
                << "gap or duplicate in job:" << id;
            const auto type = e.at("type").as_string();
            succeeded_events += type == "job.succeeded" ? 1 : 0;
            if (type == "job.retrying" &&
                e.at("data").at("error").at("code").as_string() == "node_restarted") {
                ++restarted;
            }
        }
        EXPECT_EQ(succeeded_events, 1) << "job " << id << " must succeed exactly once";
        ASSERT_FALSE(events.empty());
        EXPECT_EQ(events.back().at("type").as_string(), "job.succeeded") << "nothing after the end";
    }
    EXPECT_GT(restarted, 0) << "some jobs were mid-run at the kill and were recovered on restart";
}

// The state letter of process `pid` in /proc ('Z' for a zombie), or 0 when it is gone.
char process_state(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) {
        return 0;
    }
    const auto paren = line.rfind(')');
    return paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : 0;
}

// A test binary killed mid-test leaves no server behind: make test must leave nothing running.
TEST(CrashTest, AServerDiesWithTheTestProcessThatStartedIt) {
    temp_dir dir;
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t helper = fork();
    ASSERT_GE(helper, 0);
    if (helper == 0) {  // stands for a test binary that crashes while its server runs
        close(fds[0]);
        try {
            server_process server(dir.file("orphan.db"));
            const pid_t pid = server.pid();
            [[maybe_unused]] auto n = write(fds[1], &pid, sizeof pid);
            raise(SIGKILL);
        } catch (...) {
        }
        _exit(1);  // never back into the test runner from a forked copy of it
    }
    close(fds[1]);
    pid_t server_pid = 0;
    ASSERT_EQ(
        read(fds[0], &server_pid, sizeof server_pid), static_cast<ssize_t>(sizeof server_pid)
    );
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(helper, &status, 0), helper);
    ASSERT_TRUE(WIFSIGNALED(status));
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    char state = process_state(server_pid);
    while (state != 0 && state != 'Z' && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
        state = process_state(server_pid);
    }
    EXPECT_TRUE(state == 0 || state == 'Z') << "server " << server_pid << " still running";
    if (state != 0 && state != 'Z') {
        ::kill(server_pid, SIGKILL);
    }
}

}  // namespace
}  // namespace conclave::test
