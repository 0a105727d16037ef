// GET /v1/stats over real HTTP on a fresh server: counts per queue and per type, and the jobs
// that ended in the newest throughput buckets.
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

class StatsTest : public ::testing::Test {
protected:
    void SetUp() override {
        const auto path = dir_.file("conclave.toml");
        FILE* f = std::fopen(path.c_str(), "w");
        std::fputs("[types.flaky]\nexecutor = \"remote\"\nmax_attempts = 1\n", f);
        std::fclose(f);
        server_ = std::make_unique<server_process>(
            dir_.file("stats.db"), std::vector<std::string>{"--config", path}
        );
        client_ = std::make_unique<http::client>(server_->url());
    }

    json::value post(const std::string& target, const std::string& body, int expected) {
        auto res = client_->post(target, body);
        EXPECT_EQ(res.status, expected) << target << " " << body << " -> " << res.body;
        return json::parse(res.body);
    }

    std::string submit(const std::string& body) {
        return std::string(post("/v1/jobs", body, 201).at("id").as_string());
    }

    void wait_state(const std::string& id, const std::string& state) {
        for (int idx = 0; idx < 500; ++idx) {
            auto job = json::parse(client_->get("/v1/jobs/" + id).body);
            if (job.at("state").as_string() == state) {
                return;
            }
            std::this_thread::sleep_for(20ms);
        }
        ADD_FAILURE() << id << " never reached " << state;
    }

    json::value stats() {
        auto res = client_->get("/v1/stats");
        EXPECT_EQ(res.status, 200) << res.body;
        return json::parse(res.body);
    }

    temp_dir dir_;
    std::unique_ptr<server_process> server_;
    std::unique_ptr<http::client> client_;
};

// {queued, active, succeeded, failed, cancelled} as written.
json::value counts(int queued, int active, int succeeded, int failed, int cancelled) {
    return json::object{
        {"queued", queued},
        {"active", active},
        {"succeeded", succeeded},
        {"failed", failed},
        {"cancelled", cancelled}};
}

TEST_F(StatsTest, CountsPerQueueAndTypeAndTheNewestBucketsHoldWhatEnded) {
    const auto before = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()
    )
                            .count();
    std::vector<std::string> noops;
    for (int idx = 0; idx < 3; ++idx) {
        noops.push_back(submit(R"({"type":"noop","queue":"alpha","payload":{"n":1}})"));
    }
    const auto flaky = submit(R"({"type":"flaky","queue":"beta"})");
    const auto parked = submit(R"({"type":"noop","queue":"beta","delay_s":3600})");
    for (const auto& id : noops) {
        wait_state(id, "succeeded");
    }
    auto claimed = post("/v1/workers/claim", R"({"worker":"w","types":["flaky"]})", 200);
    ASSERT_EQ(claimed.at("jobs").as_array().size(), 1U);
    const auto token = std::string(claimed.at("jobs").at(0).at("lease_token").as_string());
    post(
        "/v1/jobs/" + flaky + "/fail",
        R"({"lease_token":")" + token + R"(","error":"boom","retryable":false})",
        200
    );
    post("/v1/jobs/" + parked + "/cancel", "", 200);

    auto s = stats();
    EXPECT_EQ(s.at("jobs"), counts(0, 0, 3, 1, 1));
    EXPECT_EQ(s.at("running_here").as_int64(), 0);
    EXPECT_EQ(s.at("queues").at("alpha"), counts(0, 0, 3, 0, 0));
    EXPECT_EQ(s.at("queues").at("beta"), counts(0, 0, 0, 1, 1));
    EXPECT_EQ(s.at("queues").as_object().size(), 2U);
    EXPECT_EQ(s.at("types").at("noop"), counts(0, 0, 3, 0, 1));
    EXPECT_EQ(s.at("types").at("flaky"), counts(0, 0, 0, 1, 0));
    EXPECT_EQ(s.at("types").as_object().size(), 2U);

    const auto& tp = s.at("throughput");
    EXPECT_EQ(tp.at("bucket_s").as_int64(), 10);
    const auto& buckets = tp.at("buckets").as_array();
    ASSERT_EQ(buckets.size(), 60U);
    for (std::size_t idx = 1; idx < buckets.size(); ++idx) {
        EXPECT_EQ(buckets[idx].at("t").as_int64(), buckets[idx - 1].at("t").as_int64() + 10);
    }
    const auto newest = buckets.back().at("t").as_int64();
    EXPECT_EQ(newest % 10, 0);
    EXPECT_GE(newest + 10, before);
    // The test takes well under 10 s, so everything ended in the newest two buckets.
    std::int64_t succeeded = 0, failed = 0, cancelled = 0, earlier = 0;
    for (std::size_t idx = 0; idx < buckets.size(); ++idx) {
        const auto& b = buckets[idx];
        const auto n =
            b.at("succeeded").as_int64() + b.at("failed").as_int64() + b.at("cancelled").as_int64();
        if (idx + 2 < buckets.size()) {
            earlier += n;
            continue;
        }
        succeeded += b.at("succeeded").as_int64();
        failed += b.at("failed").as_int64();
        cancelled += b.at("cancelled").as_int64();
    }
    EXPECT_EQ(succeeded, 3);
    EXPECT_EQ(failed, 1);
    EXPECT_EQ(cancelled, 1);
    EXPECT_EQ(earlier, 0);
}

}  // namespace
}  // namespace conclave::test
