// Chaos: a mixed workload — councils against tools/fake-llm with failing members, in-process
// jobs streaming text, a remote worker, streaming clients that drop at random — while the
// server is killed with kill -9 at random moments and restarted, many times. Afterwards every
// invariant is checked: each job terminal and succeeded exactly once, each topic gapless with
// nothing after its end, each council's answer saved complete, each stream client saw every
// event of its job exactly once, and no retried submission created a second job.
#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "http/client.hpp"
#include "http/sse_client.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace conclave::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr int kills = 6;
constexpr int stream_jobs = 24;  // "type" jobs (streamed text)
constexpr int sleep_jobs = 24;
constexpr int remote_jobs = 16;
constexpr int councils = 5;

// One request, retried while the server is down or restarting (connection errors, 503). A
// retried write must be safe to repeat: the callers use idempotency keys or accept the
// "already done" answer.
http::client_response call(
    const std::string& url,
    const std::string& method,
    const std::string& target,
    const std::string& body = {},
    std::chrono::seconds give_up = 60s
) {
    const auto deadline = std::chrono::steady_clock::now() + give_up;
    for (;;) {
        try {
            http::client c(url, 5s);
            auto r = c.request(method, target, body);
            if (r.status != 503 && r.status != 0) {
                return r;
            }
        } catch (const std::exception&) {
        }
        if (std::chrono::steady_clock::now() > deadline) {
            return {};
        }
        std::this_thread::sleep_for(50ms);
    }
}

struct shared_state {
    std::mutex mutex;
    std::vector<std::string> job_ids;                       // every job we submitted
    std::map<std::string, std::vector<std::int64_t>> seen;  // job → offsets a client got
    std::vector<std::string> violations;
    std::vector<std::string> conversations;
    std::atomic<bool> submitting_done{false};
    std::atomic<bool> stop{false};

    void violation(std::string what) {
        std::lock_guard lock(mutex);
        violations.push_back(std::move(what));
    }
};

class ChaosTest : public ::testing::Test {
protected:
    ChaosTest() {
        const auto script = dir_.file("script.json");
        std::ofstream(script) << R"({"default": {"tokens": 12, "token_ms": 8},
            "models": {"flaky": {"status": 429, "fail_times": 3, "retry_after_s": 0.1},
                       "cut": {"disconnect_after": 4, "fail_times": 2}}})";
        fake_ = std::make_unique<server_process>(
            std::vector<std::string>{
                fake_llm_binary(), "--listen", "127.0.0.1:0", "--script", script},
            server_process::command_line
        );
        config_ = dir_.file("chaos.toml");
        std::ofstream(config_) << "[providers.fake]\nbase_url = \"" << fake_->url()
                               << "/v1\"\nmax_retries = 3\n"
                                  "[council]\nmembers = [\"fake:a\", \"fake:flaky\", \"fake:b\"]\n"
                                  "chairman = \"fake:a\"\ntitle_model = \"fake:b\"\n"
                                  "[types.council]\nmax_attempts = 50\n"
                                  "[types.remote]\nexecutor = \"remote\"\nmax_attempts = 50\n";
        start("127.0.0.1:0");
        const auto port = server_->url().substr(server_->url().rfind(':') + 1);
        listen_ = "127.0.0.1:" + port;
        url_ = server_->url();
    }

    // Starts (or restarts) the server; a start that does not come up is tried again.
    void start(const std::string& listen) {
        for (int tries = 1;; ++tries) {
            try {
                launch(listen);
                return;
            } catch (const std::exception& e) {
                if (tries == 3) {
                    throw;
                }
                std::this_thread::sleep_for(500ms);
            }
        }
    }

    void launch(const std::string& listen) {
        server_ = std::make_unique<server_process>(
            std::vector<std::string>{
                conclave_binary(),
                "serve",
                "--listen",
                listen,
                "--db",
                "sqlite:" + dir_.file("chaos.db"),
                "--config",
                config_,
                "--node-id",
                "chaos",
                "--log-level",
                "warn"},
            server_process::command_line
        );
    }

    temp_dir dir_;
    std::unique_ptr<server_process> fake_;
    std::unique_ptr<server_process> server_;
    std::string config_;
    std::string listen_;
    std::string url_;
};

void submitter(const std::string& url, shared_state& s) {
    std::mt19937 rng(11);
    const std::string text =
        "Chaos is a ladder: every token must arrive once, in order, across restarts. ";
    for (int idx = 0; idx < stream_jobs + sleep_jobs + remote_jobs && !s.stop; ++idx) {
        json::object job{{"max_attempts", 50}, {"idempotency_key", "chaos-" + std::to_string(idx)}};
        if (idx % 4 == 0 && idx / 4 < remote_jobs) {
            job["type"] = "remote";
            job["payload"] = json::object{{"n", idx}};
        } else if (idx % 2 == 0) {
            job["type"] = "type";
            job["payload"] = json::object{{"text", text + text}, {"chunk", 6}, {"interval_ms", 15}};
        } else {
            job["type"] = "sleep";
            job["payload"] = json::object{{"ms", 100 + static_cast<int>(rng() % 500)}};
        }
        auto r = call(url, "POST", "/v1/jobs", json::serialize(job));
        if (r.status != 201 && r.status != 200) {
            s.violation("submit " + std::to_string(idx) + " answered " + std::to_string(r.status));
            continue;
        }
        std::lock_guard lock(s.mutex);
        s.job_ids.emplace_back(json::parse(r.body).at("id").as_string());
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 60));
    }
    s.submitting_done = true;
}

void asker(const std::string& url, shared_state& s) {
    for (int idx = 0; idx < councils && !s.stop; ++idx) {
        auto created = call(url, "POST", "/v1/conversations", "{}");
        if (created.status != 201) {
            s.violation("create conversation answered " + std::to_string(created.status));
            continue;
        }
        const std::string id(json::parse(created.body).at("id").as_string());
        const std::string body =
            R"({"content":"Question )" + std::to_string(idx) + R"(: why is the sky blue?"})";
        // A retry after a lost answer finds the turn running: 409 conversation_busy.
        auto asked = call(url, "POST", "/v1/conversations/" + id + "/messages", body);
        if (asked.status != 202 && asked.status != 409) {
            s.violation("ask answered " + std::to_string(asked.status) + " " + asked.body);
        }
        std::lock_guard lock(s.mutex);
        s.conversations.push_back(id);
    }
}

// A remote worker: claim, post an event, complete; every call retried across restarts. A
// complete whose answer was lost is refused the second time (the job is done): that is fine.
void worker(const std::string& url, shared_state& s) {
    while (!s.stop) {
        auto claimed = call(
            url,
            "POST",
            "/v1/workers/claim",
            R"({"worker":"chaos-w","types":["remote"],"max":4,"wait_s":1,"lease_s":3})"
        );
        if (claimed.status != 200) {
            continue;
        }
        const auto batch = json::parse(claimed.body);
        for (const auto& j : batch.at("jobs").as_array()) {
            const std::string id(j.at("id").as_string());
            const std::string token(j.at("lease_token").as_string());
            call(
                url,
                "POST",
                "/v1/jobs/" + id + "/events",
                R"({"lease_token":")" + token + R"(","type":"note","data":{"hi":1}})"
            );
            auto done = call(
                url,
                "POST",
                "/v1/jobs/" + id + "/complete",
                R"({"lease_token":")" + token + R"(","result":{"ok":true}})"
            );
            if (done.status != 200 && done.status != 409) {
                s.violation("complete answered " + std::to_string(done.status) + " " + done.body);
            }
        }
    }
}

// Follows random jobs to their end over SSE, dropping the connection at random points and
// resuming with Last-Event-ID; checks each event arrives once, in order.
void streamer(const std::string& url, shared_state& s, unsigned seed) {
    std::mt19937 rng(seed);
    while (!s.stop) {
        std::string id;
        {
            std::lock_guard lock(s.mutex);
            if (s.job_ids.empty()) {
                id.clear();
            } else {
                id = s.job_ids[rng() % s.job_ids.size()];
                if (s.seen.contains(id)) {
                    id.clear();  // each job followed by one client at most
                } else {
                    s.seen[id];
                }
            }
        }
        if (id.empty()) {
            if (s.submitting_done) {
                return;
            }
            std::this_thread::sleep_for(20ms);
            continue;
        }
        std::vector<std::int64_t> offsets;
        bool ended = false;
        const auto deadline = std::chrono::steady_clock::now() + 90s;
        while (!ended && !s.stop && std::chrono::steady_clock::now() < deadline) {
            http::sse_request req{
                .target = "/v1/jobs/" + id + "/events",
                .last_event_id = offsets.empty() ? "" : std::to_string(offsets.back()),
                .max_bytes = 200 + rng() % 4000,
                .timeout = 5s};
            req.on_event = [&](const http::sse_event& e) {
                if (e.type == "end") {
                    ended = true;
                    return false;
                }
                auto data = json::parse(e.data).as_object();
                const auto offset = data.at("offset").as_int64();
                const auto first =
                    data.contains("first_offset") ? data.at("first_offset").as_int64() : offset;
                const auto expected = offsets.empty() ? 1 : offsets.back() + 1;
                if (first != expected) {
                    s.violation(
                        "job " + id + ": got offset " + std::to_string(first) + ", expected " +
                        std::to_string(expected)
                    );
                }
                offsets.push_back(offset);
                return true;
            };
            try {
                auto r = http::read_sse(url, req);
                if (r.status == 204) {
                    ended = true;  // past the end already
                }
            } catch (const std::exception&) {
                std::this_thread::sleep_for(50ms);  // the server is restarting
            }
        }
        if (!ended) {
            s.violation("job " + id + ": its stream never ended");
        }
        std::lock_guard lock(s.mutex);
        s.seen[id] = std::move(offsets);
    }
}

TEST_F(ChaosTest, KillNineRepeatedlyUnderAMixedWorkloadBreaksNoInvariant) {
    shared_state s;
    std::vector<std::thread> threads;
    // Whatever ends this test early (a failed restart, an exception), the workload stops and
    // its threads are joined: a joinable thread's destructor would abort the whole binary.
    struct join_all {
        shared_state& s;
        std::vector<std::thread>& threads;
        ~join_all() {
            s.stop = true;
            for (auto& t : threads) {
                if (t.joinable()) {
                    t.join();
                }
            }
        }
    } joiner{s, threads};
    threads.emplace_back(submitter, url_, std::ref(s));
    threads.emplace_back(asker, url_, std::ref(s));
    threads.emplace_back(worker, url_, std::ref(s));
    threads.emplace_back(streamer, url_, std::ref(s), 1U);
    threads.emplace_back(streamer, url_, std::ref(s), 2U);

    std::mt19937 rng(99);
    for (int k = 0; k < kills; ++k) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500 + rng() % 1200));
        server_->kill_hard();
        start(listen_);  // same port, same database, same node id
    }

    // Everything we submitted reaches its end.
    auto all_terminal = [&] {
        std::vector<std::string> ids;
        {
            std::lock_guard lock(s.mutex);
            ids = s.job_ids;
        }
        for (const auto& id : ids) {
            auto r = call(url_, "GET", "/v1/jobs/" + id);
            if (r.status != 200) {
                return false;
            }
            const auto state = json::parse(r.body).at("state").as_string();
            if (state != "succeeded" && state != "failed" && state != "cancelled") {
                return false;
            }
        }
        return true;
    };
    threads[0].join();  // the submitter
    threads[1].join();  // the asker
    for (int tries = 0; tries < 600 && !all_terminal(); ++tries) {
        std::this_thread::sleep_for(100ms);
    }
    auto conversations_idle = [&] {
        for (const auto& id : s.conversations) {
            auto r = call(url_, "GET", "/v1/conversations/" + id);
            if (r.status != 200) {
                return false;
            }
            auto c = json::parse(r.body);
            if (c.at("processing_state") == "active") {
                return false;
            }
        }
        return true;
    };
    for (int tries = 0; tries < 600 && !conversations_idle(); ++tries) {
        std::this_thread::sleep_for(100ms);
    }
    threads[3].join();  // the streamers end when every job they took ended
    threads[4].join();
    s.stop = true;
    threads[2].join();

    for (const auto& v : s.violations) {
        ADD_FAILURE() << v;
    }
    ASSERT_EQ(s.job_ids.size(), static_cast<std::size_t>(stream_jobs + sleep_jobs + remote_jobs));
    // No retried submission made a second job.
    auto listed = json::parse(call(url_, "GET", "/v1/jobs?limit=1000").body).at("jobs").as_array();
    std::size_t ours = 0;
    for (const auto& j : listed) {
        const auto type = j.at("type").as_string();
        ours += (type == "type" || type == "sleep" || type == "remote") ? 1 : 0;
    }
    EXPECT_EQ(ours, s.job_ids.size());

    // Each job: succeeded, exactly one terminal event, offsets 1..N without a gap, nothing
    // after the end; and a client that followed it saw exactly those offsets.
    int interrupted = 0;  // attempts a kill cut short, recovered on restart
    for (const auto& id : s.job_ids) {
        auto job = json::parse(call(url_, "GET", "/v1/jobs/" + id).body);
        EXPECT_EQ(job.at("state"), "succeeded") << id << " " << json::serialize(job.at("error"));
        auto page = json::parse(call(url_, "GET", "/v1/jobs/" + id + "/events?limit=1000").body);
        const auto& events = page.at("events").as_array();
        std::int64_t expected = 1;
        int terminal = 0;
        for (const auto& e : events) {
            EXPECT_EQ(e.at("offset").as_int64(), expected++) << "gap in job:" << id;
            const auto type = e.at("type").as_string();
            terminal += (type == "job.succeeded" || type == "job.failed") ? 1 : 0;
            if (type == "job.retrying" && e.at("data").at("error").at("code") == "node_restarted") {
                ++interrupted;
            }
        }
        EXPECT_EQ(terminal, 1) << "job " << id << " ended more than once";
        ASSERT_FALSE(events.empty());
        EXPECT_EQ(events.back().at("type"), "job.succeeded") << "nothing after the end: " << id;
        const auto followed = s.seen.find(id);
        if (followed != s.seen.end() && !followed->second.empty()) {
            EXPECT_EQ(followed->second.back(), events.back().at("offset").as_int64())
                << "the client of job " << id << " missed its last events";
        }
    }
    EXPECT_GT(interrupted, 0) << "the kills landed while jobs ran";
    std::size_t followed = 0;
    for (const auto& [id, offsets] : s.seen) {
        followed += offsets.empty() ? 0 : 1;
    }
    EXPECT_GT(followed, 10U) << "the streamers followed jobs through the kills";

    // Each council: the answer saved complete, the conversation idle.
    ASSERT_EQ(s.conversations.size(), static_cast<std::size_t>(councils));
    for (const auto& id : s.conversations) {
        auto c = json::parse(call(url_, "GET", "/v1/conversations/" + id).body).as_object();
        EXPECT_EQ(c.at("processing_state"), "idle") << id;
        const auto& messages = c.at("messages").as_array();
        ASSERT_EQ(messages.size(), 2U) << "one question, one answer: " << id;
        const auto& answer = messages[1].as_object();
        EXPECT_EQ(answer.at("role"), "assistant");
        EXPECT_FALSE(answer.contains("error")) << json::serialize(answer);
        EXPECT_EQ(answer.at("stage1").as_array().size(), 3U);
        EXPECT_EQ(answer.at("stage2").as_array().size(), 3U);
        EXPECT_NE(
            std::string(answer.at("stage3").at("response").as_string()).find("Answer from a"),
            std::string::npos
        );
    }
}

}  // namespace
}  // namespace conclave::test
