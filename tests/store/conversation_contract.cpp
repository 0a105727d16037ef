// The store contract for conversations: turns, their end in the job's own transaction, and
// the busy rule. Part of StoreContract, so every backend runs it.
#include <boost/json.hpp>

#include "store/conversations.hpp"
#include "store/store_contract.hpp"
#include "support/run_coro.hpp"

namespace conclave::test {
namespace {

namespace json = boost::json;
using store::job_state;
constexpr unix_ms t0 = 1'700'000'000'000;

store::new_turn turn_of(const std::string& conversation, const std::string& content) {
    store::new_turn t;
    t.conversation_id = conversation;
    t.content = content;
    t.job.type = "council";
    t.job.payload = R"({"question":"q"})";
    t.job.run_at = t0;
    t.job.max_attempts = 1;
    return t;
}

store::claim_request claim_council(unix_ms now) {
    store::claim_request r;
    r.owner = "node";
    r.types = {"council"};
    r.max = 1;
    r.now = now;
    r.lease_ms = 10'000;
    return r;
}

store::retry_policy never_retry() {
    return [](const store::job&, bool, unix_ms) -> std::optional<unix_ms> { return std::nullopt; };
}

constexpr const char* council_result =
    R"({"stage1":[{"model":"m1","response":"a1"}],"stage2":[{"model":"m1","ranking":"r",)"
    R"("parsed_ranking":["Response A"]}],"stage3":{"model":"chair","response":"final"},)"
    R"("metadata":{"label_to_model":{"Response A":"m1"},"usage":{"prompt_tokens":3}}})";

TEST_P(StoreContract, TurnSavesTheAnswerInTheJobsSuccessAndRefusesASecondWhileActive) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto c = co_await db().create_conversation("New Conversation", "{}", t0);
        EXPECT_EQ(c.processing_state, "idle");
        auto t = co_await db().start_turn(turn_of(c.id, "hello"), t0 + 1);
        EXPECT_TRUE(t.has_value());
        EXPECT_EQ(t->message.seq, 1);
        EXPECT_EQ(t->message.role, "user");
        EXPECT_EQ(t->message.job_id, t->job.id);
        EXPECT_EQ(store::conversation_of(t->job), c.id);

        auto busy = co_await db().start_turn(turn_of(c.id, "again"), t0 + 2);
        EXPECT_EQ(busy.error().code, errc::conversation_busy);
        auto found = co_await db().find_conversation(c.id);
        EXPECT_EQ(found->processing_state, "active");
        EXPECT_EQ(found->message_count, 1) << "the refused message changed nothing";
        EXPECT_EQ(found->last_job_id, t->job.id);

        auto claimed = co_await db().claim_jobs(claim_council(t0 + 3));
        EXPECT_EQ(claimed.size(), 1U);
        auto done = co_await db().complete_job(
            t->job.id, claimed.at(0).job.lease_token, council_result, t0 + 4
        );
        EXPECT_TRUE(done.has_value());
        auto after = co_await db().find_conversation(c.id);
        EXPECT_EQ(after->processing_state, "idle");
        EXPECT_EQ(after->message_count, 2);
        auto messages = co_await db().load_messages(c.id);
        EXPECT_EQ(messages->size(), 2U);
        const auto& answer = messages->at(1);
        EXPECT_EQ(answer.role, "assistant");
        EXPECT_EQ(answer.seq, 2);
        EXPECT_EQ(answer.content, "final");
        EXPECT_EQ(answer.job_id, t->job.id);
        const auto stages = json::parse(answer.stages);
        EXPECT_EQ(stages.at("stage3").at("model"), "chair");
        EXPECT_EQ(stages.at("stage1").as_array().size(), 1U);
        EXPECT_EQ(json::parse(answer.metadata).at("label_to_model").at("Response A"), "m1");

        // The conversation's topic saw the job's events, in order, gapless.
        auto events = co_await db().read_events(store::conversation_topic(c.id), 0, 100);
        EXPECT_TRUE(events.has_value());
        std::vector<std::string> types;
        for (const auto& e : *events) {
            types.push_back(e.type);
        }
        EXPECT_EQ(types, (std::vector<std::string>{"job.queued", "job.started", "job.succeeded"}));
        auto next = co_await db().start_turn(turn_of(c.id, "follow-up"), t0 + 5);
        EXPECT_TRUE(next.has_value());
        EXPECT_EQ(next->message.seq, 3);
    });
}

TEST_P(StoreContract, AFailedOrCancelledTurnSaysSoAndRetryReopensIt) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto c = co_await db().create_conversation("t", "{}", t0);
        auto t = co_await db().start_turn(turn_of(c.id, "q1"), t0 + 1);
        auto claimed = co_await db().claim_jobs(claim_council(t0 + 2));
        auto failed = co_await db().fail_job(
            t->job.id,
            claimed.at(0).job.lease_token,
            R"({"code":"boom","message":"provider down"})",
            true,
            never_retry(),
            t0 + 3
        );
        EXPECT_EQ(failed->state, job_state::failed);
        auto after = co_await db().find_conversation(c.id);
        EXPECT_EQ(after->processing_state, "error");
        auto messages = co_await db().load_messages(c.id);
        EXPECT_EQ(messages->size(), 2U);
        EXPECT_EQ(json::parse(messages->at(1).metadata).at("error").at("message"), "provider down");

        // Retrying the failed turn takes its error message back and makes it active again.
        auto retried = co_await db().retry_job(t->job.id, t0 + 4);
        EXPECT_TRUE(retried.has_value());
        after = co_await db().find_conversation(c.id);
        EXPECT_EQ(after->processing_state, "active");
        EXPECT_EQ(after->message_count, 1);

        auto cancelled = co_await db().cancel_job(t->job.id, t0 + 5);
        EXPECT_TRUE(cancelled.has_value());
        after = co_await db().find_conversation(c.id);
        EXPECT_EQ(after->processing_state, "idle");
        messages = co_await db().load_messages(c.id);
        EXPECT_EQ(json::parse(messages->at(1).metadata).at("error").at("code"), "cancelled");

        // A newer turn exists: the old job cannot be retried into the middle of the chat.
        auto t2 = co_await db().start_turn(turn_of(c.id, "q2"), t0 + 6);
        EXPECT_TRUE(t2.has_value());
        auto stale = co_await db().retry_job(t->job.id, t0 + 7);
        EXPECT_EQ(stale.error().code, errc::invalid_transition);
    });
}

TEST_P(StoreContract, AResultWithoutAnAnswerLeavesTheConversationInError) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto c = co_await db().create_conversation("t", "{}", t0);
        auto t = co_await db().start_turn(turn_of(c.id, "q"), t0 + 1);
        auto claimed = co_await db().claim_jobs(claim_council(t0 + 2));
        const std::string every_member_failed =
            R"({"stage1":[{"model":"m1","response":"","error":"401"}],"stage2":[],)"
            R"("stage3":{"model":"chair","response":"","error":"every council member failed"},)"
            R"("metadata":{}})";
        co_await db().complete_job(
            t->job.id, claimed.at(0).job.lease_token, every_member_failed, t0 + 3
        );
        auto after = co_await db().find_conversation(c.id);
        EXPECT_EQ(after->processing_state, "error");
        auto messages = co_await db().load_messages(c.id);
        EXPECT_EQ(messages->at(1).content, "");
        EXPECT_EQ(
            json::parse(messages->at(1).stages).at("stage3").at("error"),
            "every council member failed"
        );
    });
}

TEST_P(StoreContract, DeleteCancelsTheRunningCouncilAndUnknownIdsAreNotFound) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto c = co_await db().create_conversation("t", "{}", t0);
        auto t = co_await db().start_turn(turn_of(c.id, "q"), t0 + 1);
        auto deleted = co_await db().delete_conversation(c.id, t0 + 2);
        EXPECT_TRUE(deleted.has_value());
        auto job = co_await db().find_job(t->job.id);
        EXPECT_EQ(job->state, job_state::cancelled);
        auto gone = co_await db().find_conversation(c.id);
        EXPECT_EQ(gone.error().code, errc::not_found);
        auto messages = co_await db().load_messages(c.id);
        EXPECT_EQ(messages.error().code, errc::not_found);
        auto again = co_await db().delete_conversation(c.id, t0 + 3);
        EXPECT_EQ(again.error().code, errc::not_found);
        auto no_turn = co_await db().start_turn(turn_of("nope", "q"), t0 + 4);
        EXPECT_EQ(no_turn.error().code, errc::not_found);
        auto no_title = co_await db().set_conversation_title("nope", "x", t0 + 5);
        EXPECT_EQ(no_title.error().code, errc::not_found);
    });
}

TEST_P(StoreContract, ConversationsListNewestFirstPagedWithTitles) {
    run_coro([&](auto&) -> net::awaitable<void> {
        std::vector<std::string> ids;
        for (int i = 0; i < 5; ++i) {
            auto c = co_await db().create_conversation("c" + std::to_string(i), "{}", t0 + i);
            ids.push_back(c.id);
        }
        co_await db().set_conversation_title(ids[4], "Renamed", t0 + 10);
        auto page = co_await db().list_conversations(3, 0);
        EXPECT_EQ(page.conversations.size(), 3U);
        EXPECT_EQ(page.conversations[0].id, ids[4]);
        EXPECT_EQ(page.conversations[0].title, "Renamed");
        EXPECT_NE(page.next_cursor, 0);
        auto rest = co_await db().list_conversations(3, page.next_cursor);
        EXPECT_EQ(rest.conversations.size(), 2U);
        EXPECT_EQ(rest.conversations[1].id, ids[0]);
        EXPECT_EQ(rest.next_cursor, 0);
    });
}

}  // namespace
}  // namespace conclave::test
