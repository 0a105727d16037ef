// The OpenAI-compatible client against tools/fake-llm over real HTTP: streaming, usage, retries
// (500, 429 with Retry-After), no retry on auth errors, a stream cut mid-way, and a bad URL.
#include "llm/openai_client.hpp"

#include <fstream>

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "http/client.hpp"
#include "support/run_coro.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace conclave::llm {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

class OpenAiClientTest : public ::testing::Test {
protected:
    OpenAiClientTest() {
        const auto script = dir_.file("script.json");
        std::ofstream(script) << R"({
            "default": {"tokens": 12, "token_ms": 1},
            "models": {
                "flaky500": {"status": 500, "fail_times": 2},
                "busy429": {"status": 429, "retry_after_s": 0.3, "fail_times": 1},
                "locked401": {"status": 401, "fail_times": 1000},
                "down500": {"status": 503, "fail_times": 1000},
                "cut": {"disconnect_after": 4},
                "paced": {"tokens": 6, "token_ms": 150, "stamp": true}
            }})";
        fake_ = std::make_unique<test::server_process>(
            std::vector<std::string>{
                test::fake_llm_binary(), "--listen", "127.0.0.1:0", "--script", script},
            test::server_process::command_line
        );
        openai_options options;
        options.base_url = fake_->url() + "/v1";
        options.api_key = "test-key";
        options.backoff_base = 50ms;
        options.backoff_cap = 2s;
        provider_ = openai_provider::create(options).value();
    }

    struct outcome {
        result<completion> done = fail(errc::internal, "not run");
        std::string streamed;
        double seconds = 0;
    };

    outcome ask(const std::string& model) {
        outcome out;
        test::run_coro([&](auto&) -> net::awaitable<void> {
            chat_request r{.model = model, .messages = {{"user", "hello"}}};
            auto sink = [&](std::string text) -> net::awaitable<void> {
                out.streamed += text;
                co_return;
            };
            const auto start = std::chrono::steady_clock::now();
            out.done = co_await provider_->stream(std::move(r), sink);
            out.seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        });
        return out;
    }

    int calls(const std::string& model) {
        auto stats = json::parse(http::client(fake_->url()).get("/stats").body);
        const auto* m = stats.at("calls").as_object().if_contains(model);
        return m ? static_cast<int>(m->at("answer").as_int64()) : 0;
    }

    test::temp_dir dir_;
    std::unique_ptr<test::server_process> fake_;
    std::shared_ptr<openai_provider> provider_;
};

TEST_F(OpenAiClientTest, StreamsTextUsageAndCost) {
    auto r = ask("good");
    ASSERT_TRUE(r.done.has_value()) << r.done.error().message;
    EXPECT_EQ(r.done->text, "Answer from good: t0 t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11");
    EXPECT_EQ(r.streamed, r.done->text) << "every piece went through the sink";
    EXPECT_EQ(r.done->finish_reason, "stop");
    EXPECT_EQ(r.done->usage.completion_tokens, 15);
    ASSERT_TRUE(r.done->usage.cost.has_value());
    EXPECT_NEAR(*r.done->usage.cost, 0.0015, 1e-9);
    EXPECT_FALSE(r.done->simulated);
}

// Each token reaches the sink as it arrives, not when a read buffer fills: the first token is
// in hand long before the last one is even sent (fake-llm stamps each with its send time).
TEST_F(OpenAiClientTest, TokensReachTheSinkAsTheyArrive) {
    std::vector<std::pair<std::int64_t, std::int64_t>> seen;  // (sent, received) in µs
    auto now_us = [] {
        return std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::system_clock::now().time_since_epoch()
        )
            .count();
    };
    test::run_coro([&](auto&) -> net::awaitable<void> {
        chat_request r{.model = "paced", .messages = {{"user", "hello"}}};
        auto sink = [&](std::string text) -> net::awaitable<void> {
            const auto at = text.rfind('@');
            if (at != std::string::npos) {
                seen.emplace_back(std::stoll(text.substr(at + 1)), now_us());
            }
            co_return;
        };
        auto done = co_await provider_->stream(std::move(r), sink);
        EXPECT_TRUE(done.has_value());
    });
    ASSERT_GE(seen.size(), 6U);
    EXPECT_LT(seen.front().second, seen.back().first)
        << "the first token arrived only after the last was sent: reads are buffered";
}

TEST_F(OpenAiClientTest, RetriesServerErrorsAndHonoursRetryAfter) {
    auto flaky = ask("flaky500");
    ASSERT_TRUE(flaky.done.has_value()) << flaky.done.error().message;
    EXPECT_EQ(calls("flaky500"), 3) << "two 500s, then the answer";
    auto busy = ask("busy429");
    ASSERT_TRUE(busy.done.has_value()) << busy.done.error().message;
    EXPECT_EQ(calls("busy429"), 2);
    EXPECT_GE(busy.seconds, 0.29) << "waited the 0.3 s Retry-After";
    auto down = ask("down500");
    ASSERT_FALSE(down.done.has_value());
    EXPECT_EQ(down.done.error().code, errc::unavailable);
    EXPECT_NE(down.done.error().message.find("fake failure 503"), std::string::npos)
        << down.done.error().message;
    EXPECT_EQ(calls("down500"), 4) << "the first try and three retries";
}

TEST_F(OpenAiClientTest, AuthErrorsAreNotRetried) {
    auto r = ask("locked401");
    ASSERT_FALSE(r.done.has_value());
    EXPECT_EQ(r.done.error().code, errc::unauthorized);
    EXPECT_NE(r.done.error().message.find("fake failure 401"), std::string::npos);
    EXPECT_EQ(calls("locked401"), 1);
}

TEST_F(OpenAiClientTest, AStreamCutMidwayFailsCleanlyWithoutRetry) {
    auto r = ask("cut");
    ASSERT_FALSE(r.done.has_value());
    EXPECT_NE(r.done.error().message.find("broke"), std::string::npos) << r.done.error().message;
    EXPECT_EQ(r.streamed, "Answer from cut: t0") << "what came before the cut went out";
    EXPECT_EQ(calls("cut"), 1) << "text already streamed: no retry";
}

TEST_F(OpenAiClientTest, UnreachableServerAndBadUrls) {
    openai_options options;
    options.base_url = "http://127.0.0.1:1/v1";
    options.max_retries = 1;
    options.backoff_base = 10ms;
    auto dead = openai_provider::create(options).value();
    test::run_coro([&](auto&) -> net::awaitable<void> {
        chat_request r{.model = "x", .messages = {{"user", "hi"}}};
        auto sink = [](std::string) -> net::awaitable<void> { co_return; };
        auto done = co_await dead->stream(std::move(r), sink);
        EXPECT_FALSE(done.has_value());
        EXPECT_EQ(done.error().code, errc::unavailable);
    });
    options.base_url = "ftp://example.com";
    EXPECT_FALSE(openai_provider::create(options).has_value());
    options.base_url = "not a url";
    EXPECT_FALSE(openai_provider::create(options).has_value());
}

}  // namespace
}  // namespace conclave::llm
