// Provider budgets through the real server against tools/fake-llm: a council whose provider is
// short of tokens holds a member back (saying so in the job's events) and finishes; one whose
// provider spent the day's dollars waits — active, not failed — until it is cancelled.
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

class BudgetTest : public ::testing::Test {
protected:
    // Starts fake-llm (8-token answers, 0.0001 USD a token) and the server with `budget` added
    // to provider "fake", a council of three members and a chairman on it.
    void start(const std::string& budget) {
        const auto script = dir_.file("script.json");
        std::ofstream(script) << R"({"default": {"tokens": 8, "token_ms": 20}})";
        fake_ = std::make_unique<server_process>(
            std::vector<std::string>{
                fake_llm_binary(), "--listen", "127.0.0.1:0", "--script", script},
            server_process::command_line
        );
        const auto config = dir_.file("conclave.toml");
        std::ofstream(config) << "[providers.fake]\nbase_url = \"" << fake_->url() << "/v1\"\n"
                              << budget
                              << "\n[council]\nmembers = [\"fake:a\", \"fake:b\", \"fake:c\"]\n"
                                 "chairman = \"fake:chair\"\n";
        server_ = std::make_unique<server_process>(
            dir_.file("c.db"), std::vector<std::string>{"--config", config}
        );
    }

    std::string submit() {
        auto res = http::client(server_->url())
                       .post("/v1/jobs", R"({"type":"council","payload":{"question":"Why?"}})");
        EXPECT_EQ(res.status, 201) << res.body;
        return std::string(json::parse(res.body).at("id").as_string());
    }

    std::string state(const std::string& id) {
        auto body = http::client(server_->url()).get("/v1/jobs/" + id).body;
        return std::string(json::parse(body).at("state").as_string());
    }

    std::string wait_for_end(const std::string& id) {
        for (int tries = 0; tries < 400; ++tries) {
            auto s = state(id);
            if (s != "queued" && s != "active") {
                return s;
            }
            std::this_thread::sleep_for(50ms);
        }
        return "still " + state(id);
    }

    json::array events(const std::string& id) {
        auto page = json::parse(
            http::client(server_->url()).get("/v1/jobs/" + id + "/events?after=0&limit=1000").body
        );
        return page.at("events").as_array();
    }

    // The first event of `type` whose data's `part` is `part` (any part when empty).
    static const json::object* find(
        const json::array& events, const std::string& type, const std::string& part = ""
    ) {
        for (const auto& e : events) {
            const auto* data_part = e.at("data").as_object().if_contains("part");
            const bool part_matches =
                part.empty() || (data_part && data_part->is_string() &&
                                 data_part->as_string() == std::string_view(part));
            if (e.at("type").as_string() == std::string_view(type) && part_matches) {
                return &e.as_object();
            }
        }
        return nullptr;
    }

    int calls(const std::string& model, const std::string& kind) {
        return fake_llm_calls(fake_->url(), model, kind);
    }

    temp_dir dir_;
    std::unique_ptr<server_process> fake_;
    std::unique_ptr<server_process> server_;
};

TEST_F(BudgetTest, AMemberShortOfTokensWaitsForTheOthersAndTheCouncilFinishes) {
    // Each stage-1 call reserves its prompt plus 2500 answer tokens: two fit in the 6000-token
    // minute, the third waits until an earlier call settles with its real usage (~10 tokens).
    start("tokens_per_minute = 6000\nreserve_output_tokens = 2500");
    const auto id = submit();
    ASSERT_EQ(wait_for_end(id), "succeeded");
    const auto all = events(id);
    const auto* wait = find(all, "llm.budget_wait");
    ASSERT_NE(wait, nullptr) << json::serialize(all);
    const auto& data = wait->at("data").as_object();
    EXPECT_EQ(data.at("provider"), "fake");
    EXPECT_EQ(data.at("budget"), "tokens_per_minute");
    EXPECT_TRUE(data.at("until").is_string());
    EXPECT_GT(data.at("needed").to_number<double>(), data.at("available").to_number<double>());
    const std::string part(data.at("part").as_string());
    // The held-back call started streaming only after another call had finished and settled.
    const auto* first_text = find(all, "stage1.delta", part);
    const auto* other_done = find(all, "stage1.model_complete");
    ASSERT_NE(first_text, nullptr) << part;
    ASSERT_NE(other_done, nullptr);
    EXPECT_GT(first_text->at("offset").as_int64(), wait->at("offset").as_int64());
    EXPECT_GT(first_text->at("offset").as_int64(), other_done->at("offset").as_int64());
    auto metrics = http::client(server_->url()).get("/metrics").body;
    EXPECT_NE(
        metrics.find(
            "conclave_llm_budget_waits_total{budget=\"tokens_per_minute\",provider=\"fake\"}"
        ),
        std::string::npos
    ) << metrics.substr(0, 2000);
}

TEST_F(BudgetTest, ACouncilPastTheDaysDollarsWaitsActiveUntilCancelled) {
    // The first answers teach the budget the price (0.0001 USD a token) and spend 0.0024 USD,
    // past the 0.0005 of the day: every ranking call waits for tomorrow.
    start("usd_per_day = 0.0005");
    const auto id = submit();
    const json::object* wait = nullptr;
    json::array all;
    for (int tries = 0; tries < 200 && !wait; ++tries) {
        std::this_thread::sleep_for(50ms);
        all = events(id);
        wait = find(all, "llm.budget_wait");
    }
    ASSERT_NE(wait, nullptr) << json::serialize(all);
    EXPECT_EQ(wait->at("data").at("budget"), "usd_per_day");
    EXPECT_EQ(std::string(wait->at("data").at("part").as_string()).substr(0, 7), "stage2/");
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(state(id), "active") << "waiting, not failed";
    EXPECT_EQ(calls("a", "ranking") + calls("b", "ranking") + calls("c", "ranking"), 0);
    EXPECT_EQ(calls("a", "answer"), 1);
    auto res = http::client(server_->url()).post("/v1/jobs/" + id + "/cancel", "{}");
    EXPECT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(wait_for_end(id), "cancelled") << "a waiting call ends when its job is cancelled";
}

}  // namespace
}  // namespace conclave::test
