// The council through the real server and the real client, against tools/fake-llm: a full
// council's events and result, and kill -9 during stage 2 — after a restart the council
// finishes and no member's stage-1 answer is paid for twice.
#include <fstream>
#include <thread>

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "http/client.hpp"
#include "support/fake_llm_stats.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace conclave::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

class CouncilTest : public ::testing::Test {
protected:
    CouncilTest() {
        const auto script = dir_.file("script.json");
        // Fast answers; slow rankings (so a test can kill the server during stage 2); a member
        // that always fails.
        std::ofstream(script) << R"({
            "default": {"tokens": 8, "token_ms": 2, "ranking": {"tokens": 8, "token_ms": 300}},
            "models": {"down": {"status": 500, "fail_times": 1000000}}})";
        fake_ = std::make_unique<server_process>(
            std::vector<std::string>{
                fake_llm_binary(), "--listen", "127.0.0.1:0", "--script", script},
            server_process::command_line
        );
        config_ = dir_.file("conclave.toml");
        std::ofstream(config_) << "[providers.fake]\nbase_url = \"" << fake_->url()
                               << "/v1\"\nmax_retries = 1\n"
                                  "[council]\nmembers = [\"fake:a\", \"fake:b\", \"fake:down\"]\n"
                                  "chairman = \"fake:chair\"\n";
        start();
    }

    void start() {
        server_ = std::make_unique<server_process>(
            dir_.file("c.db"), std::vector<std::string>{"--config", config_}
        );
    }

    json::object job(const std::string& id) {
        return json::parse(http::client(server_->url()).get("/v1/jobs/" + id).body).as_object();
    }

    json::object wait_until_done(const std::string& id) {
        for (int tries = 0; tries < 600; ++tries) {
            auto j = job(id);
            if (j.at("state") == "succeeded" || j.at("state") == "failed") {
                return j;
            }
            std::this_thread::sleep_for(50ms);
        }
        ADD_FAILURE() << "council " << id << " did not finish";
        return {};
    }

    std::vector<std::string> event_types(const std::string& id) {
        auto page = json::parse(
            http::client(server_->url()).get("/v1/jobs/" + id + "/events?after=0&limit=1000").body
        );
        std::vector<std::string> out;
        for (const auto& e : page.at("events").as_array()) {
            out.emplace_back(e.at("type").as_string());
        }
        return out;
    }

    int calls(const std::string& model, const std::string& kind) {
        return fake_llm_calls(fake_->url(), model, kind);
    }

    std::string submit() {
        auto res = http::client(server_->url())
                       .post("/v1/jobs", R"({"type":"council","payload":{"question":"Why?"}})");
        EXPECT_EQ(res.status, 201) << res.body;
        return std::string(json::parse(res.body).at("id").as_string());
    }

    temp_dir dir_;
    std::unique_ptr<server_process> fake_;
    std::string config_;
    std::unique_ptr<server_process> server_;
};

TEST_F(CouncilTest, FullCouncilOverRealHttp) {
    const auto id = submit();
    auto done = wait_until_done(id);
    ASSERT_EQ(done.at("state"), "succeeded") << json::serialize(done);
    const auto& r = done.at("result").as_object();
    EXPECT_EQ(r.at("stage1").at(0).at("response"), "Answer from a: t0 t1 t2 t3 t4 t5 t6 t7");
    EXPECT_NE(
        std::string(r.at("stage1").at(2).at("error").as_string()).find("fake failure 500"),
        std::string::npos
    );
    EXPECT_EQ(r.at("stage3").at("model"), "fake:chair");
    EXPECT_EQ(r.at("metadata").at("simulated"), false);
    // fake-llm ranks in reverse order of what it is shown ("Response B" first), and both
    // working members are shown the same two answers: the model labelled B averages 1, the
    // one labelled A averages 2 (the failed member's ranking does not count).
    const auto& meta = r.at("metadata").as_object();
    const auto& agg = meta.at("aggregate_rankings").as_array();
    ASSERT_EQ(agg.size(), 2U);
    EXPECT_EQ(agg.at(0).at("model"), meta.at("label_to_model").at("Response B"));
    EXPECT_DOUBLE_EQ(agg.at(0).at("average_rank").to_number<double>(), 1.0);
    EXPECT_EQ(agg.at(0).at("rankings_count"), 2);
    EXPECT_DOUBLE_EQ(agg.at(1).at("average_rank").to_number<double>(), 2.0);
    EXPECT_GT(r.at("metadata").at("usage").at("cost").to_number<double>(), 0);
    auto types = event_types(id);
    auto pos = [&](const std::string& t) {
        return std::find(types.begin(), types.end(), t) - types.begin();
    };
    EXPECT_LT(pos("stage1.start"), pos("stage1.complete"));
    EXPECT_LT(pos("stage1.complete"), pos("stage2.start"));
    EXPECT_LT(pos("stage2.complete"), pos("stage3.start"));
    EXPECT_LT(pos("stage3.complete"), pos("job.succeeded"));
    EXPECT_EQ(types.back(), "job.succeeded");
}

TEST_F(CouncilTest, KillNineDuringStageTwoResumesWithoutPayingTwice) {
    const auto id = submit();
    // Wait for stage 2 to be under way (rankings take ~2.4 s each).
    bool ranking = false;
    for (int tries = 0; tries < 200 && !ranking; ++tries) {
        auto types = event_types(id);
        ranking = std::find(types.begin(), types.end(), "stage2.start") != types.end();
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_TRUE(ranking);
    std::this_thread::sleep_for(200ms);
    server_->kill_hard();
    start();
    auto done = wait_until_done(id);
    ASSERT_EQ(done.at("state"), "succeeded") << json::serialize(done);
    EXPECT_GE(done.at("attempts").as_int64(), 2) << "the restart started a second attempt";
    EXPECT_EQ(calls("a", "answer"), 1) << "stage 1 is a step: not asked again";
    EXPECT_EQ(calls("b", "answer"), 1);
    EXPECT_GE(calls("a", "ranking"), 2) << "the interrupted ranking was asked again";
    EXPECT_EQ(calls("chair", "synthesis"), 1);
    const auto& r = done.at("result").as_object();
    EXPECT_EQ(r.at("stage2").as_array().size(), 3U);
}

}  // namespace
}  // namespace conclave::test
