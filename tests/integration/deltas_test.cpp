// Token deltas, snapshots and retention against the real server: remote workers' deltas are
// coalesced, a snapshot plus the tail after it equals the full replay, and a cursor older than
// what retention kept gets `reset`.
#include <fstream>
#include <map>
#include <thread>

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "http/client.hpp"
#include "http/sse_client.hpp"
#include "support/producer.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace conclave::test {
namespace {

namespace json = boost::json;
using http::read_sse;
using namespace std::chrono_literals;

// UTF-16 length, as a browser counts `at`.
std::int64_t units(const std::string& utf8) {
    std::int64_t n = 0;
    for (const char c : utf8) {
        const auto b = static_cast<unsigned char>(c);
        n += ((b & 0xC0U) != 0x80U ? 1 : 0) + (b >= 0xF0U ? 1 : 0);
    }
    return n;
}

// What a client does with deltas: append one only where it fits (`at` = what it holds).
struct text_state {
    std::map<std::string, std::string> parts;
    int deltas = 0;
    bool gap = false;

    void apply(const json::object& data) {
        auto& text = parts[std::string(data.at("part").as_string())];
        const auto at = data.at("at").as_int64();
        const std::string piece(data.at("text").as_string());
        ++deltas;
        if (at == units(text)) {
            text += piece;
        } else if (at > units(text)) {
            gap = true;
        }
    }
};

class DeltasTest : public ::testing::Test {
protected:
    temp_dir dir_;
    std::unique_ptr<server_process> server_;

    void start(const std::string& extra = {}) {
        server_ = std::make_unique<server_process>(
            dir_.file("d.db"),
            std::vector<std::string>{"--config", write_producer_config(dir_, extra)}
        );
    }
};

TEST_F(DeltasTest, RemoteDeltasAreCoalescedAndFlushedOnRequest) {
    start();
    producer p(server_->url(), "space:remote");
    http::client c(server_->url());
    const auto path = "/v1/jobs/" + p.id() + "/events";
    std::string expected;
    for (int idx = 0; idx < 40; ++idx) {
        const std::string piece = "tok" + std::to_string(idx) + " ";
        expected += piece;
        auto res = c.post(
            path,
            json::serialize(json::object{
                {"lease_token", p.token()},
                {"type", "answer.delta"},
                {"data", json::object{{"part", "main"}, {"text", piece}}}})
        );
        ASSERT_EQ(res.status, 202) << res.body;
        EXPECT_EQ(json::parse(res.body).at("buffered"), 1);
    }
    auto flushed = c.post(
        path,
        json::serialize(json::object{
            {"lease_token", p.token()},
            {"flush", true},
            {"type", "answer.delta"},
            {"data", json::object{{"part", "main"}, {"text", "END"}}}})
    );
    ASSERT_EQ(flushed.status, 201) << flushed.body;
    expected += "END";
    auto page = json::parse(c.get(path + "?after=0&limit=1000").body);
    text_state state;
    for (const auto& e : page.at("events").as_array()) {
        if (e.at("type") == "answer.delta") {
            state.apply(e.at("data").as_object());
        }
    }
    EXPECT_EQ(state.parts["main"], expected);
    EXPECT_FALSE(state.gap);
    EXPECT_LT(state.deltas, 10) << "41 posts coalesce into a few events";
    // The worker's deltas go to the job's extra topics too.
    auto extra = json::parse(c.get("/v1/topics/space:remote/events?after=0&limit=1000").body);
    EXPECT_EQ(extra.at("events").as_array().back().at("type"), "answer.delta");

    // Bad input changes nothing.
    EXPECT_EQ(
        c.post(
             path,
             json::serialize(json::object{
                 {"lease_token", p.token()}, {"type", "x.delta"}, {"data", {{"text", "t"}}}})
        ).status,
        400
    );
    EXPECT_EQ(
        c.post(
             path,
             json::serialize(json::object{
                 {"lease_token", p.token()},
                 {"flush", "yes"},
                 {"type", "x.delta"},
                 {"data", {{"part", "p"}, {"text", "t"}}}})
        ).status,
        400
    );
    EXPECT_EQ(
        c.post(path, R"({"lease_token":"stale","type":"x.delta","data":{"part":"p","text":"t"}})")
            .status,
        409
    );
    EXPECT_EQ(c.get("/v1/jobs/0192ffff-0000-7000-8000-000000000000/snapshot").status, 404);
    auto after = json::parse(c.get(path + "?after=0&limit=1000").body);
    EXPECT_EQ(after.at("events").as_array().size(), page.at("events").as_array().size());
}

// A page that loads a snapshot mid-generation and then follows the stream from its cursor ends
// with exactly the text of a full replay: nothing missing, nothing twice.
TEST_F(DeltasTest, SnapshotPlusTailEqualsFullReplay) {
    start();
    http::client c(server_->url());
    std::string text;
    for (int idx = 0; idx < 300; ++idx) {
        text += "word" + std::to_string(idx) + (idx % 11 == 0 ? " ✓😀 " : " ");
    }
    const auto submit = json::serialize(json::object{
        {"type", "type"},
        {"payload", json::object{{"text", text}, {"parts", 2}, {"chunk", 7}, {"interval_ms", 3}}}});
    auto job = json::parse(c.post("/v1/jobs", submit).body);
    const std::string id(job.at("id").as_string());
    // Wait until the job is part-way through.
    json::object snap;
    for (int tries = 0; tries < 500; ++tries) {
        snap = json::parse(c.get("/v1/jobs/" + id + "/snapshot").body).as_object();
        const auto& parts = snap.at("parts").as_object();
        if (parts.contains("p1") && parts.at("p1").as_string().size() > 100) {
            break;
        }
        std::this_thread::sleep_for(5ms);
    }
    ASSERT_EQ(snap.at("job").at("state"), "active") << "the snapshot was taken mid-run";
    EXPECT_EQ(snap.at("attempt"), 1);
    EXPECT_EQ(snap.at("complete"), true);
    // The events other than deltas come with it (what a page needs besides the text).
    const auto& others = snap.at("events").as_array();
    ASSERT_EQ(others.size(), 2U);
    EXPECT_EQ(others[0].at("type"), "job.queued");
    EXPECT_EQ(others[1].at("type"), "job.started");
    EXPECT_EQ(others[1].at("data").at("attempt"), 1);
    EXPECT_EQ(snap.at("events_truncated"), false);
    text_state resumed;
    for (const auto& [part, value] : snap.at("parts").as_object()) {
        resumed.parts[std::string(part)] = std::string(value.as_string());
    }
    const auto offset = snap.at("offset").as_int64();
    EXPECT_EQ(
        std::string(snap.at("cursor").as_string()), "job:" + id + "@" + std::to_string(offset)
    );
    auto tail = read_sse(
        server_->url(),
        {.target = "/v1/jobs/" + id + "/events?after=" + std::to_string(offset), .timeout = 20s}
    );
    ASSERT_EQ(tail.status, 200);
    ASSERT_FALSE(tail.events.empty());
    EXPECT_EQ(tail.events.back().type, "end");
    for (const auto& e : tail.events) {
        if (e.type == "delta") {
            resumed.apply(json::parse(e.data).at("data").as_object());
        }
    }
    auto full = read_sse(server_->url(), {.target = "/v1/jobs/" + id + "/events", .timeout = 20s});
    text_state replayed;
    for (const auto& e : full.events) {
        if (e.type == "delta") {
            replayed.apply(json::parse(e.data).at("data").as_object());
        }
    }
    EXPECT_FALSE(resumed.gap);
    EXPECT_FALSE(replayed.gap);
    EXPECT_EQ(resumed.parts, replayed.parts);
    EXPECT_EQ(replayed.parts["p0"], text);
    EXPECT_EQ(replayed.parts["p1"], text);
    auto final_snap = json::parse(c.get("/v1/jobs/" + id + "/snapshot").body);
    EXPECT_EQ(std::string(final_snap.at("parts").at("p0").as_string()), text);
    EXPECT_EQ(final_snap.at("job").at("state"), "succeeded");
    EXPECT_EQ(final_snap.at("events").as_array().back().at("type"), "job.succeeded");
}

TEST_F(DeltasTest, RetentionKeepsTheNewestAndOldCursorsGetReset) {
    start(
        "[stream]\nretention_interval_s = 0.1\n"
        "[[retention]]\nprefix = \"space:\"\nmax_events = 5\n"
        "[[retention]]\nprefix = \"job:\"\nmax_events = 2\n"
    );
    http::client c(server_->url());
    // More than the hub's ring (256) holds, so an old cursor is served by the store.
    json::array ticks;
    for (int idx = 0; idx < 100; ++idx) {
        ticks.push_back(json::object{{"type", "tick"}, {"data", json::object{}}});
    }
    const auto batch = json::serialize(json::object{{"events", ticks}});
    for (int idx = 0; idx < 3; ++idx) {
        ASSERT_EQ(c.post("/v1/topics/space:kept/events", batch).status, 201);
    }
    // A job whose topic also outgrows the ring: a remote worker posting 300 events.
    producer worker(server_->url(), "space:worker");
    worker.post(300);
    worker.complete();
    const std::string id = worker.id();
    // Wait for the retention pass to have run over both.
    json::value page;
    for (int tries = 0; tries < 200; ++tries) {
        page = json::parse(c.get("/v1/topics/space:kept/events?after=0").body);
        auto jobs = json::parse(c.get("/v1/jobs/" + id + "/events?after=0").body);
        if (page.at("events").as_array().size() == 5 && jobs.at("events").as_array().size() == 2) {
            break;
        }
        std::this_thread::sleep_for(50ms);
    }
    ASSERT_EQ(page.at("events").as_array().size(), 5U);
    EXPECT_EQ(page.at("events").at(0).at("offset"), 296);
    // Offsets go on from the newest kept event.
    auto next = json::parse(c.post("/v1/topics/space:kept/events", R"({"type":"tick"})").body);
    EXPECT_EQ(next.at("events").at(0).at("offset"), 301);

    auto topic = read_sse(
        server_->url(), {.target = "/v1/topics/space:kept/events?after=3", .max_events = 6}
    );
    ASSERT_GE(topic.events.size(), 2U);
    EXPECT_EQ(topic.events[0].type, "reset");
    auto reset = json::parse(topic.events[0].data);
    EXPECT_EQ(reset.at("reason"), "retention");
    EXPECT_EQ(reset.at("after"), 3);
    EXPECT_EQ(reset.at("offset"), 295) << "the stream goes on after 295: the oldest kept is 296";
    EXPECT_TRUE(reset.at("snapshot").is_null());
    EXPECT_EQ(topic.events[1].id, "296");

    // A job topic's reset carries the job's snapshot, and the stream goes on from it to `end`.
    auto jobs = read_sse(server_->url(), {.target = "/v1/jobs/" + id + "/events?after=0"});
    ASSERT_GE(jobs.events.size(), 2U);
    EXPECT_EQ(jobs.events.front().type, "reset");
    auto job_reset = json::parse(jobs.events.front().data);
    EXPECT_EQ(job_reset.at("snapshot").at("job").at("state"), "succeeded");
    EXPECT_EQ(job_reset.at("snapshot").at("complete"), false) << "its start is gone";
    EXPECT_EQ(job_reset.at("offset"), 303) << "queued, started, 300 ticks, succeeded";
    EXPECT_EQ(jobs.events.back().type, "end");
    EXPECT_EQ(c.get("/healthz").status, 200);
}

}  // namespace
}  // namespace conclave::test
