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

#include "http/client.hpp"
#include "http/sse_client.hpp"
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
        int total = 0;
        const std::string family = "conclave_job_duration_seconds_count{";
        for (auto at = text.find(family); at != std::string::npos; at = text.find(family, at + 1)) {
            const auto line = text.substr(at, text.find('\n', at) - at);
            if (line.find("type=\"" + type + "\"") != std::string::npos) {
                total += std::stoi(line.substr(line.rfind(' ') + 1));
            }
        }
        return total;
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

// The lines of a JSON log about job `id` whose message contains `text`.
int log_lines_about(const std::string& log, const std::string& id, const std::string& text) {
    std::ifstream in(log);
    int found = 0;
    for (std::string line; std::getline(in, line);) {
        boost::system::error_code ec;
        const auto parsed = json::parse(line, ec);
        if (ec || !parsed.is_object()) {
            continue;
        }
        const auto& o = parsed.as_object();
        const auto* job_id = o.if_contains("job_id");
        const auto* msg = o.if_contains("msg");
        found += job_id && *job_id == id.c_str() && msg && msg->is_string() &&
                 msg->as_string().find(text) != json::string::npos;
    }
    return found;
}

TEST_F(ClusterTest, ANodeFrozenPastItsLeaseLosesItsJobAndItsLateWritesAreRefused) {
    // A transaction the frozen node left open would keep the job's rows locked, and the sweep
    // skips locked jobs: as a deployment should, end such sessions (the node reconnects).
    db_.admin_query(
        "ALTER DATABASE " + db_.name() + " SET idle_in_transaction_session_timeout = '1s'"
    );
    const auto log_a = dir_.file("node-a.log");
    auto a = logged_node_on(db_.url(), "node-a", config_, log_a);
    // Two deltas `gap` apart, then the outcome; back in the queue at once when its lease expires
    // (no backoff). Node a is frozen between the deltas until the job was taken over, which is
    // past its lease (2 s) and so past `gap`: when it wakes, its second delta and its outcome
    // are due at once, before it can hear that the job is no longer its (which stops its
    // handler), and they reach the store while node b still runs the job.
    constexpr auto gap = 1500ms;
    const std::string text = "aabb";
    const json::object body{
        {"type", "type"},
        {"payload",
         json::object{
             {"text", text},
             {"chunk", 2},
             {"interval_ms", std::chrono::milliseconds(gap).count()}}},
        {"backoff_base_s", 0}};
    auto res = http::client(a->url()).post("/v1/jobs", json::serialize(body));
    ASSERT_EQ(res.status, 201) << res.body;
    const std::string id(json::parse(res.body).at("id").as_string());
    auto deltas_of = [&](const std::string& url, std::int64_t attempt) {
        int n = 0;
        for (const auto& e : events(url, id)) {
            n += e.at("type") == "delta" &&
                 e.at("data").as_object().at("attempt").as_int64() == attempt;
        }
        return n;
    };
    // Freeze node a once its first delta is written.
    bool started = false;
    for (int tries = 0; tries < 500 && !started; ++tries) {
        started = deltas_of(a->url(), 1) > 0;
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(started) << "node a never ran the job";
    const auto frozen_at = std::chrono::steady_clock::now();
    frozen freeze(a->pid());
    auto b = node("node-b");
    ASSERT_EQ(deltas_of(b->url(), 1), 1) << "node a was frozen too late: it wrote its 2nd delta";
    // Node b's lease sweep ends node a's attempt, and node b runs the job again.
    bool taken = false;
    for (int tries = 0; tries < 800 && !taken; ++tries) {
        const auto j = job(b->url(), id);
        taken = j.at("state") == "active" && j.at("lease_owner") == "node-b";
        std::this_thread::sleep_for(25ms);
    }
    ASSERT_TRUE(taken) << "node b never took over the job";
    const auto taken_attempt = job(b->url(), id).at("attempts").as_int64();
    EXPECT_GE(taken_attempt, 2);
    // Node a wakes while node b runs the job, its second delta and its outcome overdue.
    std::this_thread::sleep_until(frozen_at + gap);  // a no-op: the lease is longer
    freeze.resume();
    ASSERT_TRUE(wait_all_ended(b->url(), {id}, 30s));
    bool refused = false;
    for (int tries = 0; tries < 300 && !refused; ++tries) {
        refused = log_lines_about(log_a, id, "outcome not recorded") > 0;
        std::this_thread::sleep_for(50ms);
    }
    EXPECT_TRUE(refused) << "node a never tried to record its attempt after waking";

    // One outcome, written by node b for its attempt; node a (still serving) recorded nothing.
    expect_each_ended_once(b->url(), {id});
    ASSERT_EQ(http::client(a->url()).get("/healthz").status, 200)
        << "node a must outlive its lease";
    EXPECT_EQ(attempts_ran_here(a->url(), "type"), 0) << "node a recorded an outcome";
    EXPECT_EQ(attempts_ran_here(b->url(), "type"), 1);
    // Attempts only move forward through the job's events (a late delta of node a's attempt
    // would come after node b's job.started), and the last attempt's text is whole.
    std::int64_t attempt = 0;
    int backwards = 0;
    std::string first_backwards;
    std::string last_text;
    for (const auto& e : events(b->url(), id)) {
        if (!e.at("data").is_object()) {
            continue;
        }
        const auto& data = e.at("data").as_object();
        if (const auto* at = data.if_contains("attempt")) {
            if (at->as_int64() < attempt && backwards++ == 0) {
                first_backwards = json::serialize(e);
            }
            attempt = std::max(attempt, at->as_int64());
            if (e.at("type") == "delta" && at->as_int64() == taken_attempt) {
                last_text += data.at("text").as_string();
            }
        }
        if (e.at("type") == "job.succeeded") {
            EXPECT_EQ(data.at("attempt").as_int64(), taken_attempt);
        }
    }
    EXPECT_EQ(backwards, 0) << "events of an earlier attempt written late, the first: "
                            << first_backwards;
    EXPECT_EQ(last_text, text);
}

}  // namespace
}  // namespace conclave::test
