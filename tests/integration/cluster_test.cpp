// Several `conclave serve` nodes on one PostgreSQL (scripts/with-postgres.sh), over real HTTP:
// jobs submitted on one node run on any and are watched live from another with exact resume;
// a node killed with -9 loses only its leases and its jobs finish elsewhere, each once; the
// database cutting every connection and refusing new ones makes /readyz and requests answer
// 503, and the nodes recover by themselves with nothing lost; so does a PostgreSQL server (one
// of the test's own) really stopped and started again under them; a job cancelled through one
// node stops on the node running it; a node frozen past its lease (SIGSTOP) loses its job to
// another, and when it wakes its late writes are refused.
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <boost/json.hpp>

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include "http/client.hpp"
#include "http/sse_client.hpp"
#include "support/metrics_text.hpp"
#include "support/pg_database.hpp"
#include "support/pg_server.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace conclave::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

class ClusterTest : public ::testing::Test {
protected:
    ClusterTest() {
        config_ = dir_.file("cluster.toml");
        // Short leases, so a dead node's jobs come back quickly.
        std::ofstream(config_) << "[engine]\nlease_s = 2\n";
    }

    std::unique_ptr<server_process> node(const std::string& id) {
        return node_on(db_.url(), id, config_);
    }

    static std::unique_ptr<server_process> node_on(
        const std::string& db_url, const std::string& id, const std::string& config
    ) {
        return std::make_unique<server_process>(
            server_process::db_url,
            db_url,
            std::vector<std::string>{"--node-id", id, "--config", config, "--concurrency", "16"}
        );
    }

    // As node_on, logging everything from debug up to `log` (one JSON object per line).
    static std::unique_ptr<server_process> logged_node_on(
        const std::string& db_url,
        const std::string& id,
        const std::string& config,
        const std::string& log
    ) {
        const std::string command =
            "exec '" + conclave_binary() + "' serve --listen 127.0.0.1:0 --db '" + db_url +
            "' --node-id " + id + " --config '" + config +
            "' --concurrency 16 --log-level debug --log-format json 2>'" + log + "'";
        return std::make_unique<server_process>(
            std::vector<std::string>{"/bin/sh", "-c", command}, server_process::command_line
        );
    }

    // Polls GET `path` until it answers `status`; true if it did within `limit`.
    static bool wait_status(
        const std::string& url, const std::string& path, int status, std::chrono::seconds limit
    ) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            if (http::client(url).get(path).status == status) {
                return true;
            }
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }

    // The error code of a JSON error answer ({"error":{"code":…}}), or "" when it is not one.
    static std::string error_code(const std::string& body) {
        boost::system::error_code ec;
        const auto parsed = json::parse(body, ec);
        if (ec || !parsed.is_object()) {
            return "";
        }
        const auto* error = parsed.as_object().if_contains("error");
        const auto* code =
            error && error->is_object() ? error->as_object().if_contains("code") : nullptr;
        return code && code->is_string() ? std::string(code->as_string()) : "";
    }

    static std::vector<std::string> submit_sleeps(const std::string& url, int n, int ms) {
        json::array jobs;
        for (int i = 0; i < n; ++i) {
            jobs.push_back(json::object{{"type", "sleep"}, {"payload", json::object{{"ms", ms}}}});
        }
        auto res = http::client(url).post(
            "/v1/jobs:batch", json::serialize(json::object{{"jobs", std::move(jobs)}})
        );
        EXPECT_EQ(res.status, 201) << res.body;
        std::vector<std::string> ids;
        const auto body = json::parse(res.body);  // named: a range-for must not outlive it
        for (const auto& j : body.at("jobs").as_array()) {
            ids.emplace_back(j.at("id").as_string());
        }
        return ids;
    }

    static json::object job(const std::string& url, const std::string& id) {
        auto res = http::client(url).get("/v1/jobs/" + id);
        EXPECT_EQ(res.status, 200) << res.body;
        return res.status == 200 ? json::parse(res.body).as_object() : json::object{};
    }

    static json::array events(const std::string& url, const std::string& id) {
        auto res = http::client(url).get("/v1/jobs/" + id + "/events?after=0&limit=1000");
        EXPECT_EQ(res.status, 200) << res.body;
        return res.status == 200 ? json::parse(res.body).at("events").as_array() : json::array{};
    }

    // Waits until every job in `ids` has ended; true if they did within `limit`.
    static bool wait_all_ended(
        const std::string& url, const std::vector<std::string>& ids, std::chrono::seconds limit
    ) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        std::size_t next = 0;
        while (next < ids.size() && std::chrono::steady_clock::now() < deadline) {
            auto res = http::client(url).get("/v1/jobs/" + ids[next]);
            if (res.status == 200) {
                const auto state = json::parse(res.body).at("state").as_string();
                if (state != "queued" && state != "active") {
                    ++next;
                    continue;
                }
            }
            std::this_thread::sleep_for(50ms);
        }
        return next == ids.size();
    }

    // Every job succeeded with exactly one terminal event, its offsets 1..n without a gap.
    static void expect_each_ended_once(
        const std::string& url, const std::vector<std::string>& ids
    ) {
        for (const auto& id : ids) {
            EXPECT_EQ(job(url, id).at("state"), "succeeded") << id;
            const auto list = events(url, id);
            int terminal = 0;
            std::int64_t expected = 1;
            for (const auto& e : list) {
                EXPECT_EQ(e.at("offset").as_int64(), expected++) << id << " has a gap";
                const auto type = e.at("type").as_string();
                terminal +=
                    type == "job.succeeded" || type == "job.failed" || type == "job.cancelled";
            }
            EXPECT_EQ(terminal, 1) << id;
        }
    }

    // The jobs of `type` this node ran to an outcome (its conclave_job_duration_seconds count).
    static int attempts_ran_here(const std::string& url, const std::string& type) {
        const auto text = http::client(url).get("/metrics").body;
        return static_cast<int>(
            metric_sum(text, "conclave_job_duration_seconds_count", "type=\"" + type + "\"")
        );
    }

    temp_dir dir_;
    pg_database db_;
    std::string config_;
};

TEST_F(ClusterTest, SubmittedOnOneRunOnAnyWatchedFromAnotherWithExactResume) {
    auto a = node("node-a");
    auto b = node("node-b");
    auto c = node("node-c");
    // A streaming job submitted on a, watched from c: part of the stream, a disconnect, then a
    // resume from the last id seen, to the end.
    auto res = http::client(a->url()).post(
        "/v1/jobs",
        R"({"type":"type","payload":{"text":"the council deliberates at length, token by token","chunk":2,"interval_ms":40}})"
    );
    ASSERT_EQ(res.status, 201) << res.body;
    const std::string streamed(json::parse(res.body).at("id").as_string());
    const auto sleeps = submit_sleeps(b->url(), 60, 150);
    auto first =
        http::read_sse(c->url(), {.target = "/v1/jobs/" + streamed + "/events", .max_events = 6});
    ASSERT_EQ(first.status, 200);
    ASSERT_EQ(first.events.size(), 6U);
    auto rest = http::read_sse(
        c->url(),
        {.target = "/v1/jobs/" + streamed + "/events",
         .last_event_id = first.events.back().id,
         .timeout = 20s}
    );
    ASSERT_EQ(rest.status, 200);
    std::vector<std::pair<std::int64_t, std::string>> watched;
    for (const auto* part : {&first.events, &rest.events}) {
        for (const auto& e : *part) {
            if (e.type == "end") {
                continue;
            }
            watched.emplace_back(json::parse(e.data).at("offset").as_int64(), e.type);
        }
    }
    ASSERT_FALSE(rest.events.empty());
    EXPECT_EQ(rest.events.back().type, "end");
    std::vector<std::pair<std::int64_t, std::string>> stored;
    for (const auto& e : events(b->url(), streamed)) {
        stored.emplace_back(e.at("offset").as_int64(), std::string(e.at("type").as_string()));
    }
    EXPECT_EQ(watched, stored) << "the watcher on c saw every event once, in order";
    EXPECT_EQ(stored.back().second, "job.succeeded");

    ASSERT_TRUE(wait_all_ended(c->url(), sleeps, 60s));
    expect_each_ended_once(a->url(), sleeps);
    const int ran_a = attempts_ran_here(a->url(), "sleep");
    const int ran_b = attempts_ran_here(b->url(), "sleep");
    const int ran_c = attempts_ran_here(c->url(), "sleep");
    EXPECT_EQ(ran_a + ran_b + ran_c, 60);
    EXPECT_GE((ran_a > 0) + (ran_b > 0) + (ran_c > 0), 2)
        << "a " << ran_a << ", b " << ran_b << ", c " << ran_c;
}

TEST_F(ClusterTest, ANodeKilledMidJobLosesOnlyItsLeasesAndItsJobsFinishElsewhereOnce) {
    auto a = node("node-a");
    auto b = node("node-b");
    const auto ids = submit_sleeps(a->url(), 40, 1500);
    // Wait until node a holds leases, then kill it.
    std::set<std::string> on_a;
    for (int tries = 0; tries < 200 && on_a.empty(); ++tries) {
        for (const auto& id : ids) {
            const auto j = job(b->url(), id);
            if (j.at("state") == "active" && j.at("lease_owner") == "node-a") {
                on_a.insert(id);
            }
        }
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_FALSE(on_a.empty()) << "node a never held a job";
    a->kill_hard();
    ASSERT_TRUE(wait_all_ended(b->url(), ids, 90s));
    expect_each_ended_once(b->url(), ids);
    for (const auto& id : on_a) {
        const auto j = job(b->url(), id);
        EXPECT_GE(j.at("attempts").as_int64(), 2) << id << " ran again after node a died";
    }
}

TEST_F(ClusterTest, TheDatabaseGoingAwayAnswers503AndTheNodesRecoverByThemselves) {
    auto a = node("node-a");
    auto b = node("node-b");
    const auto before = submit_sleeps(a->url(), 20, 300);
    // Refuse new connections to this database and cut the open ones: what a restarting
    // PostgreSQL looks like to its clients.
    db_.admin_query("ALTER DATABASE " + db_.name() + " ALLOW_CONNECTIONS false");
    db_.admin_query(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '" +
        db_.name() + "'"
    );
    bool unready = false;
    for (int tries = 0; tries < 100 && !unready; ++tries) {
        unready = http::client(a->url()).get("/readyz").status == 503;
        std::this_thread::sleep_for(50ms);
    }
    EXPECT_TRUE(unready) << "/readyz must fail while the database is away";
    auto refused = http::client(b->url()).post("/v1/jobs", R"({"type":"noop"})");
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_NE(refused.body.find("\"unavailable\""), std::string::npos) << refused.body;
    std::this_thread::sleep_for(1s);
    db_.admin_query("ALTER DATABASE " + db_.name() + " ALLOW_CONNECTIONS true");
    bool ready = false;
    for (int tries = 0; tries < 300 && !ready; ++tries) {
        ready = http::client(a->url()).get("/readyz").status == 200 &&
                http::client(b->url()).get("/readyz").status == 200;
        std::this_thread::sleep_for(50ms);
    }
    ASSERT_TRUE(ready) << "the nodes must recover by themselves";
    const auto after = submit_sleeps(b->url(), 20, 100);
    ASSERT_TRUE(wait_all_ended(a->url(), before, 60s));
    ASSERT_TRUE(wait_all_ended(a->url(), after, 60s));
    expect_each_ended_once(b->url(), before);
    expect_each_ended_once(b->url(), after);
}

// A job cancelled through one node while its handler runs on another stops there at once,
// not when its work ends: the node running it hears of the job.cancelled committed elsewhere.
TEST_F(ClusterTest, AJobCancelledThroughOneNodeStopsOnTheNodeRunningIt) {
    auto a = node("node-a");
    auto b = node("node-b");
    const auto id = submit_sleeps(a->url(), 1, 600'000).at(0);  // ten minutes
    std::string owner;
    for (int tries = 0; tries < 500 && owner.empty(); ++tries) {
        const auto j = job(a->url(), id);
        if (j.at("state") == "active") {
            owner = j.at("lease_owner").as_string();
        }
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_TRUE(owner == "node-a" || owner == "node-b") << "the job never started: " << owner;
    const auto& runner = owner == "node-a" ? a : b;
    const auto& other = owner == "node-a" ? b : a;
    auto running_here = [](const server_process& n) {
        auto res = http::client(n.url()).get("/v1/stats");
        return res.status == 200 ? json::parse(res.body).at("running_here").as_int64() : -1;
    };
    ASSERT_EQ(running_here(*runner), 1);

    auto cancelled = http::client(other->url()).post("/v1/jobs/" + id + "/cancel", "");
    ASSERT_EQ(cancelled.status, 200) << cancelled.body;
    bool stopped = false;
    for (int tries = 0; tries < 500 && !stopped; ++tries) {
        stopped = running_here(*runner) == 0;
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(stopped) << "the handler on " << owner << " still runs its ten minutes";
    EXPECT_EQ(job(runner->url(), id).at("state"), "cancelled");
    std::vector<std::string> types;
    for (const auto& e : events(runner->url(), id)) {
        types.emplace_back(e.at("type").as_string());
    }
    EXPECT_EQ(types, (std::vector<std::string>{"job.queued", "job.started", "job.cancelled"}))
        << "the stopped handler wrote nothing after the cancel";
}

TEST_F(ClusterTest, PostgresRestartedMidRunAnswers503AndTheNodesRecoverByThemselves) {
    // A server of this test's own: the shared one serves the other tests meanwhile.
    pg_server server;
    server.query("CREATE DATABASE conclave");
    auto a = node_on(server.url("conclave"), "node-a", config_);
    auto b = node_on(server.url("conclave"), "node-b", config_);
    const auto before = submit_sleeps(a->url(), 20, 1000);
    // Stop the server while the nodes run the jobs (they fit in 2 × 16 slots).
    int active = 0;
    for (int tries = 0; tries < 200 && active == 0; ++tries) {
        for (const auto& id : before) {
            active += job(b->url(), id).at("state") == "active";
        }
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_GT(active, 0) << "no job ever ran";
    server.stop();
    for (const auto* n : {a.get(), b.get()}) {
        EXPECT_TRUE(wait_status(n->url(), "/readyz", 503, 20s))
            << n->url() << ": /readyz must fail while the server is down";
        auto refused = http::client(n->url()).post("/v1/jobs", R"({"type":"noop"})");
        EXPECT_EQ(refused.status, 503) << refused.body;
        EXPECT_EQ(error_code(refused.body), "unavailable") << refused.body;
    }
    // Down long enough for the running attempts (1 s sleeps) to end unrecorded.
    std::this_thread::sleep_for(1500ms);
    server.start();
    for (const auto* n : {a.get(), b.get()}) {
        ASSERT_TRUE(wait_status(n->url(), "/readyz", 200, 30s))
            << n->url() << " must recover by itself\n"
            << server.log();
    }
    const auto after = submit_sleeps(b->url(), 20, 100);
    ASSERT_TRUE(wait_all_ended(a->url(), before, 60s));
    ASSERT_TRUE(wait_all_ended(a->url(), after, 60s));
    expect_each_ended_once(b->url(), before);
    expect_each_ended_once(b->url(), after);
    int ran_again = 0;
    for (const auto& id : before) {
        ran_again += job(a->url(), id).at("attempts").as_int64() >= 2;
    }
    EXPECT_GT(ran_again, 0) << "no attempt was under way when the server stopped";
}

// Stops process `pid` (SIGSTOP) until the guard is resumed or destroyed, so that a failed
// assertion never leaves a node frozen.
class frozen {
public:
    explicit frozen(pid_t pid) : pid_(pid) { ::kill(pid_, SIGSTOP); }
    ~frozen() { resume(); }
    frozen(const frozen&) = delete;
    frozen& operator=(const frozen&) = delete;

    void resume() {
        if (pid_ > 0) {
            ::kill(pid_, SIGCONT);
            pid_ = -1;
        }
    }

private:
    pid_t pid_;
};

// The last `n` lines of the log at `path`.
std::string log_tail(const std::string& path, std::size_t n) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    std::string tail;
    for (auto idx = lines.size() > n ? lines.size() - n : 0; idx < lines.size(); ++idx) {
        tail += lines[idx] + "\n";
    }
    return tail;
}

// How child process `pid` ended, or "" while it runs (it is left for its owner to reap).
std::string death_of(pid_t pid) {
    siginfo_t info{};
    if (waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid != pid) {
        return "";
    }
    return info.si_code == CLD_EXITED ? "exited with status " + std::to_string(info.si_status)
                                      : "killed by signal " + std::to_string(info.si_status);
}

// The lines of the log at `path` that mention `text`.
std::vector<std::string> log_lines_with(const std::string& path, const std::string& text) {
    std::ifstream in(path);
    std::vector<std::string> found;
    for (std::string line; std::getline(in, line);) {
        if (line.find(text) != std::string::npos) {
            found.push_back(line);
        }
    }
    return found;
}

TEST_F(ClusterTest, ANodeFrozenPastItsLeaseLosesItsJobsAndItsLateWritesAreRefused) {
    // Should node a be frozen inside a transaction, its rows stay locked (and the sweep skips
    // locked jobs) until the server ends its idle session: the store's writer sets
    // idle_in_transaction_session_timeout (10 s), so the takeover then only comes later.
    const auto log_a = dir_.file("node-a.log");
    auto a = logged_node_on(db_.url(), "node-a", config_, log_a);
    // Jobs of two deltas `gap` apart, then the outcome; back in the queue at once when their
    // lease expires (no backoff). Node a is frozen between the deltas until the jobs were taken
    // over, which is past its lease (2 s) and so past `gap`: when it wakes, each job's second
    // delta and outcome are due at once, and they reach the store while node b runs the jobs.
    // Node a also hears at once that the jobs are no longer its and stops their handlers, one
    // database read each: a handler may lose that race and write nothing, hence several jobs.
    constexpr auto gap = 1500ms;
    constexpr int count = 4;
    const std::string text = "aabb";
    json::array specs;
    for (int idx = 0; idx < count; ++idx) {
        specs.push_back(json::object{
            {"type", "type"},
            {"payload",
             json::object{
                 {"text", text},
                 {"chunk", 2},
                 {"interval_ms", std::chrono::milliseconds(gap).count()}}},
            {"backoff_base_s", 0}});
    }
    auto res = http::client(a->url()).post(
        "/v1/jobs:batch", json::serialize(json::object{{"jobs", std::move(specs)}})
    );
    ASSERT_EQ(res.status, 201) << res.body;
    std::vector<std::string> ids;
    const auto submitted = json::parse(res.body);
    for (const auto& j : submitted.at("jobs").as_array()) {
        ids.emplace_back(j.at("id").as_string());
    }
    // The jobs whose attempt `attempt` wrote `n` deltas so far.
    auto with_deltas = [&](const std::string& url, std::int64_t attempt, int n) {
        int jobs = 0;
        for (const auto& id : ids) {
            int deltas = 0;
            for (const auto& e : events(url, id)) {
                deltas += e.at("type") == "delta" &&
                          e.at("data").as_object().at("attempt").as_int64() == attempt;
            }
            jobs += deltas == n;
        }
        return jobs;
    };
    // Freeze node a once each job's first delta is written.
    bool started = false;
    for (int tries = 0; tries < 500 && !started; ++tries) {
        started = with_deltas(a->url(), 1, 1) == count;
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(started) << "node a never ran the jobs";
    const auto frozen_at = std::chrono::steady_clock::now();
    frozen freeze(a->pid());
    auto b = node("node-b");
    ASSERT_EQ(with_deltas(b->url(), 1, 1), count) << "node a was frozen too late";
    // Node b's lease sweep ends node a's attempts, and node b runs the jobs again.
    int taken = 0;
    for (int tries = 0; tries < 800 && taken < count; ++tries) {
        taken = 0;
        for (const auto& id : ids) {
            const auto j = job(b->url(), id);
            taken += j.at("state") == "active" && j.at("lease_owner") == "node-b" &&
                     j.at("attempts") == 2;
        }
        std::this_thread::sleep_for(25ms);
    }
    ASSERT_EQ(taken, count) << "node b never took over every job";
    // Node a wakes while node b runs the jobs, with second deltas and outcomes overdue.
    std::this_thread::sleep_until(frozen_at + gap);  // a no-op: the lease is longer
    freeze.resume();
    ASSERT_TRUE(wait_all_ended(b->url(), ids, 30s));
    ASSERT_EQ(death_of(a->pid()), "") << "node a died after waking; its log ends:\n"
                                      << log_tail(log_a, 10);

    // Node a tried: the store refused its late outcomes for their stale lease token.
    const auto metrics_a = http::client(a->url()).get("/metrics").body;
    const auto refused = static_cast<int>(
        metric_sum(metrics_a, "conclave_job_outcomes_refused_total", R"(code="lease_lost")")
    );
    std::string lines;
    for (const auto& id : ids) {
        for (const auto& line : log_lines_with(log_a, id)) {
            if (line.find(R"("logger":"jobs")") != std::string::npos) {
                lines += line + "\n";
            }
        }
    }
    EXPECT_GT(refused, 0) << "node a wrote nothing late; what its engine logged about the jobs:\n"
                          << lines;
    // One outcome each, all written by node b; node a recorded none.
    expect_each_ended_once(b->url(), ids);
    EXPECT_EQ(attempts_ran_here(a->url(), "type"), 0) << "node a recorded an outcome";
    EXPECT_EQ(attempts_ran_here(b->url(), "type"), count);
    // Attempts only move forward through each job's events (a late delta of node a's attempt
    // would come after node b's job.started), and node b's attempt's text is whole.
    for (const auto& id : ids) {
        std::int64_t attempt = 0;
        std::string backwards;
        std::string last_text;
        for (const auto& e : events(b->url(), id)) {
            if (!e.at("data").is_object()) {
                continue;
            }
            const auto& data = e.at("data").as_object();
            if (const auto* at = data.if_contains("attempt")) {
                if (at->as_int64() < attempt && backwards.empty()) {
                    backwards = json::serialize(e);
                }
                attempt = std::max(attempt, at->as_int64());
                if (e.at("type") == "delta" && at->as_int64() == 2) {
                    last_text += data.at("text").as_string();
                }
            }
            if (e.at("type") == "job.succeeded") {
                EXPECT_EQ(data.at("attempt").as_int64(), 2) << id;
            }
        }
        EXPECT_EQ(backwards, "") << id << ": an earlier attempt's event written late";
        EXPECT_EQ(last_text, text) << id;
    }
}

}  // namespace
}  // namespace conclave::test
