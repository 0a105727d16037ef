// Conversations through the real server against tools/fake-llm over real HTTP: both APIs' event
// sequences, what is persisted, a client leaving after stage 1, kill -9 during stage 2 of a
// conversation's council, failing members and chairman, and bad input.
#include <fstream>
#include <thread>

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "http/client.hpp"
#include "http/sse_client.hpp"
#include "support/fake_llm_stats.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace conclave::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

class ConversationTest : public ::testing::Test {
protected:
    ConversationTest() {
        const auto script = dir_.file("script.json");
        // Quick answers, rankings slow enough to kill the server during stage 2; members that
        // fail in each way a provider fails.
        std::ofstream(script) << R"({
            "default": {"tokens": 8, "token_ms": 2, "ranking": {"tokens": 8, "token_ms": 150}},
            "models": {
                "down": {"status": 500, "fail_times": 1000000},
                "flaky": {"status": 429, "fail_times": 1, "retry_after_s": 1},
                "cut": {"disconnect_after": 3},
                "badchair": {"status": 401, "fail_times": 1000000}}})";
        fake_ = std::make_unique<server_process>(
            std::vector<std::string>{
                fake_llm_binary(), "--listen", "127.0.0.1:0", "--script", script},
            server_process::command_line
        );
        config_ = dir_.file("conclave.toml");
        std::ofstream(config_) << "[providers.fake]\nbase_url = \"" << fake_->url()
                               << "/v1\"\nmax_retries = 2\n"
                                  "[council]\nmembers = [\"fake:a\", \"fake:b\", \"fake:down\"]\n"
                                  "chairman = \"fake:chair\"\ntitle_model = \"fake:titler\"\n";
        start();
    }

    void start() {
        server_ = std::make_unique<server_process>(
            dir_.file("c.db"), std::vector<std::string>{"--config", config_}
        );
    }

    http::client_response call(
        const std::string& method, const std::string& target, const std::string& body = {}
    ) {
        return http::client(server_->url()).request(method, target, body);
    }

    json::value get_json(const std::string& target) {
        auto res = call("GET", target);
        EXPECT_EQ(res.status, 200) << target << ": " << res.body;
        return json::parse(res.body);
    }

    std::string create(const std::string& prefix, const std::string& body = "{}") {
        auto res = call("POST", prefix + "/conversations", body);
        EXPECT_EQ(res.status, prefix == "/api" ? 200 : 201) << res.body;
        return std::string(json::parse(res.body).at("id").as_string());
    }

    // Waits until the conversation holds `count` messages and is no longer active.
    json::object wait_for_messages(const std::string& id, std::size_t count) {
        json::object c;
        for (int tries = 0; tries < 400; ++tries) {
            c = get_json("/v1/conversations/" + id).as_object();
            if (c.at("messages").as_array().size() >= count &&
                c.at("processing_state") != "active") {
                return c;
            }
            std::this_thread::sleep_for(50ms);
        }
        ADD_FAILURE() << "conversation " << id << " did not get " << count << " messages";
        return c;
    }

    int calls(const std::string& model, const std::string& kind) {
        return fake_llm_calls(fake_->url(), model, kind);
    }

    // The `data:` payloads of an llm-council stream, as that client reads them.
    static std::vector<json::object> payloads(const http::sse_result& r) {
        std::vector<json::object> out;
        for (const auto& e : r.events) {
            out.push_back(json::parse(e.data).as_object());
        }
        return out;
    }

    static std::vector<std::string> types_of(const std::vector<json::object>& events) {
        std::vector<std::string> out;
        for (const auto& e : events) {
            out.emplace_back(e.at("type").as_string());
        }
        return out;
    }

    temp_dir dir_;
    std::unique_ptr<server_process> fake_;
    std::string config_;
    std::unique_ptr<server_process> server_;
};

TEST_F(ConversationTest, LlmCouncilStreamSequenceAndTheSavedConversation) {
    const auto id = create("/api");
    http::sse_request req;
    req.method = "POST";
    req.target = "/api/conversations/" + id + "/message/stream";
    req.body = R"({"content":"Why is the sky blue?"})";
    req.timeout = 30s;
    auto r = http::read_sse(server_->url(), req);
    EXPECT_EQ(r.status, 200);
    const auto events = payloads(r);
    EXPECT_EQ(
        types_of(events),
        (std::vector<std::string>{
            "stage1_start",
            "stage1_complete",
            "stage2_start",
            "stage2_complete",
            "stage3_start",
            "stage3_complete",
            "title_complete",
            "complete"})
    );
    ASSERT_EQ(events.size(), 8U);
    const auto& stage1 = events[1].at("data").as_array();
    ASSERT_EQ(stage1.size(), 2U) << "the failed member is left out of the client's stage 1";
    EXPECT_EQ(stage1.at(0).at("response"), "Answer from a: t0 t1 t2 t3 t4 t5 t6 t7");
    // fake-llm ranks in reverse order of what it is shown: the model labelled B averages 1.
    const auto& meta = events[3].at("metadata").as_object();
    const auto& agg = meta.at("aggregate_rankings").as_array();
    ASSERT_EQ(agg.size(), 2U);
    EXPECT_EQ(agg.at(0).at("model"), meta.at("label_to_model").at("Response B"));
    EXPECT_DOUBLE_EQ(agg.at(0).at("average_rank").to_number<double>(), 1.0);
    EXPECT_DOUBLE_EQ(agg.at(1).at("average_rank").to_number<double>(), 2.0);
    EXPECT_EQ(events[3].at("data").as_array().at(0).at("parsed_ranking").as_array().size(), 2U);
    EXPECT_EQ(events[5].at("data").at("model"), "fake:chair");
    EXPECT_EQ(events[6].at("data").at("title"), "Fake Title From titler");

    const auto c = get_json("/api/conversations/" + id).as_object();
    EXPECT_EQ(c.at("title"), "Fake Title From titler");
    const auto& messages = c.at("messages").as_array();
    ASSERT_EQ(messages.size(), 2U);
    EXPECT_EQ(messages[0].at("role"), "user");
    EXPECT_EQ(messages[0].at("content"), "Why is the sky blue?");
    EXPECT_EQ(messages[1].at("role"), "assistant");
    EXPECT_EQ(messages[1].at("stage1"), events[1].at("data"));
    EXPECT_EQ(messages[1].at("stage2"), events[3].at("data"));
    EXPECT_EQ(messages[1].at("stage3"), events[5].at("data"));
    EXPECT_EQ(messages[1].at("metadata").at("aggregate_rankings"), meta.at("aggregate_rankings"));
    const auto list = get_json("/api/conversations").as_array();
    ASSERT_EQ(list.size(), 1U);
    EXPECT_EQ(list[0].at("message_count"), 2);

    // The stream can be re-joined after the fact: the same sequence again.
    http::sse_request again;
    again.target = "/api/conversations/" + id + "/stream";
    EXPECT_EQ(types_of(payloads(http::read_sse(server_->url(), again))), types_of(events));
}

TEST_F(ConversationTest, NonStreamingMessageAnswersWhatTheConversationSaves) {
    const auto id = create("/api");
    auto res = call(
        "POST", "/api/conversations/" + id + "/message", R"({"content":"Why is the sky blue?"})"
    );
    ASSERT_EQ(res.status, 200) << res.body;
    auto answer = json::parse(res.body).as_object();
    EXPECT_EQ(answer.size(), 4U) << res.body;
    ASSERT_TRUE(
        answer.contains("stage1") && answer.contains("stage2") && answer.contains("stage3") &&
        answer.contains("metadata")
    ) << res.body;
    ASSERT_EQ(answer.at("stage1").as_array().size(), 2U) << "the failed member is left out";
    EXPECT_EQ(answer.at("stage1").at(0).at("response"), "Answer from a: t0 t1 t2 t3 t4 t5 t6 t7");
    EXPECT_EQ(answer.at("stage2").as_array().size(), 2U);
    EXPECT_EQ(answer.at("stage3").at("model"), "fake:chair");
    EXPECT_EQ(answer.at("metadata").at("aggregate_rankings").as_array().size(), 2U);
    EXPECT_EQ(answer.at("metadata").at("title"), "Fake Title From titler");

    const auto c = get_json("/api/conversations/" + id).as_object();
    EXPECT_EQ(c.at("title"), "Fake Title From titler");
    const auto& messages = c.at("messages").as_array();
    ASSERT_EQ(messages.size(), 2U);
    EXPECT_EQ(messages[0].at("content"), "Why is the sky blue?");
    auto saved = messages[1].as_object();
    EXPECT_EQ(saved.at("role"), "assistant");
    saved.erase("role");
    EXPECT_EQ(json::value(saved), json::value(answer));
}

TEST_F(ConversationTest, NativeApiEventsPersistedFieldsBusyAndMultiTurn) {
    const auto id = create("/v1");
    auto res = call("POST", "/v1/conversations/" + id + "/messages", R"({"content":"First?"})");
    ASSERT_EQ(res.status, 202) << res.body;
    const auto accepted = json::parse(res.body).as_object();
    const std::string stream_url(accepted.at("stream_url").as_string());
    auto busy = call("POST", "/v1/conversations/" + id + "/messages", R"({"content":"Second?"})");
    EXPECT_EQ(busy.status, 409);
    EXPECT_EQ(json::parse(busy.body).at("error").at("code"), "conversation_busy");

    http::sse_request req;
    req.target = stream_url;
    req.timeout = 30s;
    auto r = http::read_sse(server_->url(), req);
    std::vector<std::string> types;
    for (const auto& e : r.events) {
        types.push_back(e.type);
    }
    auto pos = [&](const std::string& t) {
        return std::find(types.begin(), types.end(), t) - types.begin();
    };
    ASSERT_LT(pos("job.succeeded"), static_cast<long>(types.size()));
    EXPECT_LT(pos("stage1.start"), pos("stage1.delta"));
    EXPECT_LT(pos("stage1.delta"), pos("stage1.model_complete"));
    EXPECT_LT(pos("stage1.model_complete"), pos("stage1.complete"));
    EXPECT_LT(pos("title"), pos("stage2.start"));
    EXPECT_LT(pos("stage1.complete"), pos("stage2.start"));
    EXPECT_LT(pos("stage2.complete"), pos("stage3.start"));
    EXPECT_LT(pos("stage3.start"), pos("stage3.delta"));
    EXPECT_LT(pos("stage3.complete"), pos("job.succeeded"));
    EXPECT_EQ(types.back(), "end");

    auto c = wait_for_messages(id, 2);
    EXPECT_EQ(c.at("processing_state"), "idle");
    EXPECT_EQ(c.at("title"), "Fake Title From titler");
    const auto& answer = c.at("messages").at(1).as_object();
    EXPECT_EQ(answer.at("role"), "assistant");
    EXPECT_EQ(answer.at("job_id"), accepted.at("job_id"));
    EXPECT_EQ(answer.at("stage1").as_array().size(), 3U) << "native keeps the failed member";
    EXPECT_NE(
        std::string(answer.at("stage1").at(2).at("error").as_string()).find("fake failure 500"),
        std::string::npos
    );
    EXPECT_EQ(answer.at("stage3").at("model"), "fake:chair");
    EXPECT_EQ(answer.at("content"), answer.at("stage3").at("response"));
    const auto& meta = answer.at("metadata").as_object();
    EXPECT_EQ(meta.at("label_to_model").as_object().size(), 2U);
    EXPECT_GT(meta.at("usage").at("completion_tokens").as_int64(), 0);
    EXPECT_GT(meta.at("usage").at("cost").to_number<double>(), 0);
    EXPECT_EQ(meta.at("errors").as_array().size(), 2U) << "down fails in stage 1 and stage 2";

    // A second turn: the same conversation, title kept, four messages.
    res = call("POST", "/v1/conversations/" + id + "/messages", R"({"content":"Second?"})");
    ASSERT_EQ(res.status, 202) << res.body;
    c = wait_for_messages(id, 4);
    EXPECT_EQ(c.at("title"), "Fake Title From titler");
    EXPECT_EQ(c.at("messages").at(2).at("content"), "Second?");
    EXPECT_EQ(c.at("messages").at(3).at("role"), "assistant");
    EXPECT_EQ(calls("titler", "title"), 1) << "only the first message names the conversation";
    EXPECT_EQ(get_json("/v1/conversations").at("conversations").as_array().size(), 1U);
}

TEST_F(ConversationTest, LeavingAfterStageOneStillSavesTheWholeMessage) {
    const auto id = create("/api");
    http::sse_request req;
    req.method = "POST";
    req.target = "/api/conversations/" + id + "/message/stream";
    req.body = R"({"content":"Leave early"})";
    req.timeout = 30s;
    req.on_event = [](const http::sse_event& e) {
        return json::parse(e.data).at("type") != "stage1_complete";  // hang up here
    };
    auto r = http::read_sse(server_->url(), req);
    ASSERT_EQ(types_of(payloads(r)).back(), "stage1_complete");
    auto c = wait_for_messages(id, 2);
    const auto& answer = c.at("messages").at(1).as_object();
    EXPECT_EQ(answer.at("stage3").at("model"), "fake:chair");
    EXPECT_FALSE(answer.at("stage3").at("response").as_string().empty());
    EXPECT_EQ(answer.at("stage2").as_array().size(), 3U);
    EXPECT_EQ(c.at("processing_state"), "idle");
}

TEST_F(ConversationTest, KillNineDuringStageTwoTheTurnCompletesAndStageOneIsPaidOnce) {
    const auto id = create("/v1");
    auto res = call("POST", "/v1/conversations/" + id + "/messages", R"({"content":"Crash?"})");
    ASSERT_EQ(res.status, 202) << res.body;
    const std::string job_id(json::parse(res.body).at("job_id").as_string());
    bool ranking = false;
    for (int tries = 0; tries < 300 && !ranking; ++tries) {
        auto page = get_json("/v1/jobs/" + job_id + "/events?after=0&limit=1000");
        for (const auto& e : page.at("events").as_array()) {
            ranking = ranking || e.at("type") == "stage2.start";
        }
        std::this_thread::sleep_for(20ms);
    }
    ASSERT_TRUE(ranking);
    std::this_thread::sleep_for(200ms);
    server_->kill_hard();
    start();
    auto c = wait_for_messages(id, 2);
    EXPECT_EQ(c.at("processing_state"), "idle");
    const auto& answer = c.at("messages").at(1).as_object();
    EXPECT_EQ(answer.at("stage3").at("model"), "fake:chair");
    EXPECT_EQ(answer.at("stage2").as_array().size(), 3U);
    EXPECT_EQ(calls("a", "answer"), 1) << "stage 1 is a step: not asked again";
    EXPECT_EQ(calls("b", "answer"), 1);
    EXPECT_EQ(calls("titler", "title"), 1) << "the title is a step too";
    EXPECT_GE(calls("a", "ranking"), 2) << "the interrupted ranking was asked again";
    // Re-joining after the restart replays the turn to its end.
    http::sse_request again;
    again.target = "/api/conversations/" + id + "/stream";
    auto r = http::read_sse(server_->url(), again);
    const auto types = types_of(payloads(r));
    ASSERT_FALSE(types.empty());
    EXPECT_EQ(types.back(), "complete");
}

TEST_F(ConversationTest, FailingMembersAFailingChairmanAndEveryMemberFailing) {
    const auto id = create(
        "/v1",
        R"({"council": {"members": ["fake:flaky", "fake:cut", "fake:down", "fake:b"],
            "chairman": "fake:badchair", "chairman_fallback": "fake:b"}})"
    );
    auto res = call("POST", "/v1/conversations/" + id + "/messages", R"({"content":"Q"})");
    ASSERT_EQ(res.status, 202) << res.body;
    auto c = wait_for_messages(id, 2);
    const auto& answer = c.at("messages").at(1).as_object();
    const auto& stage1 = answer.at("stage1").as_array();
    ASSERT_EQ(stage1.size(), 4U);
    EXPECT_FALSE(stage1.at(0).as_object().contains("error")) << "429 + Retry-After, then ok";
    EXPECT_EQ(stage1.at(0).at("response"), "Answer from flaky: t0 t1 t2 t3 t4 t5 t6 t7");
    EXPECT_TRUE(stage1.at(1).as_object().contains("error")) << "cut mid-stream";
    EXPECT_TRUE(stage1.at(2).as_object().contains("error")) << "500";
    EXPECT_EQ(answer.at("stage3").at("model"), "fake:b") << "the fallback wrote the answer";
    EXPECT_FALSE(answer.at("stage3").at("response").as_string().empty());
    EXPECT_EQ(calls("badchair", "synthesis"), 1) << "an auth error is not retried";
    EXPECT_EQ(calls("flaky", "answer"), 2);
    bool chair_error = false;
    for (const auto& e : answer.at("metadata").at("errors").as_array()) {
        chair_error =
            chair_error || (e.at("stage") == "stage3" && e.at("model") == "fake:badchair");
    }
    EXPECT_TRUE(chair_error);
    EXPECT_EQ(c.at("processing_state"), "idle");

    // Every member failing: the message says so and the conversation is in error.
    const auto all_fail = create("/api", R"({"council": {"members": ["fake:down", "fake:cut"]}})");
    http::sse_request req;
    req.method = "POST";
    req.target = "/api/conversations/" + all_fail + "/message/stream";
    req.body = R"({"content":"Anyone?"})";
    req.timeout = 30s;
    const auto events = payloads(http::read_sse(server_->url(), req));
    const auto types = types_of(events);
    ASSERT_FALSE(types.empty());
    EXPECT_EQ(types.back(), "complete");
    const auto stage3 = std::find(types.begin(), types.end(), "stage3_complete") - types.begin();
    ASSERT_LT(stage3, static_cast<long>(events.size()));
    EXPECT_NE(
        std::string(events[stage3].at("data").at("response").as_string())
            .find("every council member failed"),
        std::string::npos
    );
    auto failed = wait_for_messages(all_fail, 2);
    EXPECT_EQ(failed.at("processing_state"), "error");
    EXPECT_EQ(failed.at("messages").at(1).at("content"), "");
}

TEST_F(ConversationTest, BadInputGetsClearErrorsAndChangesNothing) {
    const auto id = create("/api");
    for (const auto* body :
         {R"({"content":""})", R"({})", R"({"content":"   "})", "not json", R"({"content":5})"}) {
        auto res = call("POST", "/api/conversations/" + id + "/message/stream", body);
        EXPECT_EQ(res.status, 422) << body;
        EXPECT_TRUE(json::parse(res.body).as_object().contains("detail")) << res.body;
        res = call("POST", "/v1/conversations/" + id + "/messages", body);
        EXPECT_EQ(res.status, 400) << body;
        EXPECT_EQ(json::parse(res.body).at("error").at("code"), "bad_request");
    }
    auto missing = call("GET", "/api/conversations/nope");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(json::parse(missing.body).at("detail"), "Conversation not found");
    EXPECT_EQ(call("POST", "/api/conversations/nope/message", R"({"content":"x"})").status, 404);
    EXPECT_EQ(call("GET", "/api/conversations/" + id + "/stream").status, 404) << "no council yet";
    EXPECT_EQ(call("GET", "/v1/conversations/nope").status, 404);
    EXPECT_EQ(
        call("POST", "/v1/conversations", R"({"council":{"members":["fake:a", 3]}})").status, 400
    );
    EXPECT_EQ(call("POST", "/v1/conversations", R"({"colour":"red"})").status, 400);
    EXPECT_EQ(call("POST", "/v1/conversations", R"({"council":{"members":[]}})").status, 400);
    EXPECT_EQ(get_json("/v1/conversations").at("conversations").as_array().size(), 1U);
    EXPECT_EQ(get_json("/api/conversations/" + id).at("messages").as_array().size(), 0U);

    // CORS: the llm-council dev server's origin is allowed, others are not.
    auto preflight =
        http::client(server_->url())
            .request(
                "OPTIONS",
                "/api/conversations",
                "",
                {{"Origin", "http://localhost:5173"}, {"Access-Control-Request-Method", "POST"}}
            );
    EXPECT_EQ(preflight.status, 204);
    auto allowed = [](const http::client_response& r) {
        for (const auto& [name, value] : r.headers) {
            if (name == "Access-Control-Allow-Origin") {
                return value;
            }
        }
        return std::string();
    };
    EXPECT_EQ(allowed(preflight), "http://localhost:5173");
    auto listed =
        http::client(server_->url())
            .request("GET", "/api/conversations", "", {{"Origin", "http://localhost:3000"}});
    EXPECT_EQ(allowed(listed), "http://localhost:3000");
    auto foreign = http::client(server_->url())
                       .request("GET", "/api/conversations", "", {{"Origin", "https://evil.test"}});
    EXPECT_EQ(allowed(foreign), "");
    auto foreign_preflight =
        http::client(server_->url())
            .request("OPTIONS", "/api/conversations", "", {{"Origin", "https://evil.test"}});
    EXPECT_EQ(foreign_preflight.status, 403);

    EXPECT_EQ(call("DELETE", "/v1/conversations/" + id).status, 204);
    EXPECT_EQ(call("GET", "/api/conversations/" + id).status, 404);
    EXPECT_EQ(call("DELETE", "/v1/conversations/" + id).status, 404);
}

}  // namespace
}  // namespace conclave::test
