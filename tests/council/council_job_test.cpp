// The council as a durable job, on the real engine and SQLite store, with the simulated
// provider and a scripted failing one: the three stages, the events, the persisted result, the
// aggregate, failures of members and of the chairman.
#include "council/council_job.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "council/ranking.hpp"
#include "jobs/engine.hpp"
#include "llm/sim_provider.hpp"
#include "store/deltas.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/run_coro.hpp"
#include "support/temp_dir.hpp"

namespace conclave::council {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// Fails every call with the provider's message, like a 401 from a real provider.
class failing_provider final : public llm::provider {
public:
    net::awaitable<result<llm::completion>> stream(llm::chat_request r, llm::delta_sink) override {
        calls++;
        co_return fail(errc::unauthorized, "No auth credentials found (" + r.model + ")");
    }
    std::atomic<int> calls{0};
};

// Answers every call with a fixed text and records the messages of the stage-1 calls.
class recording_provider final : public llm::provider {
public:
    net::awaitable<result<llm::completion>> stream(llm::chat_request r, llm::delta_sink) override {
        const auto& last = r.messages.back().content;
        if (!last.starts_with("You are evaluating") && !last.starts_with("You are the Chairman") &&
            !last.starts_with("Generate a very short title")) {
            std::lock_guard lock(mutex);
            stage1_calls.push_back(r.messages);
        }
        llm::completion c;
        c.text = "recorded answer";
        co_return c;
    }
    std::mutex mutex;
    std::vector<std::vector<llm::chat_message>> stage1_calls;
};

class CouncilJobTest : public ::testing::Test {
protected:
    CouncilJobTest() {
        models_.add("sim", sim_);
        models_.add("rec", rec_);
        models_.add("broken", broken_);
        models_.set_default("sim");
        add_council_type(types_, models_, settings_);
    }

    json::object run_council(const std::string& payload, std::vector<store::event>* events) {
        json::object out;
        jobs::engine_options options;
        options.idle_poll_ms = 50;
        jobs::engine e(*db_, types_, clock_, options);
        test::run_coro(
            [&](auto& ioc) -> net::awaitable<void> {
                co_await e.start(ioc.get_executor());
                auto body = json::parse(R"({"type":"council","payload":)" + payload + "}");
                auto submitted = co_await e.submit(body);
                EXPECT_TRUE(submitted.has_value()) << (submitted ? "" : submitted.error().message);
                if (!submitted) {
                    e.stop();
                    co_return;
                }
                const auto id = submitted->job.id;
                net::steady_timer timer(co_await net::this_coro::executor);
                for (int tries = 0; tries < 500; ++tries) {
                    auto j = co_await e.find(id);
                    if (j && store::is_terminal(j->state)) {
                        EXPECT_EQ(store::to_string(j->state), std::string("succeeded")) << j->error;
                        if (!j->result.empty()) {
                            out = json::parse(j->result).as_object();
                        }
                        break;
                    }
                    timer.expires_after(20ms);
                    co_await timer.async_wait(net::use_awaitable);
                }
                auto read = co_await e.events(store::job_topic(id), 0, 1000);
                if (read && events != nullptr) {
                    *events = *read;
                }
                e.stop();
            },
            2
        );
        return out;
    }

    test::temp_dir dir_;
    std::unique_ptr<store::store> db_ =
        store::sqlite::open_sqlite_store({.path = dir_.file("c.db")});
    std::shared_ptr<llm::sim_provider> sim_ = std::make_shared<llm::sim_provider>(llm::sim_options{
        .tokens_per_s = 0, .answer_words = 40});
    std::shared_ptr<failing_provider> broken_ = std::make_shared<failing_provider>();
    std::shared_ptr<recording_provider> rec_ = std::make_shared<recording_provider>();
    llm::providers models_;
    council_settings settings_ = simulated_council();
    jobs::registry types_ = jobs::builtin_registry();
    system_clock clock_;
};

TEST_F(CouncilJobTest, ThreeStagesPersistedWithEventsInOrder) {
    std::vector<store::event> events;
    auto r = run_council(R"({"question":"Why is the sky blue?"})", &events);
    ASSERT_FALSE(r.empty());
    const auto& stage1 = r.at("stage1").as_array();
    ASSERT_EQ(stage1.size(), 4U);
    const auto& stage2 = r.at("stage2").as_array();
    ASSERT_EQ(stage2.size(), 4U);
    EXPECT_EQ(r.at("stage3").at("model"), "sim:chair");
    EXPECT_FALSE(r.at("stage3").at("response").as_string().empty());
    const auto& meta = r.at("metadata").as_object();
    EXPECT_EQ(meta.at("simulated"), true);
    EXPECT_EQ(meta.at("label_to_model").as_object().size(), 4U);
    EXPECT_TRUE(meta.at("errors").as_array().empty());
    EXPECT_GT(meta.at("usage").at("completion_tokens").as_int64(), 0);

    // The aggregate is the mean position of each model over the parsed rankings.
    std::map<std::string, std::string> labels;
    for (const auto& [label, model] : meta.at("label_to_model").as_object()) {
        labels[std::string(label)] = std::string(model.as_string());
    }
    std::map<std::string, std::pair<double, int>> sums;
    for (const auto& item : stage2) {
        const auto& parsed = item.at("parsed_ranking").as_array();
        EXPECT_EQ(parsed.size(), 4U) << "the simulated ranking names every answer";
        for (std::size_t pos = 0; pos < parsed.size(); ++pos) {
            auto& [sum, n] = sums[labels.at(std::string(parsed[pos].as_string()))];
            sum += static_cast<double>(pos + 1);
            ++n;
        }
    }
    const auto& agg = meta.at("aggregate_rankings").as_array();
    ASSERT_EQ(agg.size(), 4U);
    double previous = 0;
    for (const auto& a : agg) {
        const auto& [sum, n] = sums.at(std::string(a.at("model").as_string()));
        EXPECT_NEAR(a.at("average_rank").to_number<double>(), sum / n, 0.01);
        EXPECT_EQ(a.at("rankings_count").as_int64(), n);
        EXPECT_GE(a.at("average_rank").to_number<double>(), previous) << "best first";
        previous = a.at("average_rank").to_number<double>();
    }

    // Events: stage markers in order, deltas that rebuild every answer, the outcome last.
    std::vector<std::string> markers;
    std::map<std::string, std::string> parts;
    for (const auto& e : events) {
        if (store::is_delta_type(e.type)) {
            auto d = store::parse_delta(e.data);
            ASSERT_TRUE(d);
            EXPECT_EQ(d->at, store::utf16_length(parts[d->part]));
            parts[d->part] += d->text;
        } else if (!e.type.ends_with("model_complete")) {
            markers.push_back(e.type);
        }
    }
    EXPECT_EQ(
        markers,
        (std::vector<std::string>{
            "job.queued",
            "job.started",
            "stage1.start",
            "stage1.complete",
            "stage2.start",
            "stage2.complete",
            "stage3.start",
            "stage3.complete",
            "job.succeeded"})
    );
    for (const auto& item : stage1) {
        const auto model = std::string(item.at("model").as_string());
        EXPECT_EQ(parts["stage1/" + model], std::string(item.at("response").as_string()));
    }
    EXPECT_EQ(parts["stage3/sim:chair"], std::string(r.at("stage3").at("response").as_string()));
}

TEST_F(CouncilJobTest, FailingMemberIsReportedAndTheCouncilGoesOn) {
    auto r = run_council(
        R"({"question":"q","members":["sim:a","broken:x","sim:b"],"chairman":"sim:c"})", nullptr
    );
    ASSERT_FALSE(r.empty());
    const auto& stage1 = r.at("stage1").as_array();
    EXPECT_NE(
        std::string(stage1.at(1).at("error").as_string()).find("No auth credentials"),
        std::string::npos
    );
    EXPECT_EQ(r.at("metadata").at("label_to_model").as_object().size(), 2U) << "only answers";
    EXPECT_FALSE(r.at("stage3").at("response").as_string().empty());
    EXPECT_FALSE(r.at("metadata").at("errors").as_array().empty());
}

TEST_F(CouncilJobTest, FallbackWritesWhenTheChairmanFails) {
    auto r = run_council(
        R"({"question":"q","members":["sim:a"],"chairman":"broken:chair","chairman_fallback":"sim:backup"})",
        nullptr
    );
    ASSERT_FALSE(r.empty());
    EXPECT_EQ(r.at("stage3").at("model"), "sim:backup");
    EXPECT_FALSE(r.at("stage3").at("response").as_string().empty());
    EXPECT_FALSE(r.at("stage3").as_object().contains("error"));
}

TEST_F(CouncilJobTest, EveryMemberFailingIsRecordedClearly) {
    auto r = run_council(
        R"({"question":"q","members":["broken:a","broken:b"],"chairman":"sim:c"})", nullptr
    );
    ASSERT_FALSE(r.empty());
    EXPECT_NE(
        std::string(r.at("stage3").at("error").as_string()).find("every council member failed"),
        std::string::npos
    );
    EXPECT_TRUE(r.at("stage2").as_array().empty());
}

// Runs one turn of conversation `id` asking `question` and waits for its job to end.
store::job run_turn(
    store::store& db,
    const jobs::registry& types,
    const std::string& id,
    const std::string& question,
    bool title
) {
    store::job out;
    jobs::engine_options options;
    options.idle_poll_ms = 20;
    system_clock clk;
    jobs::engine e(db, types, clk, options);
    test::run_coro(
        [&](auto& ioc) -> net::awaitable<void> {
            co_await e.start(ioc.get_executor());
            store::new_turn t;
            t.conversation_id = id;
            t.content = question;
            t.job.type = "council";
            t.job.payload = json::serialize(json::object{
                {"question", question},
                {"conversation_id", id},
                {"title", title},
                {"members", json::array{"rec:m1", "sim:m2"}},
                {"chairman", "sim:chair"},
                {"title_model", "sim:title"}});
            auto started = co_await db.start_turn(t, clk.now());
            EXPECT_TRUE(started.has_value());
            net::steady_timer timer(co_await net::this_coro::executor);
            for (int tries = 0; started && tries < 500; ++tries) {
                auto j = co_await db.find_job(started->job.id);
                if (store::is_terminal(j->state)) {
                    out = *j;
                    break;
                }
                timer.expires_after(20ms);
                co_await timer.async_wait(net::use_awaitable);
            }
            e.stop();
        },
        2
    );
    return out;
}

TEST_F(CouncilJobTest, ConversationTurnsSeeEarlierTurnsAndTheFirstNamesTheConversation) {
    std::string id;
    test::run_coro([&](auto&) -> net::awaitable<void> {
        auto c = co_await db_->create_conversation("New Conversation", "{}", 1);
        id = c.id;
    });
    auto first = run_turn(*db_, types_, id, "Why is the sky blue?", true);
    ASSERT_EQ(first.state, store::job_state::succeeded) << first.error;
    auto second = run_turn(*db_, types_, id, "And at sunset?", false);
    ASSERT_EQ(second.state, store::job_state::succeeded) << second.error;

    store::conversation c;
    std::vector<store::message> messages;
    std::vector<store::event> events;
    test::run_coro([&](auto&) -> net::awaitable<void> {
        auto found = co_await db_->find_conversation(id);
        c = found.value();
        auto loaded = co_await db_->load_messages(id);
        messages = loaded.value();
        auto read = co_await db_->read_events(store::job_topic(first.id), 0, 1000);
        events = read.value();
    });
    EXPECT_EQ(c.title, "Why is the sky") << "the simulated title model's first words";
    EXPECT_EQ(c.processing_state, "idle");
    ASSERT_EQ(messages.size(), 4U);
    const auto first_answer = messages[1].content;
    EXPECT_FALSE(first_answer.empty());
    EXPECT_TRUE(std::any_of(events.begin(), events.end(), [](const store::event& e) {
        return e.type == "title" && json::parse(e.data).at("title") == "Why is the sky";
    }));

    // Stage 1 of the second turn saw the first question and the council's answer to it.
    std::lock_guard lock(rec_->mutex);
    ASSERT_EQ(rec_->stage1_calls.size(), 2U);
    EXPECT_EQ(rec_->stage1_calls[0].size(), 1U);
    const auto& second_call = rec_->stage1_calls[1];
    ASSERT_EQ(second_call.size(), 3U);
    EXPECT_EQ(second_call[0].role, "user");
    EXPECT_EQ(second_call[0].content, "Why is the sky blue?");
    EXPECT_EQ(second_call[1].role, "assistant");
    EXPECT_EQ(second_call[1].content, first_answer);
    EXPECT_EQ(second_call[2].content, "And at sunset?");
}

TEST_F(CouncilJobTest, BadPayloadsAreRefusedAtSubmission) {
    for (const auto* bad :
         {R"({})",
          R"({"question":""})",
          R"({"question":"q","members":[]})",
          R"({"question":"q","history":[{"role":"system","content":"x"}]})",
          R"({"question":"q","self_ranking":"yes"})",
          R"({"question":"q","title":1})",
          R"({"question":"q","conversation_id":""})"}) {
        EXPECT_TRUE(types_.find("council")->validate(json::parse(bad)).has_value()) << bad;
    }
    EXPECT_FALSE(types_.find("council")->validate(json::parse(R"({"question":"q"})")).has_value());
}

}  // namespace
}  // namespace conclave::council
