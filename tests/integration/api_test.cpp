// The real server on a loopback port with a real SQLite file, driven over HTTP.
#include <chrono>
#include <thread>

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "http/client.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace conclave::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

class ApiTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new temp_dir();
        server_ = new server_process(dir_->file("api.db"), {"--config", write_config()});
    }
    static void TearDownTestSuite() {
        delete server_;
        delete dir_;
    }
    static std::string write_config() {
        const auto path = dir_->file("conclave.toml");
        FILE* f = std::fopen(path.c_str(), "w");
        std::fputs(
            "[types.transcribe]\nexecutor = \"remote\"\nmax_attempts = 3\nbackoff_base_s = "
            "0.2\nbackoff_cap_s = 0.2\n"
            "[types.bulk]\nexecutor = \"remote\"\nmax_attempts = 1\n",
            f
        );
        std::fclose(f);
        return path;
    }

    http::client& c() { return client_; }

    json::value post_ok(const std::string& target, const std::string& body, int expected = 201) {
        auto res = c().post(target, body);
        EXPECT_EQ(res.status, expected) << target << " " << body << " -> " << res.body;
        return json::parse(res.body);
    }

    // The error code of a response, after checking its status.
    std::string error_of(const http::client_response& res, int status) {
        EXPECT_EQ(res.status, status) << res.body;
        auto body = json::parse(res.body);
        EXPECT_TRUE(body.at("error").at("message").is_string());
        return std::string(body.at("error").at("code").as_string());
    }

    json::value wait_state(const std::string& id, const std::string& state) {
        for (int idx = 0; idx < 500; ++idx) {
            auto job = json::parse(c().get("/v1/jobs/" + id).body);
            if (job.at("state").as_string() == state) {
                return job;
            }
            std::this_thread::sleep_for(20ms);
        }
        ADD_FAILURE() << id << " never reached " << state;
        return nullptr;
    }

    std::int64_t job_count() {
        auto page = json::parse(c().get("/v1/jobs?limit=1000").body);
        return static_cast<std::int64_t>(page.at("jobs").as_array().size());
    }

    static temp_dir* dir_;
    static server_process* server_;
    http::client client_{server_->url()};
};

temp_dir* ApiTest::dir_ = nullptr;
server_process* ApiTest::server_ = nullptr;

TEST_F(ApiTest, HealthAndReadiness) {
    EXPECT_EQ(c().get("/healthz").status, 200);
    EXPECT_EQ(c().get("/readyz").status, 200);
}

TEST_F(ApiTest, StatsCountJobsByState) {
    auto before = json::parse(c().get("/v1/stats").body).at("jobs");
    post_ok("/v1/jobs", R"({"type":"noop","delay_s":3600})");
    auto after = json::parse(c().get("/v1/stats").body).at("jobs");
    EXPECT_EQ(after.at("queued").as_int64(), before.at("queued").as_int64() + 1);
}

TEST_F(ApiTest, SubmitRunAndReadEvents) {
    auto job =
        post_ok("/v1/jobs", R"({"type":"sleep","payload":{"ms":20},"topics":["space:it:runs"]})");
    const auto id = std::string(job.at("id").as_string());
    EXPECT_EQ(job.at("state").as_string(), "queued");
    wait_state(id, "succeeded");
    auto page = json::parse(c().get("/v1/jobs/" + id + "/events").body);
    auto& events = page.at("events").as_array();
    ASSERT_EQ(events.size(), 3U);
    EXPECT_EQ(events[0].at("type").as_string(), "job.queued");
    EXPECT_EQ(events[2].at("type").as_string(), "job.succeeded");
    EXPECT_EQ(events[2].at("data").at("result").at("slept_ms").as_int64(), 20);
    EXPECT_EQ(page.at("next_after").as_int64(), 3);
    auto tail = json::parse(c().get("/v1/jobs/" + id + "/events?after=2&limit=5").body);
    EXPECT_EQ(tail.at("events").as_array().size(), 1U);
    auto topic = json::parse(c().get("/v1/topics/space:it:runs/events").body);
    EXPECT_GE(topic.at("events").as_array().size(), 3U);
}

TEST_F(ApiTest, PublishToAnApplicationTopic) {
    auto one =
        post_ok("/v1/topics/space:app:feed/events", R"({"type":"note","data":{"text":"hi"}})");
    EXPECT_EQ(one.at("events").at(0).at("offset").as_int64(), 1);
    auto more = post_ok(
        "/v1/topics/space:app:feed/events", R"({"events":[{"type":"a"},{"type":"b","data":[1]}]})"
    );
    EXPECT_EQ(more.at("events").at(1).at("offset").as_int64(), 3);
    auto page = json::parse(c().get("/v1/topics/space:app:feed/events?after=1").body);
    ASSERT_EQ(page.at("events").as_array().size(), 2U);
    EXPECT_EQ(page.at("events").at(1).at("data").at(0).as_int64(), 1);
    EXPECT_EQ(error_of(c().post("/v1/topics/job:x/events", R"({"type":"a"})"), 400), "bad_request");
    EXPECT_EQ(
        error_of(c().post("/v1/topics/space:x/events", R"({"type":"job.succeeded"})"), 400),
        "bad_request"
    );
    EXPECT_EQ(
        error_of(c().post("/v1/topics/bad%20topic/events", R"({"type":"a"})"), 400), "bad_request"
    );
    EXPECT_EQ(
        error_of(c().post("/v1/topics/space:x/events", R"({"events":[]})"), 400), "bad_request"
    );
    EXPECT_EQ(error_of(c().post("/v1/topics/space:x/events", "[1]"), 400), "bad_request");
    EXPECT_EQ(error_of(c().get("/v1/topics/space:x/events"), 404), "not_found")
        << "nothing was appended";
}

TEST_F(ApiTest, IdempotentSubmission) {
    auto first =
        post_ok("/v1/jobs", R"({"type":"noop","payload":{"a":1},"idempotency_key":"idem-1"})", 201);
    auto again =
        post_ok("/v1/jobs", R"({"payload":{"a":1},"type":"noop","idempotency_key":"idem-1"})", 200);
    EXPECT_EQ(first.at("id"), again.at("id"));
    const auto before = job_count();
    auto conflict =
        c().post("/v1/jobs", R"({"type":"noop","payload":{"a":2},"idempotency_key":"idem-1"})");
    EXPECT_EQ(error_of(conflict, 409), "idempotency_conflict");
    EXPECT_EQ(job_count(), before);
}

TEST_F(ApiTest, BatchSubmitsAtomically) {
    const auto before = job_count();
    auto bad = c().post(
        "/v1/jobs:batch", R"({"jobs":[{"type":"noop"},{"type":"noop","max_attempts":0}]})"
    );
    EXPECT_EQ(error_of(bad, 400), "bad_request");
    EXPECT_EQ(job_count(), before);
    auto ok =
        post_ok("/v1/jobs:batch", R"({"jobs":[{"type":"noop"},{"type":"noop"},{"type":"noop"}]})");
    EXPECT_EQ(ok.at("created").as_int64(), 3);
    EXPECT_EQ(ok.at("jobs").as_array().size(), 3U);
    std::string many = R"({"jobs":[)";
    for (int idx = 0; idx < 1001; ++idx) {
        many += std::string(idx ? "," : "") + R"({"type":"noop"})";
    }
    many += "]}";
    EXPECT_EQ(error_of(c().post("/v1/jobs:batch", many), 400), "bad_request");
}

TEST_F(ApiTest, BadInputGetsItsStatusAndChangesNothing) {
    const auto before = job_count();
    struct row {
        std::string body;
        int status;
        std::string code;
    };
    const std::vector<row> table{
        {"{", 400, "bad_request"},
        {"", 400, "bad_request"},
        {"[1,2]", 400, "bad_request"},
        {R"({"payload":{}})", 400, "bad_request"},
        {R"({"type":7})", 400, "bad_request"},
        {R"({"type":"nope"})", 422, "unknown_job_type"},
        {R"({"type":"noop","delay_s":-1})", 400, "bad_request"},
        {R"({"type":"noop","max_attempts":0})", 400, "bad_request"},
        {R"({"type":"noop","priority":"x"})", 400, "bad_request"},
        {R"({"type":"noop","topics":["a b"]})", 400, "bad_request"},
        {R"({"type":"noop","name":"'; DROP TABLE jobs; --"})", 400, "bad_request"},
        {"\xff\xfe\xfd", 400, "bad_request"},
        {std::string(100, '[') + std::string(100, ']'), 400, "bad_request"},
    };
    for (const auto& r : table) {
        auto res = c().post("/v1/jobs", r.body);
        EXPECT_EQ(error_of(res, r.status), r.code) << r.body;
    }
    EXPECT_EQ(job_count(), before);
    EXPECT_EQ(c().get("/healthz").status, 200);
}

TEST_F(ApiTest, QueryParametersAreValidated) {
    EXPECT_EQ(error_of(c().get("/v1/jobs?limit=0"), 400), "bad_request");
    EXPECT_EQ(error_of(c().get("/v1/jobs?limit=5000"), 400), "bad_request");
    EXPECT_EQ(error_of(c().get("/v1/jobs?limit=abc"), 400), "bad_request");
    EXPECT_EQ(error_of(c().get("/v1/jobs?state=sleeping"), 400), "bad_request");
    EXPECT_EQ(error_of(c().get("/v1/jobs?cursor=-4"), 400), "bad_request");
    EXPECT_EQ(error_of(c().get("/v1/topics/bad%20topic/events"), 400), "bad_request");
    EXPECT_EQ(error_of(c().get("/v1/topics/space:none/events"), 404), "not_found");
    auto job = post_ok("/v1/jobs", R"({"type":"noop"})");
    const auto id = std::string(job.at("id").as_string());
    EXPECT_EQ(error_of(c().get("/v1/jobs/" + id + "/events?after=-1"), 400), "bad_request");
    EXPECT_EQ(error_of(c().get("/v1/jobs/" + id + "/events?after=x"), 400), "bad_request");
}

TEST_F(ApiTest, UnknownJobIs404Everywhere) {
    const std::string missing = "0192ffff-0000-7000-8000-000000000000";
    EXPECT_EQ(error_of(c().get("/v1/jobs/" + missing), 404), "not_found");
    EXPECT_EQ(error_of(c().get("/v1/jobs/" + missing + "/events"), 404), "not_found");
    EXPECT_EQ(error_of(c().post("/v1/jobs/" + missing + "/cancel", "{}"), 404), "not_found");
    EXPECT_EQ(error_of(c().post("/v1/jobs/" + missing + "/retry", "{}"), 404), "not_found");
    EXPECT_EQ(
        error_of(c().post("/v1/jobs/" + missing + "/complete", R"({"lease_token":"x"})"), 404),
        "not_found"
    );
    EXPECT_EQ(error_of(c().get("/v1/nothing"), 404), "not_found");
}

TEST_F(ApiTest, CancelAndRetryFollowTheStateMachine) {
    auto job = post_ok("/v1/jobs", R"({"type":"sleep","payload":{"ms":1},"delay_s":60})");
    const auto id = std::string(job.at("id").as_string());
    EXPECT_EQ(error_of(c().post("/v1/jobs/" + id + "/retry", "{}"), 409), "invalid_transition");
    auto cancelled = post_ok("/v1/jobs/" + id + "/cancel", "{}", 200);
    EXPECT_EQ(cancelled.at("state").as_string(), "cancelled");
    EXPECT_EQ(error_of(c().post("/v1/jobs/" + id + "/cancel", "{}"), 409), "invalid_transition");
    auto retried = post_ok("/v1/jobs/" + id + "/retry", "{}", 200);
    EXPECT_EQ(retried.at("state").as_string(), "queued");
    wait_state(id, "succeeded");
    EXPECT_EQ(error_of(c().post("/v1/jobs/" + id + "/cancel", "{}"), 409), "invalid_transition");
    auto listed = json::parse(c().get("/v1/jobs?state=succeeded&type=sleep").body);
    bool found = false;
    for (const auto& j : listed.at("jobs").as_array()) {
        found = found || j.at("id").as_string() == id;
    }
    EXPECT_TRUE(found);
}

TEST_F(ApiTest, BulkRetryRetriesWhatItCanAndNamesTheRest) {
    // A failed job (a remote worker fails it for good), a cancelled one, a succeeded one.
    const auto failed = std::string(post_ok("/v1/jobs", R"({"type":"bulk"})").at("id").as_string());
    auto claimed = post_ok("/v1/workers/claim", R"({"worker":"w","types":["bulk"]})", 200);
    ASSERT_EQ(claimed.at("jobs").as_array().size(), 1U);
    const auto token = std::string(claimed.at("jobs").at(0).at("lease_token").as_string());
    post_ok(
        "/v1/jobs/" + failed + "/fail",
        R"({"lease_token":")" + token + R"(","error":"boom","retryable":false})",
        200
    );
    const auto cancelled =
        std::string(post_ok("/v1/jobs", R"({"type":"noop","delay_s":3600})").at("id").as_string());
    post_ok("/v1/jobs/" + cancelled + "/cancel", "{}", 200);
    const auto succeeded =
        std::string(post_ok("/v1/jobs", R"({"type":"noop"})").at("id").as_string());
    wait_state(succeeded, "succeeded");
    const std::string unknown = "0190f0aa-1111-7222-8333-444455556666";

    auto res = c().post(
        "/v1/jobs:retry",
        json::serialize(json::object{
            {"ids", json::array{failed, unknown, cancelled, succeeded, failed}}})
    );
    ASSERT_EQ(res.status, 200) << res.body;
    auto body = json::parse(res.body);
    const auto& retried = body.at("retried").as_array();
    ASSERT_EQ(retried.size(), 2U) << res.body;
    EXPECT_EQ(retried[0].at("id").as_string(), failed);
    EXPECT_EQ(retried[0].at("state").as_string(), "queued");
    EXPECT_EQ(retried[0].at("attempts").as_int64(), 0);
    EXPECT_EQ(retried[1].at("id").as_string(), cancelled);
    EXPECT_EQ(retried[1].at("state").as_string(), "queued");
    const auto& errors = body.at("errors").as_array();
    ASSERT_EQ(errors.size(), 2U) << res.body;
    EXPECT_EQ(errors[0].at("id").as_string(), unknown);
    EXPECT_EQ(errors[0].at("error").at("code").as_string(), "not_found");
    EXPECT_TRUE(errors[0].at("error").at("message").is_string());
    EXPECT_EQ(errors[1].at("id").as_string(), succeeded);
    EXPECT_EQ(errors[1].at("error").at("code").as_string(), "invalid_transition");
    EXPECT_EQ(json::parse(c().get("/v1/jobs/" + failed).body).at("state").as_string(), "queued");
    EXPECT_EQ(
        json::parse(c().get("/v1/jobs/" + succeeded).body).at("state").as_string(), "succeeded"
    );
}

TEST_F(ApiTest, BulkRetryRefusesABadBodyAndChangesNothing) {
    const auto id =
        std::string(post_ok("/v1/jobs", R"({"type":"noop","delay_s":3600})").at("id").as_string());
    post_ok("/v1/jobs/" + id + "/cancel", "{}", 200);
    json::array too_many;
    for (int idx = 0; idx < 1001; ++idx) {
        too_many.push_back(json::value(id));
    }
    for (const auto& bad :
         {std::string("not json"),
          std::string("[]"),
          std::string("{}"),
          std::string(R"({"ids":"x"})"),
          std::string(R"({"ids":[]})"),
          R"({"ids":[")" + id + R"(",5]})",
          json::serialize(json::object{{"ids", too_many}})}) {
        EXPECT_EQ(error_of(c().post("/v1/jobs:retry", bad), 400), "bad_request") << bad;
    }
    EXPECT_EQ(json::parse(c().get("/v1/jobs/" + id).body).at("state").as_string(), "cancelled");
}

TEST_F(ApiTest, ListPagesWithCursor) {
    for (int idx = 0; idx < 5; ++idx) {
        post_ok("/v1/jobs", R"({"type":"noop","queue":"paging"})");
    }
    auto page1 = json::parse(c().get("/v1/jobs?queue=paging&limit=3").body);
    ASSERT_EQ(page1.at("jobs").as_array().size(), 3U);
    const auto cursor = std::string(page1.at("next_cursor").as_string());
    auto page2 = json::parse(c().get("/v1/jobs?queue=paging&limit=3&cursor=" + cursor).body);
    EXPECT_EQ(page2.at("jobs").as_array().size(), 2U);
    EXPECT_TRUE(page2.at("next_cursor").is_null());
}

TEST_F(ApiTest, OversizedBodyIs413AndServerStaysUp) {
    const std::string huge = R"({"type":"noop","payload":")" + std::string(2 << 20, 'x') + R"("})";
    auto res = c().post("/v1/jobs", huge);
    EXPECT_EQ(error_of(res, 413), "payload_too_large");
    EXPECT_EQ(c().get("/healthz").status, 200);
}

TEST_F(ApiTest, HugeHeadersAre431AndGarbageIs400) {
    http::client raw_client(server_->url());
    const std::string big_header =
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 << 10, 'a') + "\r\n\r\n";
    EXPECT_EQ(raw_client.raw(big_header).substr(0, 3), "431");
    EXPECT_EQ(raw_client.raw("NOT HTTP AT ALL\r\n\r\n").substr(0, 3), "400");
    EXPECT_EQ(c().get("/healthz").status, 200);
}

TEST_F(ApiTest, KeepAliveServesManyRequestsOnOneConnection) {
    for (int idx = 0; idx < 50; ++idx) {
        ASSERT_EQ(c().get("/healthz").status, 200);
    }
}

// claim → fail (retryable) → backoff → claim → a stale-token complete is refused → complete.
TEST_F(ApiTest, RemoteWorkerProtocol) {
    auto job = post_ok("/v1/jobs", R"({"type":"transcribe","payload":{"file":"a.wav"}})");
    const auto id = std::string(job.at("id").as_string());
    auto first = post_ok(
        "/v1/workers/claim", R"({"worker":"w1","types":["transcribe"],"max":1,"wait_s":5})", 200
    );
    ASSERT_EQ(first.at("jobs").as_array().size(), 1U);
    const auto& c1 = first.at("jobs").at(0);
    EXPECT_EQ(c1.at("id").as_string(), id);
    EXPECT_EQ(c1.at("attempt").as_int64(), 1);
    EXPECT_EQ(c1.at("payload").at("file").as_string(), "a.wav");
    const auto token1 = std::string(c1.at("lease_token").as_string());
    const auto base = "/v1/jobs/" + id;

    auto beat = post_ok(
        base + "/heartbeat", R"({"lease_token":")" + token1 + R"(","progress":{"pct":10}})", 200
    );
    EXPECT_FALSE(beat.at("cancel_requested").as_bool());
    post_ok(
        base + "/steps/split", R"({"lease_token":")" + token1 + R"(","result":{"parts":3}})", 200
    );
    post_ok(
        base + "/events",
        R"({"lease_token":")" + token1 + R"(","type":"transcribe.part","data":{"n":1}})",
        201
    );
    EXPECT_EQ(
        error_of(
            c().post(
                base + "/events", R"({"lease_token":")" + token1 + R"(","type":"job.succeeded"})"
            ),
            400
        ),
        "bad_request"
    );

    auto failed = post_ok(
        base + "/fail",
        R"({"lease_token":")" + token1 + R"(","error":{"message":"GPU busy"},"retryable":true})",
        200
    );
    EXPECT_EQ(failed.at("state").as_string(), "queued");

    auto second = post_ok(
        "/v1/workers/claim", R"({"worker":"w2","types":["transcribe"],"max":1,"wait_s":10})", 200
    );
    ASSERT_EQ(second.at("jobs").as_array().size(), 1U);
    const auto& c2 = second.at("jobs").at(0);
    EXPECT_EQ(c2.at("attempt").as_int64(), 2);
    EXPECT_EQ(c2.at("steps").at("split").at("parts").as_int64(), 3)
        << "steps come back to the next attempt";
    const auto token2 = std::string(c2.at("lease_token").as_string());

    auto stale = c().post(
        base + "/complete", R"({"lease_token":")" + token1 + R"(","result":{"text":"stale"}})"
    );
    EXPECT_EQ(error_of(stale, 409), "lease_lost");
    EXPECT_EQ(
        error_of(c().post(base + "/heartbeat", R"({"lease_token":")" + token1 + R"("})"), 409),
        "lease_lost"
    );

    auto done = post_ok(
        base + "/complete", R"({"lease_token":")" + token2 + R"(","result":{"text":"hello"}})", 200
    );
    EXPECT_EQ(done.at("state").as_string(), "succeeded");
    EXPECT_EQ(done.at("result").at("text").as_string(), "hello");
    EXPECT_EQ(
        error_of(c().post(base + "/complete", R"({"lease_token":")" + token2 + R"("})"), 409),
        "lease_lost"
    );

    auto steps = json::parse(c().get(base + "/steps").body);
    EXPECT_EQ(steps.at("steps").at("split").at("parts").as_int64(), 3);
    auto events = json::parse(c().get(base + "/events").body).at("events").as_array();
    std::vector<std::string> types;
    for (const auto& e : events) {
        types.emplace_back(e.at("type").as_string());
    }
    EXPECT_EQ(
        types,
        (std::vector<std::string>{
            "job.queued",
            "job.started",
            "job.progress",
            "transcribe.part",
            "job.retrying",
            "job.started",
            "job.succeeded"})
    );
}

TEST_F(ApiTest, RemoteWorkerLearnsOfCancellationFromHeartbeat) {
    auto job = post_ok("/v1/jobs", R"({"type":"transcribe"})");
    const auto id = std::string(job.at("id").as_string());
    auto claimed =
        post_ok("/v1/workers/claim", R"({"worker":"w1","types":["transcribe"],"wait_s":5})", 200);
    const auto token = std::string(claimed.at("jobs").at(0).at("lease_token").as_string());
    post_ok("/v1/jobs/" + id + "/cancel", "{}", 200);
    auto beat =
        post_ok("/v1/jobs/" + id + "/heartbeat", R"({"lease_token":")" + token + R"("})", 200);
    EXPECT_TRUE(beat.at("cancel_requested").as_bool());
    auto complete =
        c().post("/v1/jobs/" + id + "/complete", R"({"lease_token":")" + token + R"("})");
    EXPECT_EQ(error_of(complete, 409), "invalid_transition");
}

TEST_F(ApiTest, RemoteWorkerBadInput) {
    EXPECT_EQ(
        error_of(c().post("/v1/workers/claim", R"({"types":["transcribe"]})"), 400), "bad_request"
    );
    EXPECT_EQ(
        error_of(c().post("/v1/workers/claim", R"({"worker":"w","types":["noop"]})"), 422),
        "unknown_job_type"
    );
    EXPECT_EQ(
        error_of(
            c().post("/v1/workers/claim", R"({"worker":"w","types":["transcribe"],"wait_s":-1})"),
            400
        ),
        "bad_request"
    );
    EXPECT_EQ(
        error_of(
            c().post("/v1/workers/claim", R"({"worker":"w","types":["transcribe"],"max":0})"), 400
        ),
        "bad_request"
    );
    for (const char* bad_max :
         {R"({"worker":"w","types":["transcribe"],"max":1e30})",
          R"({"worker":"w","types":["transcribe"],"max":2.5})"}) {
        EXPECT_EQ(error_of(c().post("/v1/workers/claim", bad_max), 400), "bad_request") << bad_max;
    }
    auto job = post_ok("/v1/jobs", R"({"type":"transcribe","delay_s":3600})");
    const auto id = std::string(job.at("id").as_string());
    EXPECT_EQ(error_of(c().post("/v1/jobs/" + id + "/complete", "{}"), 400), "bad_request")
        << "no lease_token";
    EXPECT_EQ(
        error_of(c().post("/v1/jobs/" + id + "/complete", R"({"lease_token":"nope"})"), 409),
        "lease_lost"
    );
    EXPECT_EQ(
        error_of(c().post("/v1/jobs/" + id + "/fail", R"({"lease_token":"nope"})"), 400),
        "bad_request"
    ) << "no error";
}

TEST_F(ApiTest, RemoteLeaseExpiresInSecondsAndJobIsReclaimed) {
    auto job = post_ok("/v1/jobs", R"({"type":"transcribe","max_attempts":3})");
    const auto id = std::string(job.at("id").as_string());
    auto claimed = post_ok(
        "/v1/workers/claim",
        R"({"worker":"dies","types":["transcribe"],"wait_s":5,"lease_s":1})",
        200
    );
    ASSERT_EQ(claimed.at("jobs").at(0).at("id").as_string(), id);
    // The worker "dies": no heartbeat. Within a few seconds the job is back and claimable.
    auto again =
        post_ok("/v1/workers/claim", R"({"worker":"w2","types":["transcribe"],"wait_s":10})", 200);
    ASSERT_EQ(again.at("jobs").as_array().size(), 1U);
    EXPECT_EQ(again.at("jobs").at(0).at("id").as_string(), id);
    EXPECT_EQ(again.at("jobs").at(0).at("attempt").as_int64(), 2);
    auto events = json::parse(c().get("/v1/jobs/" + id + "/events").body).at("events").as_array();
    EXPECT_EQ(events.at(2).at("type").as_string(), "job.retrying");
    EXPECT_EQ(events.at(2).at("data").at("error").at("code").as_string(), "lease_expired");
}

}  // namespace
}  // namespace conclave::test
