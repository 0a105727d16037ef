// The LLM wire: SSE decoding in arbitrary pieces, OpenAI chunks and error bodies, the provider
// routing, and the simulated provider.
#include <gtest/gtest.h>

#include "llm/openai_wire.hpp"
#include "llm/provider.hpp"
#include "llm/sim_provider.hpp"
#include "llm/sse_decoder.hpp"
#include "support/run_coro.hpp"

namespace conclave::llm {
namespace {

std::vector<std::string> decode_in_pieces(const std::string& stream, std::size_t piece) {
    sse_decoder d;
    std::vector<std::string> out;
    for (std::size_t pos = 0; pos < stream.size(); pos += piece) {
        EXPECT_TRUE(d.feed(std::string_view(stream).substr(pos, piece), [&](std::string_view data) {
            out.emplace_back(data);
        }));
    }
    return out;
}

TEST(SseDecoderTest, EventsSurviveAnySplitAndAnyLineEnding) {
    const std::string stream =
        ": keep-alive\n\ndata: {\"a\":1}\n\ndata:{\"b\":2}\r\n\r\nevent: x\r"
        "data: line1\rdata: line2\r\rid: 7\ndata: [DONE]\n\n";
    const std::vector<std::string> expected{R"({"a":1})", R"({"b":2})", "line1\nline2", "[DONE]"};
    for (std::size_t piece : {1U, 2U, 3U, 7U, 1000U}) {
        EXPECT_EQ(decode_in_pieces(stream, piece), expected) << "pieces of " << piece;
    }
}

TEST(SseDecoderTest, AnOverlongLineFailsInsteadOfGrowing) {
    sse_decoder d(64);
    EXPECT_FALSE(d.feed("data: " + std::string(100, 'x'), [](std::string_view) {}));
    EXPECT_FALSE(d.feed("\n\n", [](std::string_view) {})) << "stays failed";
}

TEST(OpenAiWireTest, ChunksCarryContentFinishAndUsage) {
    auto c = parse_chunk(R"({"choices":[{"delta":{"content":"Hel"},"finish_reason":null}]})");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->content, "Hel");
    EXPECT_TRUE(c->finish_reason.empty());
    auto last = parse_chunk(
        R"({"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":30,"cost":0.0015}})"
    );
    ASSERT_TRUE(last);
    EXPECT_EQ(last->finish_reason, "stop");
    ASSERT_TRUE(last->usage);
    EXPECT_EQ(last->usage->prompt_tokens, 12);
    EXPECT_EQ(last->usage->completion_tokens, 30);
    EXPECT_DOUBLE_EQ(last->usage->cost.value(), 0.0015);
    EXPECT_TRUE(parse_chunk("[DONE]")->done);
    auto error = parse_chunk(R"({"error":{"message":"upstream overloaded","code":502}})");
    EXPECT_EQ(error->error.value(), "upstream overloaded");
    EXPECT_FALSE(parse_chunk("{not json"));
    EXPECT_FALSE(parse_chunk(R"({"choices":"nope"})"));
    EXPECT_FALSE(parse_chunk("[1,2]"));
}

TEST(OpenAiWireTest, RequestBodyAndErrorMessages) {
    chat_request r{.model = "gpt-x", .messages = {{"user", "hi \"there\""}}, .temperature = {}};
    const auto body = chat_body(r);
    EXPECT_NE(body.find(R"("model":"gpt-x")"), std::string::npos);
    EXPECT_NE(body.find(R"("stream":true)"), std::string::npos);
    EXPECT_NE(body.find(R"("content":"hi \"there\"")"), std::string::npos);
    EXPECT_EQ(
        error_message(401, R"({"error":{"message":"No auth credentials found"}})"),
        "No auth credentials found"
    );
    EXPECT_EQ(error_message(422, R"({"detail":"bad"})"), "bad");
    EXPECT_EQ(error_message(502, "Bad Gateway"), "Bad Gateway");
    EXPECT_EQ(error_message(500, ""), "HTTP 500");
}

TEST(ProvidersTest, PrefixRoutesToItsProviderElseTheDefault) {
    providers p;
    auto sim = std::make_shared<sim_provider>();
    auto other = std::make_shared<sim_provider>();
    p.add("sim", sim);
    p.add("ollama", other);
    p.set_default("sim");
    auto routed = p.find("ollama:llama3.1");
    ASSERT_TRUE(routed);
    EXPECT_EQ(routed->target, other.get());
    EXPECT_EQ(routed->model, "llama3.1");
    auto unprefixed = p.find("openai/gpt-5.1");
    EXPECT_EQ(unprefixed->target, sim.get());
    EXPECT_EQ(unprefixed->model, "openai/gpt-5.1");
    providers none;
    EXPECT_EQ(none.find("x").error().code, errc::bad_request);
}

TEST(SimProviderTest, StreamsDeterministicTextAndAnswersRankingPrompts) {
    sim_provider sim({.tokens_per_s = 0, .answer_words = 30});
    test::run_coro([&](auto&) -> net::awaitable<void> {
        chat_request ask{.model = "m1", .messages = {{"user", "Why is the sky blue?"}}};
        std::string streamed;
        int pieces = 0;
        auto sink = [&](std::string text) -> net::awaitable<void> {
            streamed += text;
            ++pieces;
            co_return;
        };
        auto done = co_await sim.stream(ask, sink);
        EXPECT_TRUE(done.has_value());
        EXPECT_EQ(streamed, done->text);
        EXPECT_EQ(streamed, sim.text_for(ask)) << "deterministic";
        EXPECT_GT(pieces, 20);
        EXPECT_TRUE(done->simulated);
        EXPECT_EQ(done->usage.completion_tokens, pieces);
        chat_request rank{
            .model = "m1",
            .messages = {
                {"user",
                 "You are evaluating …\n\nResponse A:\nfoo\n\nResponse B:\nbar\n\nEnd with FINAL "
                 "RANKING: …"}}};
        const auto text = sim.text_for(rank);
        EXPECT_NE(text.find("FINAL RANKING:\n1. Response "), std::string::npos) << text;
        EXPECT_NE(text.find("2. Response "), std::string::npos) << text;
    });
}

}  // namespace
}  // namespace conclave::llm
