#include "jobs/engine.hpp"

#include <atomic>

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "store/deltas.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "support/run_coro.hpp"
#include "support/temp_dir.hpp"

namespace conclave::jobs {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using store::job_state;

net::awaitable<void> pause(std::chrono::milliseconds d) {
    net::steady_timer timer(co_await net::this_coro::executor, d);
    co_await timer.async_wait(net::use_awaitable);
}

// Counters the scripted handlers below report through.
struct script {
    std::atomic<int> step_runs{0};
    std::atomic<int> active{0};
    std::atomic<int> max_active{0};
};

registry test_registry(script& s) {
    registry types = builtin_registry();
    // Fails retryably until attempt `payload.succeed_on`.
    types.add(type_config{
        .name = "flaky",
        .exec = executor::in_process,
        .run = [](job_context& ctx) -> net::awaitable<std::string> {
            const auto payload = json::parse(ctx.job().payload);
            if (ctx.attempt() < payload.at("succeed_on").as_int64()) {
                throw std::runtime_error(
                    "flaky failure on attempt " + std::to_string(ctx.attempt())
                );
            }
            co_return R"("ok")";
        },
        .validate = {},
        .max_attempts = 5,
        .backoff_base_s = 0,
        .backoff_cap_s = 0,
    });
    types.add(type_config{
        .name = "fatal",
        .exec = executor::in_process,
        .run = [](job_context&) -> net::awaitable<std::string> {
            throw handler_error("bad_input", "cannot ever work", false);
            co_return "";
        },
        .validate = {},
        .max_attempts = 5,
    });
    // Records a step, then fails on the first attempt; the retry must not re-run the step.
    types.add(type_config{
        .name = "stepper",
        .exec = executor::in_process,
        .run = [&s](job_context& ctx) -> net::awaitable<std::string> {
            auto expensive = [&s]() -> net::awaitable<std::string> {
                ++s.step_runs;
                co_return R"({"answer":42})";
            };
            auto value = co_await ctx.step("expensive", expensive);
            co_await ctx.emit("stepper.note", R"({"attempt_seen":true})");
            if (ctx.attempt() == 1) {
                throw std::runtime_error("crash after the step");
            }
            co_return value;
        },
        .validate = {},
        .max_attempts = 3,
        .backoff_base_s = 0,
        .backoff_cap_s = 0,
    });
    // Holds a slot for payload.ms, counting how many run at once.
    types.add(type_config{
        .name = "limited",
        .exec = executor::in_process,
        .run = [&s](job_context&) -> net::awaitable<std::string> {
            const int now = ++s.active;
            int seen = s.max_active.load();
            while (now > seen && !s.max_active.compare_exchange_weak(seen, now)) {
            }
            co_await pause(50ms);
            --s.active;
            co_return "null";
        },
        .validate = {},
        .max_attempts = 1,
        .concurrency = 1,
    });
    types.add(type_config{
        .name = "remote_work", .exec = executor::remote, .run = {}, .validate = {}});
    return types;
}

class EngineTest : public ::testing::Test {
protected:
    std::unique_ptr<engine> make_engine(const std::string& node = "test-node") {
        engine_options options;
        options.node_id = node;
        options.sweep_interval_ms = 100;
        options.idle_poll_ms = 100;
        return std::make_unique<engine>(*db_, types_, clock_, options);
    }

    net::awaitable<store::job> wait_for(
        engine& e, const std::string& id, job_state state, std::chrono::milliseconds limit = 10s
    ) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            auto j = co_await e.find(id);
            if (j && j->state == state) {
                co_return *j;
            }
            if (std::chrono::steady_clock::now() > deadline) {
                ADD_FAILURE() << "job " << id << " did not reach " << store::to_string(state)
                              << " (is " << (j ? store::to_string(j->state) : "missing") << ")";
                co_return j ? *j : store::job{};
            }
            co_await pause(10ms);
        }
    }

    net::awaitable<std::string> submit(engine& e, std::string_view body) {
        auto s = co_await e.submit(json::parse(body));
        EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
        co_return s ? s->job.id : "";
    }

    net::awaitable<std::vector<std::string>> event_types(engine& e, const std::string& id) {
        auto events = co_await e.events(store::job_topic(id), 0, 1000);
        std::vector<std::string> out;
        for (const auto& ev : events.value()) {
            out.push_back(ev.type);
        }
        co_return out;
    }

    test::temp_dir dir_;
    std::unique_ptr<store::store> db_ =
        store::sqlite::open_sqlite_store({.path = dir_.file("engine.db")});
    script script_;
    registry types_ = test_registry(script_);
    system_clock clock_;
};

TEST_F(EngineTest, NoopRunsToSuccess) {
    auto e = make_engine();
    test::run_coro([&](auto& ioc) -> net::awaitable<void> {
        co_await e->start(ioc.get_executor());
        const auto id = co_await submit(*e, R"({"type":"noop","payload":{"echo":1}})");
        auto done = co_await wait_for(*e, id, job_state::succeeded);
        EXPECT_EQ(done.result, R"({"echo":1})");
        auto seen_types1 = co_await event_types(*e, id);
        EXPECT_EQ(
            seen_types1, (std::vector<std::string>{"job.queued", "job.started", "job.succeeded"})
        );
        e->stop();
    });
}

TEST_F(EngineTest, RetryableFailuresAreRetriedUntilSuccess) {
    auto e = make_engine();
    test::run_coro([&](auto& ioc) -> net::awaitable<void> {
        co_await e->start(ioc.get_executor());
        const auto id = co_await submit(*e, R"({"type":"flaky","payload":{"succeed_on":3}})");
        auto done = co_await wait_for(*e, id, job_state::succeeded);
        EXPECT_EQ(done.attempts, 3);
        auto seen_types2 = co_await event_types(*e, id);
        EXPECT_EQ(
            seen_types2,
            (std::vector<std::string>{
                "job.queued",
                "job.started",
                "job.retrying",
                "job.started",
                "job.retrying",
                "job.started",
                "job.succeeded"})
        );
        e->stop();
    });
}

TEST_F(EngineTest, AttemptsExhaustedEndInFailed) {
    auto e = make_engine();
    test::run_coro([&](auto& ioc) -> net::awaitable<void> {
        co_await e->start(ioc.get_executor());
        const auto id =
            co_await submit(*e, R"({"type":"flaky","payload":{"succeed_on":10},"max_attempts":2})");
        auto failed = co_await wait_for(*e, id, job_state::failed);
        EXPECT_EQ(failed.attempts, 2);
        EXPECT_NE(failed.error.find("flaky failure on attempt 2"), std::string::npos)
            << failed.error;
        e->stop();
    });
}

TEST_F(EngineTest, NonRetryableHandlerErrorFailsAtOnce) {
    auto e = make_engine();
    test::run_coro([&](auto& ioc) -> net::awaitable<void> {
        co_await e->start(ioc.get_executor());
        const auto id = co_await submit(*e, R"({"type":"fatal"})");
        auto failed = co_await wait_for(*e, id, job_state::failed);
        EXPECT_EQ(failed.attempts, 1);
        EXPECT_NE(failed.error.find("bad_input"), std::string::npos);
        e->stop();
    });
}

TEST_F(EngineTest, StepsAreNotRunAgainOnRetry) {
    auto e = make_engine();
    test::run_coro([&](auto& ioc) -> net::awaitable<void> {
        co_await e->start(ioc.get_executor());
        const auto id = co_await submit(*e, R"({"type":"stepper"})");
        auto done = co_await wait_for(*e, id, job_state::succeeded);
        EXPECT_EQ(done.attempts, 2);
        EXPECT_EQ(done.result, R"({"answer":42})");
        EXPECT_EQ(script_.step_runs.load(), 1) << "the recorded step was reused by attempt 2";
        auto types = co_await event_types(*e, id);
        EXPECT_EQ(std::count(types.begin(), types.end(), "stepper.note"), 2);
        e->stop();
    });
}

TEST_F(EngineTest, CancellingAnActiveJobCancelsItsHandler) {
    auto e = make_engine();
    test::run_coro([&](auto& ioc) -> net::awaitable<void> {
        co_await e->start(ioc.get_executor());
        const auto id = co_await submit(*e, R"({"type":"sleep","payload":{"ms":60000}})");
        co_await wait_for(*e, id, job_state::active);
        const auto started = std::chrono::steady_clock::now();
        auto cancelled = co_await e->cancel(id);
        EXPECT_TRUE(cancelled.has_value());
        while (e->running() > 0 && std::chrono::steady_clock::now() - started < 5s) {
            co_await pause(5ms);
        }
        EXPECT_EQ(e->running(), 0) << "the sleeping handler was cancelled, not waited for";
        auto j = co_await e->find(id);
        EXPECT_EQ(j->state, job_state::cancelled);
        auto again = co_await e->cancel(id);
        EXPECT_EQ(again.error().code, errc::invalid_transition);
        auto seen_types3 = co_await event_types(*e, id);
        EXPECT_EQ(
            seen_types3, (std::vector<std::string>{"job.queued", "job.started", "job.cancelled"})
        );
        e->stop();
    });
}

TEST_F(EngineTest, TimeoutFailsTheAttempt) {
    auto e = make_engine();
    test::run_coro([&](auto& ioc) -> net::awaitable<void> {
        co_await e->start(ioc.get_executor());
        const auto id = co_await submit(
            *e, R"({"type":"sleep","payload":{"ms":60000},"timeout_s":1,"max_attempts":1})"
        );
        auto failed = co_await wait_for(*e, id, job_state::failed, 10s);
        EXPECT_NE(failed.error.find("timeout"), std::string::npos) << failed.error;
        e->stop();
    });
}

TEST_F(EngineTest, DelayedJobWaitsForItsTime) {
    auto e = make_engine();
    test::run_coro([&](auto& ioc) -> net::awaitable<void> {
        co_await e->start(ioc.get_executor());
        const auto id = co_await submit(*e, R"({"type":"noop","delay_s":0.6})");
        co_await pause(200ms);
        auto early = co_await e->find(id);
        EXPECT_EQ(early->state, job_state::queued);
        auto done = co_await wait_for(*e, id, job_state::succeeded, 5s);
        EXPECT_GE(done.started_at, done.created_at + 600);
        e->stop();
    });
}

TEST_F(EngineTest, TypeConcurrencyLimitHolds) {
    auto e = make_engine();
    test::run_coro(
        [&](auto& ioc) -> net::awaitable<void> {
            co_await e->start(ioc.get_executor());
            std::vector<std::string> ids;
            for (int idx = 0; idx < 4; ++idx) {
                ids.push_back(co_await submit(*e, R"({"type":"limited"})"));
            }
            for (const auto& id : ids) {
                co_await wait_for(*e, id, job_state::succeeded);
            }
            EXPECT_EQ(script_.max_active.load(), 1);
            e->stop();
        },
        2
    );
}

TEST_F(EngineTest, RestartReleasesThisNodesActiveJobsAndRunsThem) {
    std::string id;
    {
        test::run_coro([&](auto&) -> net::awaitable<void> {
            store::new_job spec;
            spec.type = "noop";
            spec.max_attempts = 3;
            std::vector<store::new_job> specs{spec};
            auto created = co_await db_->create_jobs(specs, clock_.now());
            id = created->front().job.id;
            store::claim_request claim{
                .owner = "test-node", .types = {"noop"}, .max = 1, .now = clock_.now()};
            auto claimed = co_await db_->claim_jobs(claim);  // as if a crashed process held it
            EXPECT_EQ(claimed.size(), 1U);
        });
    }
    auto e = make_engine("test-node");
    test::run_coro([&](auto& ioc) -> net::awaitable<void> {
        co_await e->start(ioc.get_executor());
        auto done = co_await wait_for(*e, id, job_state::succeeded, 5s);
        EXPECT_EQ(done.attempts, 2);
        auto types = co_await event_types(*e, id);
        EXPECT_EQ(
            types,
            (std::vector<std::string>{
                "job.queued", "job.started", "job.retrying", "job.started", "job.succeeded"})
        );
        e->stop();
    });
}

TEST_F(EngineTest, RemoteClaimLongPollWakesOnSubmission) {
    auto e = make_engine();
    test::run_coro(
        [&](auto& ioc) -> net::awaitable<void> {
            co_await e->start(ioc.get_executor());
            auto submitter = [&]() -> net::awaitable<void> {
                co_await pause(300ms);
                co_await submit(*e, R"({"type":"remote_work"})");
            };
            net::co_spawn(net::make_strand(ioc), submitter, net::detached);
            const auto started = std::chrono::steady_clock::now();
            remote_claim long_poll{.worker = "w1", .types = {"remote_work"}, .max = 5, .wait = 20s};
            auto claimed = co_await e->claim(long_poll);
            const auto waited = std::chrono::steady_clock::now() - started;
            EXPECT_EQ(claimed->size(), 1U);
            EXPECT_LT(waited, 10s) << "woken by the submission, not by the 20 s deadline";
            remote_claim short_poll{
                .worker = "w1", .types = {"remote_work"}, .max = 5, .wait = 200ms};
            auto empty = co_await e->claim(short_poll);
            EXPECT_TRUE(empty->empty());
            e->stop();
        },
        2
    );
}

// Folds job `id`'s delta events of part `part` into text, checking each `at` continues the
// text exactly (no gap, no overlap) and counting the events.
struct folded {
    std::string text;
    int events = 0;
    bool contiguous = true;
    std::vector<std::string> types;
};

net::awaitable<folded> fold_part(engine& e, const std::string& id, const std::string& part) {
    folded out;
    auto events = co_await e.events(store::job_topic(id), 0, 1000);
    for (const auto& ev : events.value()) {
        out.types.push_back(ev.type);
        if (!store::is_delta_type(ev.type)) {
            continue;
        }
        auto d = store::parse_delta(ev.data);
        if (!d || d->part != part) {
            continue;
        }
        out.contiguous = out.contiguous && d->at == store::utf16_length(out.text);
        out.text += d->text;
        ++out.events;
    }
    co_return out;
}

TEST_F(EngineTest, InProcessDeltasAreCoalescedAndPrecedeTheOutcome) {
    auto e = make_engine();
    test::run_coro([&](auto& ioc) -> net::awaitable<void> {
        co_await e->start(ioc.get_executor());
        std::string text;
        for (int idx = 0; idx < 400; ++idx) {
            text += "tok" + std::to_string(idx) + (idx % 7 == 0 ? "😀 " : " ");
        }
        const auto body = json::serialize(json::object{
            {"type", "type"},
            {"payload", json::object{{"text", text}, {"chunk", 3}, {"interval_ms", 0}}}});
        const auto id = co_await submit(*e, body);
        co_await wait_for(*e, id, job_state::succeeded);
        auto got = co_await fold_part(*e, id, "p0");
        EXPECT_EQ(got.text, text);
        EXPECT_TRUE(got.contiguous);
        const auto chunks = static_cast<int>(text.size() / 3);
        EXPECT_LT(got.events, chunks / 10) << "hundreds of deltas coalesce into few events";
        EXPECT_GT(got.events, 1) << "1 KiB flushes: a long text is more than one event";
        EXPECT_EQ(got.types.back(), "job.succeeded") << "the last deltas are written first";
        auto snap = co_await e->snapshot(id);
        EXPECT_TRUE(snap.has_value());
        if (!snap) {
            co_return;
        }
        EXPECT_EQ(snap->parts.at("p0"), text);
        EXPECT_EQ(snap->attempt, 1);
        EXPECT_TRUE(snap->complete);
        EXPECT_EQ(snap->offset, static_cast<std::int64_t>(got.types.size()));
        e->stop();
    });
}

TEST_F(EngineTest, SlowDeltasAreWrittenWithinTheFlushInterval) {
    auto e = make_engine();
    test::run_coro([&](auto& ioc) -> net::awaitable<void> {
        co_await e->start(ioc.get_executor());
        // Four chunks 300 ms apart: each is written 50 ms after it came, before the next.
        const auto id = co_await submit(
            *e, R"({"type":"type","payload":{"text":"abcdefgh","chunk":2,"interval_ms":300}})"
        );
        co_await pause(150ms);
        auto early = co_await fold_part(*e, id, "p0");
        EXPECT_EQ(early.text, "ab") << "the first chunk is in the log long before the job ends";
        co_await wait_for(*e, id, job_state::succeeded);
        auto got = co_await fold_part(*e, id, "p0");
        EXPECT_EQ(got.text, "abcdefgh");
        EXPECT_EQ(got.events, 4);
        e->stop();
    });
}

// A handler's concurrent tasks each open the attempt (the council's members do): opening it
// again must not drop what another task already buffered.
TEST_F(EngineTest, ReopeningAnAttemptKeepsItsBufferedDeltas) {
    auto e = make_engine();
    delta_coalescer deltas(*db_, clock_, {});  // outlives the io_context, as in the engine
    test::run_coro([&](auto& ioc) -> net::awaitable<void> {
        co_await e->start(ioc.get_executor());
        const auto id = co_await submit(*e, R"({"type":"remote_work"})");
        remote_claim claim{.worker = "w1", .types = {"remote_work"}, .max = 1};
        auto claimed = co_await e->claim(claim);
        const auto token = claimed->at(0).job.lease_token;
        deltas.start(ioc.get_executor());
        co_await deltas.open(id, token, 1);
        auto added = co_await deltas.add(id, token, "delta", "p", "first ");
        EXPECT_TRUE(added.has_value());
        co_await deltas.open(id, token, 1);
        added = co_await deltas.add(id, token, "delta", "p", "second");
        auto written = co_await deltas.flush(id);
        EXPECT_TRUE(written.has_value());
        auto got = co_await fold_part(*e, id, "p");
        EXPECT_EQ(got.text, "first second");
        EXPECT_TRUE(got.contiguous);
        deltas.stop();
        e->stop();
    });
}

TEST_F(EngineTest, RemoteDeltasAreBufferedFencedAndFlushedBeforeOtherWrites) {
    auto e = make_engine();
    test::run_coro([&](auto& ioc) -> net::awaitable<void> {
        co_await e->start(ioc.get_executor());
        const auto id = co_await submit(*e, R"({"type":"remote_work"})");
        remote_claim claim{.worker = "w1", .types = {"remote_work"}, .max = 1};
        auto claimed = co_await e->claim(claim);
        const auto token = claimed->at(0).job.lease_token;
        std::string expected;
        for (int idx = 0; idx < 50; ++idx) {
            std::string piece = "w" + std::to_string(idx) + " ";
            expected += piece;
            std::vector<store::event_spec> specs{
                {"answer.delta", json::serialize(json::object{{"part", "a"}, {"text", piece}})}};
            auto posted = co_await e->post_events(id, token, std::move(specs));
            EXPECT_TRUE(posted.has_value());
            if (!posted) {
                co_return;
            }
            EXPECT_EQ(posted->buffered, 1U);
        }
        // A plain event flushes what was buffered before it, so it comes after.
        std::vector<store::event_spec> note{{"answer.done", "{}"}};
        auto plain = co_await e->post_events(id, token, std::move(note));
        EXPECT_TRUE(plain.has_value());
        if (!plain) {
            co_return;
        }
        EXPECT_EQ(plain->events.back().type, "answer.done");
        auto got = co_await fold_part(*e, id, "a");
        EXPECT_EQ(got.text, expected);
        EXPECT_TRUE(got.contiguous);
        EXPECT_LE(got.events, 3) << "50 posts within milliseconds are one or a few events";
        EXPECT_EQ(got.types.back(), "answer.done");
        // Bad input: a delta without {part, text}, a stale token.
        std::vector<store::event_spec> bad{{"x.delta", R"({"text":"no part"})"}};
        auto refused = co_await e->post_events(id, token, std::move(bad));
        EXPECT_EQ(refused.error().code, errc::bad_request);
        std::vector<store::event_spec> stale{{"x.delta", R"({"part":"a","text":"t"})"}};
        auto fenced = co_await e->post_events(id, "not-the-token", std::move(stale));
        EXPECT_EQ(fenced.error().code, errc::lease_lost);
        // Deltas still buffered when the worker completes go first.
        std::vector<store::event_spec> last{{"answer.delta", R"({"part":"a","text":"END"})"}};
        co_await e->post_events(id, token, std::move(last));
        auto done = co_await e->complete(id, token, "null");
        EXPECT_TRUE(done.has_value());
        if (!done) {
            co_return;
        }
        auto final_fold = co_await fold_part(*e, id, "a");
        EXPECT_EQ(final_fold.text, expected + "END");
        EXPECT_EQ(final_fold.types.back(), "job.succeeded");
        e->stop();
    });
}

TEST_F(EngineTest, RemoteClaimRefusesTypesNotServedRemotely) {
    auto e = make_engine();
    test::run_coro([&](auto&) -> net::awaitable<void> {
        const remote_claim in_process{.worker = "w1", .types = {"noop"}};
        auto noop = co_await e->claim(in_process);
        EXPECT_EQ(noop.error().code, errc::unknown_job_type);
        const remote_claim unknown_type{.worker = "w1", .types = {"nope"}};
        auto unknown = co_await e->claim(unknown_type);
        EXPECT_EQ(unknown.error().code, errc::unknown_job_type);
        const remote_claim no_types{.worker = "w1", .types = {}};
        auto none = co_await e->claim(no_types);
        EXPECT_EQ(none.error().code, errc::bad_request);
        const remote_claim greedy{.worker = "w1", .types = {"remote_work"}, .max = 5000};
        auto too_many = co_await e->claim(greedy);
        EXPECT_EQ(too_many.error().code, errc::bad_request);
        std::vector<store::event_spec> reserved_events{{"job.succeeded", "{}"}};
        auto reserved = co_await e->post_events("x", "y", reserved_events);
        EXPECT_EQ(reserved.error().code, errc::bad_request);
    });
}

TEST_F(EngineTest, BatchSubmissionIsAtomicAndNamesTheBadItem) {
    auto e = make_engine();
    test::run_coro([&](auto&) -> net::awaitable<void> {
        auto bad =
            co_await e->submit_batch(json::parse(R"({"jobs":[{"type":"noop"},{"type":"nope"}]})"));
        EXPECT_EQ(bad.error().code, errc::unknown_job_type);
        EXPECT_NE(bad.error().message.find("jobs[1]"), std::string::npos);
        const store::job_filter filter1{};
        auto page = co_await e->list(filter1);
        EXPECT_TRUE(page.jobs.empty());
        auto ok =
            co_await e->submit_batch(json::parse(R"({"jobs":[{"type":"noop"},{"type":"noop"}]})"));
        EXPECT_EQ(ok->size(), 2U);
        auto empty = co_await e->submit_batch(json::parse(R"({"jobs":[]})"));
        EXPECT_EQ(empty.error().code, errc::bad_request);
    });
}

}  // namespace
}  // namespace conclave::jobs
