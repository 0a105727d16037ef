// The store contract: behaviour every backend shares. Instantiated per backend.
#include "store/store_contract.hpp"

#include <atomic>
#include <mutex>
#include <set>

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "support/run_coro.hpp"

namespace conclave::test {
namespace {

using store::job_state;
constexpr unix_ms t0 = 1'700'000'000'000;

store::new_job spec(
    const std::string& type = "work", const std::string& key = "", const std::string& hash = "h1"
) {
    store::new_job j;
    j.type = type;
    j.payload = R"({"n":1})";
    j.run_at = t0;
    j.max_attempts = 3;
    j.backoff_base_ms = 1000;
    j.backoff_cap_ms = 10'000;
    j.idempotency_key = key;
    j.request_hash = hash;
    return j;
}

// Vectors built outside co_await expressions: GCC 12 miscompiles an initializer list there.
template <class... Specs>
std::vector<store::new_job> jobs_of(Specs... specs) {
    return {specs...};
}

std::vector<store::event_spec> event_of(const std::string& type, const std::string& data = "{}") {
    return {store::event_spec{type, data}};
}

store::claim_request claim_of(
    std::vector<std::string> types, int max, unix_ms now = t0, std::string owner = "w1"
) {
    store::claim_request r;
    r.owner = std::move(owner);
    r.types = std::move(types);
    r.max = max;
    r.now = now;
    r.lease_ms = 10'000;
    return r;
}

store::claim_request claim_work(int max, unix_ms now = t0, std::string owner = "w1") {
    return claim_of({"work"}, max, now, std::move(owner));
}

store::retry_policy retry_after(unix_ms delay) {
    return [delay](const store::job& j, bool retryable, unix_ms now) -> std::optional<unix_ms> {
        if (!retryable || j.attempts >= j.max_attempts) {
            return std::nullopt;
        }
        return now + delay;
    };
}

// Asserts that `topic` holds offsets 1..n exactly, and returns the event types in order.
net::awaitable<std::vector<std::string>> types_of(store::store& db, const std::string& topic) {
    auto events = co_await db.read_events(topic, 0, 1000);
    std::vector<std::string> out;
    EXPECT_TRUE(events.has_value());
    if (!events) {
        co_return out;
    }
    std::int64_t expected = 1;
    for (const auto& e : *events) {
        EXPECT_EQ(e.offset, expected++) << topic;
        out.push_back(e.type);
    }
    co_return out;
}

TEST_P(StoreContract, CreateAppendsQueuedEventAndFindReturnsJob) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto created = co_await db().create_jobs(jobs_of(spec()), t0);
        EXPECT_TRUE(created.has_value());
        const auto& j = created->front().job;
        EXPECT_TRUE(created->front().created);
        EXPECT_EQ(j.state, job_state::queued);
        auto found = co_await db().find_job(j.id);
        EXPECT_TRUE(found.has_value());
        EXPECT_EQ(found->payload, R"({"n":1})");
        EXPECT_EQ(found->max_attempts, 3);
        auto types = co_await types_of(db(), store::job_topic(j.id));
        EXPECT_EQ(types, std::vector<std::string>{"job.queued"});
    });
}

TEST_P(StoreContract, UnknownJobIsNotFound) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto found = co_await db().find_job("nope");
        EXPECT_FALSE(found.has_value());
        EXPECT_EQ(found.error().code, errc::not_found);
        auto events = co_await db().read_events("job:nope", 0, 10);
        EXPECT_EQ(events.error().code, errc::not_found);
        auto cancelled = co_await db().cancel_job("nope", t0);
        EXPECT_EQ(cancelled.error().code, errc::not_found);
    });
}

TEST_P(StoreContract, IdempotencyKeyReturnsExistingOrConflicts) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto first = co_await db().create_jobs(jobs_of(spec("work", "k1", "hash-a")), t0);
        auto again = co_await db().create_jobs(jobs_of(spec("work", "k1", "hash-a")), t0 + 5);
        EXPECT_TRUE(again.has_value());
        EXPECT_FALSE(again->front().created);
        EXPECT_EQ(again->front().job.id, first->front().job.id);
        auto conflict = co_await db().create_jobs(jobs_of(spec("work", "k1", "hash-b")), t0 + 6);
        EXPECT_FALSE(conflict.has_value());
        EXPECT_EQ(conflict.error().code, errc::idempotency_conflict);
        const store::job_filter filter1{};
        auto page = co_await db().list_jobs(filter1);
        EXPECT_EQ(page.jobs.size(), 1U);
    });
}

TEST_P(StoreContract, ARepeatedKeyInOneBatchFindsTheFirstOrConflicts) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto both = co_await db().create_jobs(
            jobs_of(spec("work", "twice", "hash-a"), spec(), spec("work", "twice", "hash-a")), t0
        );
        EXPECT_TRUE(both.has_value());
        EXPECT_TRUE(both->at(0).created);
        EXPECT_FALSE(both->at(2).created) << "the second finds the first";
        EXPECT_EQ(both->at(2).job.id, both->at(0).job.id);
        EXPECT_EQ(both->at(2).job.seq, both->at(0).job.seq);
        auto clash = co_await db().create_jobs(
            jobs_of(spec("work", "pair", "hash-a"), spec("work", "pair", "hash-b")), t0
        );
        EXPECT_EQ(clash.error().code, errc::idempotency_conflict);
        const store::job_filter all{};
        auto page = co_await db().list_jobs(all);
        EXPECT_EQ(page.jobs.size(), 2U) << "one job for the repeated key, one plain";
    });
}

TEST_P(StoreContract, BatchIsAllOrNothing) {
    run_coro([&](auto&) -> net::awaitable<void> {
        co_await db().create_jobs(jobs_of(spec("work", "taken", "hash-a")), t0);
        std::vector<store::new_job> batch{spec(), spec(), spec("work", "taken", "other-hash")};
        auto refused = co_await db().create_jobs(batch, t0);
        EXPECT_EQ(refused.error().code, errc::idempotency_conflict);
        const store::job_filter filter2{};
        auto page = co_await db().list_jobs(filter2);
        EXPECT_EQ(page.jobs.size(), 1U) << "the two valid jobs of the refused batch must not exist";
        // The refused batch's events were rolled back too: a new job's topic starts at 1.
        auto ok = co_await db().create_jobs(jobs_of(spec(), spec()), t0);
        EXPECT_EQ(ok->size(), 2U);
        auto types = co_await types_of(db(), store::job_topic(ok->front().job.id));
        EXPECT_EQ(types.size(), 1U);
    });
}

TEST_P(StoreContract, ClaimTakesHighestPriorityDueJobsAndStartsAttempt) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto low = spec();
        auto high = spec();
        high.priority = 10;
        auto later = spec();
        later.priority = 100;
        later.run_at = t0 + 60'000;
        auto other_type = spec("other");
        auto created = co_await db().create_jobs(jobs_of(low, high, later, other_type), t0);
        auto claimed = co_await db().claim_jobs(claim_work(5));
        EXPECT_EQ(claimed.size(), 2U) << "the delayed job and the other type are not claimed";
        EXPECT_EQ(claimed[0].job.id, (*created)[1].job.id) << "higher priority first";
        EXPECT_EQ(claimed[0].job.attempts, 1);
        EXPECT_EQ(claimed[0].job.state, job_state::active);
        EXPECT_FALSE(claimed[0].job.lease_token.empty());
        EXPECT_NE(claimed[0].job.lease_token, claimed[1].job.lease_token);
        auto types = co_await types_of(db(), store::job_topic(claimed[0].job.id));
        EXPECT_EQ(types, (std::vector<std::string>{"job.queued", "job.started"}));
        auto none = co_await db().claim_jobs(claim_work(5));
        EXPECT_TRUE(none.empty()) << "an active job is never claimed twice";
        auto due = co_await db().claim_jobs(claim_work(5, t0 + 60'000));
        EXPECT_EQ(due.size(), 1U) << "the delayed job once its time has come";
    });
}

TEST_P(StoreContract, RepeatedTypesInAClaimClaimEachJobOnce) {
    run_coro([&](auto&) -> net::awaitable<void> {
        co_await db().create_jobs(jobs_of(spec()), t0);
        auto request = claim_of({"work", "work", "work"}, 5);
        auto claimed = co_await db().claim_jobs(request);
        EXPECT_EQ(claimed.size(), 1U);
        auto types = co_await types_of(db(), store::job_topic(claimed.at(0).job.id));
        EXPECT_EQ(types.size(), 2U) << "one job.started, not one per repeated type";
    });
}

TEST_P(StoreContract, HeartbeatExtendsByTheClaimsOwnLeaseLength) {
    run_coro([&](auto&) -> net::awaitable<void> {
        co_await db().create_jobs(jobs_of(spec()), t0);
        auto request = claim_work(1);
        request.lease_ms = 600'000;
        auto c = co_await db().claim_jobs(request);
        auto beat =
            co_await db().heartbeat(c.at(0).job.id, c.at(0).job.lease_token, t0 + 1000, 30'000, "");
        EXPECT_EQ(beat->lease_expires_at, t0 + 1000 + 600'000) << "not shortened to the default";
    });
}

TEST_P(StoreContract, ClaimRespectsTypeAndQueueLimits) {
    run_coro([&](auto&) -> net::awaitable<void> {
        std::vector<store::new_job> specs;
        for (int idx = 0; idx < 6; ++idx) {
            auto s = spec();
            s.queue = idx < 3 ? "slow" : "fast";
            specs.push_back(s);
        }
        co_await db().create_jobs(specs, t0);
        auto request = claim_work(10);
        request.queue_limits = {{"slow", 1}};
        request.type_limits = {{"work", 3}};
        auto claimed = co_await db().claim_jobs(request);
        EXPECT_EQ(claimed.size(), 3U);
        int slow = 0;
        for (const auto& c : claimed) {
            slow += c.job.queue == "slow" ? 1 : 0;
        }
        EXPECT_EQ(slow, 1);
        auto more = co_await db().claim_jobs(request);
        EXPECT_TRUE(more.empty()) << "type limit counts active jobs across claims";
    });
}

TEST_P(StoreContract, CompleteIsFencedByLeaseToken) {
    run_coro([&](auto&) -> net::awaitable<void> {
        co_await db().create_jobs(jobs_of(spec()), t0);
        auto claimed = co_await db().claim_jobs(claim_work(1));
        const auto& j = claimed.at(0).job;
        auto stale = co_await db().complete_job(j.id, "not-the-token", "1", t0 + 1);
        EXPECT_EQ(stale.error().code, errc::lease_lost);
        auto done = co_await db().complete_job(j.id, j.lease_token, R"({"ok":true})", t0 + 2);
        EXPECT_TRUE(done.has_value());
        EXPECT_EQ(done->state, job_state::succeeded);
        auto twice = co_await db().complete_job(j.id, j.lease_token, "2", t0 + 3);
        EXPECT_EQ(twice.error().code, errc::lease_lost) << "a job completes once";
        auto found = co_await db().find_job(j.id);
        EXPECT_EQ(found->result, R"({"ok":true})");
        auto types = co_await types_of(db(), store::job_topic(j.id));
        EXPECT_EQ(types, (std::vector<std::string>{"job.queued", "job.started", "job.succeeded"}));
    });
}

TEST_P(StoreContract, RetryableFailureRequeuesWithBackoffUntilAttemptsRunOut) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto s = spec();
        s.max_attempts = 2;
        co_await db().create_jobs(jobs_of(s), t0);
        auto first = co_await db().claim_jobs(claim_work(1));
        auto failed = co_await db().fail_job(
            first[0].job.id,
            first[0].job.lease_token,
            R"({"message":"x"})",
            true,
            retry_after(5000),
            t0 + 10
        );
        EXPECT_EQ(failed->state, job_state::queued);
        EXPECT_EQ(failed->run_at, t0 + 10 + 5000);
        auto early = co_await db().claim_jobs(claim_work(1, t0 + 100));
        EXPECT_TRUE(early.empty()) << "not before its backoff";
        auto second = co_await db().claim_jobs(claim_work(1, t0 + 5010));
        EXPECT_EQ(second.at(0).job.attempts, 2);
        auto stale = co_await db().fail_job(
            first[0].job.id, first[0].job.lease_token, "{}", true, retry_after(1), t0 + 5011
        );
        EXPECT_EQ(stale.error().code, errc::lease_lost) << "the first attempt's token is dead";
        auto last = co_await db().fail_job(
            second[0].job.id,
            second[0].job.lease_token,
            R"({"message":"y"})",
            true,
            retry_after(5000),
            t0 + 5020
        );
        EXPECT_EQ(last->state, job_state::failed) << "attempts exhausted";
        auto types = co_await types_of(db(), store::job_topic(second[0].job.id));
        EXPECT_EQ(
            types,
            (std::vector<std::string>{
                "job.queued", "job.started", "job.retrying", "job.started", "job.failed"})
        );
        const store::job_filter filter3{.state = job_state::failed};
        auto dead = co_await db().list_jobs(filter3);
        EXPECT_EQ(dead.jobs.size(), 1U);
    });
}

TEST_P(StoreContract, NonRetryableFailureFailsAtOnce) {
    run_coro([&](auto&) -> net::awaitable<void> {
        co_await db().create_jobs(jobs_of(spec()), t0);
        auto c = co_await db().claim_jobs(claim_work(1));
        auto failed = co_await db().fail_job(
            c[0].job.id, c[0].job.lease_token, "{}", false, retry_after(1), t0 + 1
        );
        EXPECT_EQ(failed->state, job_state::failed);
        EXPECT_EQ(failed->attempts, 1);
    });
}

TEST_P(StoreContract, ExpiredLeaseReturnsJobToQueueAndFencesOldWorker) {
    run_coro([&](auto&) -> net::awaitable<void> {
        co_await db().create_jobs(jobs_of(spec()), t0);
        auto c = co_await db().claim_jobs(claim_work(1));
        auto nothing = co_await db().expire_leases(t0 + 5'000, 0, retry_after(0));
        EXPECT_TRUE(nothing.empty()) << "lease still valid";
        auto beat =
            co_await db().heartbeat(c[0].job.id, c[0].job.lease_token, t0 + 9'000, 10'000, "");
        EXPECT_EQ(beat->lease_expires_at, t0 + 19'000);
        auto expired = co_await db().expire_leases(t0 + 19'001, 0, retry_after(0));
        EXPECT_EQ(expired.size(), 1U);
        auto found = co_await db().find_job(c[0].job.id);
        EXPECT_EQ(found->state, job_state::queued);
        EXPECT_EQ(found->attempts, 1) << "the lost attempt counts";
        auto late =
            co_await db().heartbeat(c[0].job.id, c[0].job.lease_token, t0 + 19'002, 10'000, "");
        EXPECT_EQ(late.error().code, errc::lease_lost);
        auto again = co_await db().claim_jobs(claim_work(1, t0 + 19'003, "w2"));
        EXPECT_EQ(again.at(0).job.attempts, 2);
        auto late_complete =
            co_await db().complete_job(c[0].job.id, c[0].job.lease_token, "1", t0 + 19'004);
        EXPECT_EQ(late_complete.error().code, errc::lease_lost);
    });
}

TEST_P(StoreContract, TimeoutEndsAttemptEvenWithFreshLease) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto s = spec();
        s.timeout_s = 2;
        co_await db().create_jobs(jobs_of(s), t0);
        auto c = co_await db().claim_jobs(claim_work(1));
        co_await db().heartbeat(c[0].job.id, c[0].job.lease_token, t0 + 2'500, 10'000, "");
        auto within_grace = co_await db().expire_leases(t0 + 2'900, 1'000, retry_after(0));
        EXPECT_TRUE(within_grace.empty());
        auto expired = co_await db().expire_leases(t0 + 3'100, 1'000, retry_after(0));
        EXPECT_EQ(expired.size(), 1U);
        EXPECT_NE(expired[0].error.find("timeout"), std::string::npos);
    });
}

// A timeout's milliseconds pass 2^31 after 24.8 days: PostgreSQL computed them in 32 bits
// ("integer out of range"), failing every sweep while such a job was active.
TEST_P(StoreContract, TimeoutsLongerThanAMonthAreMeasuredInFull) {
    run_coro([&](auto&) -> net::awaitable<void> {
        constexpr int month_and_more_s = 3'000'000;
        auto s = spec();
        s.timeout_s = month_and_more_s;
        co_await db().create_jobs(jobs_of(s), t0);
        auto c = co_await db().claim_jobs(claim_work(1));
        EXPECT_EQ(c.size(), 1U);
        const unix_ms limit = t0 + std::int64_t{month_and_more_s} * 1000;
        co_await db().heartbeat(c[0].job.id, c[0].job.lease_token, limit - 1, 10'000, "");
        auto before = co_await db().expire_leases(limit - 1, 0, retry_after(0));
        EXPECT_TRUE(before.empty());
        auto after = co_await db().expire_leases(limit + 1, 0, retry_after(0));
        EXPECT_EQ(after.size(), 1U);
    });
}

TEST_P(StoreContract, ReleaseOwnerRequeuesOnlyThatOwnersJobs) {
    run_coro([&](auto&) -> net::awaitable<void> {
        co_await db().create_jobs(jobs_of(spec(), spec()), t0);
        co_await db().claim_jobs(claim_work(1, t0, "node-a"));
        auto remote = co_await db().claim_jobs(claim_work(1, t0, "worker-b"));
        auto released = co_await db().release_owner("node-a", t0 + 1, retry_after(0));
        EXPECT_EQ(released.size(), 1U);
        auto b = co_await db().find_job(remote[0].job.id);
        EXPECT_EQ(b->state, job_state::active) << "another owner's lease is untouched";
    });
}

TEST_P(StoreContract, CancelAndRetryFollowTheStateMachine) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto created = co_await db().create_jobs(jobs_of(spec(), spec()), t0);
        const auto queued_id = (*created)[0].job.id;
        auto cancelled = co_await db().cancel_job(queued_id, t0 + 1);
        EXPECT_EQ(cancelled->state, job_state::cancelled);
        auto again = co_await db().cancel_job(queued_id, t0 + 2);
        EXPECT_EQ(again.error().code, errc::invalid_transition);

        auto c = co_await db().claim_jobs(claim_work(1));
        auto active_cancel = co_await db().cancel_job(c[0].job.id, t0 + 3);
        EXPECT_EQ(active_cancel->state, job_state::cancelled);
        auto beat = co_await db().heartbeat(c[0].job.id, c[0].job.lease_token, t0 + 4, 10'000, "");
        EXPECT_TRUE(beat.has_value());
        EXPECT_TRUE(beat->cancel_requested) << "the worker learns of the cancellation";
        auto complete = co_await db().complete_job(c[0].job.id, c[0].job.lease_token, "1", t0 + 5);
        EXPECT_EQ(complete.error().code, errc::invalid_transition);

        auto cancelled_while_active = co_await db().retry_job(c[0].job.id, t0 + 6);
        EXPECT_TRUE(cancelled_while_active.has_value());
        auto retried = co_await db().retry_job(queued_id, t0 + 7);
        EXPECT_EQ(retried->state, job_state::queued);
        EXPECT_EQ(retried->attempts, 0);
        auto types = co_await types_of(db(), store::job_topic(queued_id));
        EXPECT_EQ(types, (std::vector<std::string>{"job.queued", "job.cancelled", "job.queued"}));
    });
}

TEST_P(StoreContract, RetryOfQueuedOrSucceededIsInvalid) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto created = co_await db().create_jobs(jobs_of(spec()), t0);
        auto r = co_await db().retry_job(created->front().job.id, t0 + 1);
        EXPECT_EQ(r.error().code, errc::invalid_transition);
        auto c = co_await db().claim_jobs(claim_work(1));
        co_await db().complete_job(c[0].job.id, c[0].job.lease_token, "1", t0 + 2);
        auto r2 = co_await db().retry_job(c[0].job.id, t0 + 3);
        EXPECT_EQ(r2.error().code, errc::invalid_transition);
        auto cancel = co_await db().cancel_job(c[0].job.id, t0 + 4);
        EXPECT_EQ(cancel.error().code, errc::invalid_transition);
    });
}

TEST_P(StoreContract, StepsAreRecordedOnceAndSurviveRetries) {
    run_coro([&](auto&) -> net::awaitable<void> {
        co_await db().create_jobs(jobs_of(spec()), t0);
        auto c = co_await db().claim_jobs(claim_work(1));
        const auto& j = c[0].job;
        auto saved = co_await db().save_step(j.id, j.lease_token, "stage1/a", R"("first")", t0 + 1);
        EXPECT_EQ(saved->result, R"("first")");
        auto dup = co_await db().save_step(j.id, j.lease_token, "stage1/a", R"("second")", t0 + 2);
        EXPECT_EQ(dup->result, R"("first")") << "the first recorded result wins";
        auto stale = co_await db().save_step(j.id, "bad", "stage1/b", "1", t0 + 3);
        EXPECT_EQ(stale.error().code, errc::lease_lost);
        co_await db().fail_job(j.id, j.lease_token, "{}", true, retry_after(0), t0 + 4);
        auto again = co_await db().claim_jobs(claim_work(1, t0 + 5));
        EXPECT_EQ(again.at(0).steps.size(), 1U);
        EXPECT_EQ(again.at(0).steps[0].key, "stage1/a");
        auto listed = co_await db().load_steps(j.id);
        EXPECT_EQ(listed->size(), 1U);
        // Failed for good, then retried by hand (attempts start again from 0): still there.
        const auto& a = again.at(0).job;
        co_await db().fail_job(a.id, a.lease_token, "{}", false, retry_after(0), t0 + 6);
        co_await db().retry_job(a.id, t0 + 7);
        auto retried = co_await db().claim_jobs(claim_work(1, t0 + 8));
        EXPECT_EQ(retried.at(0).job.attempts, 1);
        EXPECT_EQ(retried.at(0).steps.size(), 1U);
    });
}

TEST_P(StoreContract, ExtraTopicsGetTheirOwnGaplessOffsets) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto a = spec();
        a.topics = {"space:acme:runs"};
        auto b = a;
        co_await db().create_jobs(jobs_of(a, b), t0);
        auto c = co_await db().claim_jobs(claim_work(2));
        auto posted = co_await db().append_job_events(
            c[0].job.id, c[0].job.lease_token, event_of("stage1.delta", R"({"t":"hi"})"), t0 + 1
        );
        EXPECT_EQ(posted->size(), 1U);
        EXPECT_EQ(posted->front().offset, 3) << "queued, started, then this";
        auto types = co_await types_of(db(), "space:acme:runs");
        EXPECT_EQ(types.size(), 5U) << "2 queued + 2 started + 1 handler event on the shared topic";
        auto page = co_await db().read_events("space:acme:runs", 3, 1);
        EXPECT_EQ(page->size(), 1U);
        EXPECT_EQ(page->front().offset, 4);
        auto stale = co_await db().append_job_events(c[0].job.id, "bad", event_of("x"), t0 + 2);
        EXPECT_EQ(stale.error().code, errc::lease_lost);
    });
}

TEST_P(StoreContract, AppendEventsToAnApplicationTopic) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto first = co_await db().append_events("space:app", event_of("a"), t0);
        auto second = co_await db().append_events("space:app", event_of("b", R"({"x":1})"), t0 + 1);
        EXPECT_EQ(first.at(0).offset, 1);
        EXPECT_EQ(second.at(0).offset, 2);
        auto types = co_await types_of(db(), "space:app");
        EXPECT_EQ(types, (std::vector<std::string>{"a", "b"}));
    });
}

TEST_P(StoreContract, LastOffsetIsTheNewestEventsOrZero) {
    run_coro([&](auto&) -> net::awaitable<void> {
        EXPECT_EQ(co_await db().last_offset("space:none"), 0);
        for (int idx = 0; idx < 5; ++idx) {
            co_await db().append_events("space:five", event_of("e"), t0 + idx);
        }
        co_await db().append_events("space:other", event_of("e"), t0);
        EXPECT_EQ(co_await db().last_offset("space:five"), 5);
        EXPECT_EQ(co_await db().last_offset("space:other"), 1);
        co_await db().prune_events("space:five", 0, 1, 100);  // retention keeps the newest
        EXPECT_EQ(co_await db().last_offset("space:five"), 5);
    });
}

TEST_P(StoreContract, PruneOfJobTopicsKeepsEachJobsNewestEventAndItsOffsetsGoOn) {
    std::vector<std::string> ids;
    std::vector<std::int64_t> kept;
    std::vector<std::int64_t> last;
    std::vector<std::int64_t> after_retry;
    std::size_t pruned = 0;
    std::int64_t untouched = 0;
    run_coro([&](auto&) -> net::awaitable<void> {
        co_await db().create_jobs(jobs_of(spec(), spec()), t0);
        auto claimed = co_await db().claim_jobs(claim_work(2));
        for (const auto& c : claimed) {
            co_await db().append_job_events(c.job.id, c.job.lease_token, event_of("x"), t0);
            ids.push_back(c.job.id);
        }
        if (ids.size() != 2) {
            co_return;
        }
        co_await db().complete_job(ids[0], claimed[0].job.lease_token, "{}", t0 + 1);
        co_await db().cancel_job(ids[1], t0 + 1);
        co_await db().append_events("space:untouched", event_of("e"), t0);
        co_await db().append_events("space:untouched", event_of("e"), t0);
        // queued, started, x, succeeded|cancelled on each job's topic: all but the newest go.
        pruned = co_await db().prune_events("job:", 0, 1, 1000);
        for (const auto& id : ids) {
            auto left = co_await db().read_events(store::job_topic(id), 0, 100);
            kept.push_back(left && left->size() == 1 ? left->front().offset : -1);
            last.push_back(co_await db().last_offset(store::job_topic(id)));
        }
        // The cancelled job, retried, numbers on from its newest event.
        co_await db().retry_job(ids[1], t0 + 2);
        auto now = co_await db().read_events(store::job_topic(ids[1]), 0, 100);
        if (now) {
            for (const auto& e : *now) {
                after_retry.push_back(e.offset);
            }
        }
        untouched = co_await db().last_offset("space:untouched");
    });
    ASSERT_EQ(ids.size(), 2U);
    EXPECT_EQ(pruned, 6U);
    EXPECT_EQ(kept, (std::vector<std::int64_t>{4, 4}));
    EXPECT_EQ(last, (std::vector<std::int64_t>{4, 4}));
    EXPECT_EQ(after_retry, (std::vector<std::int64_t>{4, 5}));
    EXPECT_EQ(untouched, 2) << "another prefix is left alone";
}

TEST_P(StoreContract, PruneKeepsEachTopicsNewestEventAndOffsetsGoOn) {
    run_coro([&](auto&) -> net::awaitable<void> {
        for (int idx = 0; idx < 10; ++idx) {
            co_await db().append_events("space:old", event_of("e"), t0 + idx);
            co_await db().append_events("space:keep", event_of("e"), t0 + idx);
            co_await db().append_events("other:x", event_of("e"), t0 + idx);
        }
        co_await db().append_events("space:lonely", event_of("e"), t0);
        // By count: at most 3 per topic under "space:old".
        auto pruned = co_await db().prune_events("space:old", 0, 3, 1000);
        EXPECT_EQ(pruned, 7U);
        auto left = co_await db().read_events("space:old", 0, 100);
        EXPECT_EQ(left->size(), 3U);
        EXPECT_EQ(left->front().offset, 8);
        // By age: everything before t0 + 5 under "space:", but never a topic's newest event.
        pruned = co_await db().prune_events("space:", t0 + 5, 0, 1000);
        EXPECT_EQ(pruned, 5U) << "space:keep loses 1..5; space:old and space:lonely keep theirs";
        left = co_await db().read_events("space:lonely", 0, 100);
        EXPECT_EQ(left->size(), 1U);
        // Slices: `limit` bounds one call.
        EXPECT_EQ(co_await db().prune_events("other:", 0, 1, 4), 4U);
        EXPECT_EQ(co_await db().prune_events("other:", 0, 1, 100), 5U);
        // Other prefixes were never touched, and offsets continue after the newest kept event.
        auto next = co_await db().append_events("space:old", event_of("e"), t0 + 20);
        EXPECT_EQ(next.at(0).offset, 11);
        auto lonely = co_await db().append_events("space:lonely", event_of("e"), t0 + 20);
        EXPECT_EQ(lonely.at(0).offset, 2);
    });
}

TEST_P(StoreContract, ListIsNewestFirstAndPaged) {
    run_coro([&](auto&) -> net::awaitable<void> {
        std::vector<store::new_job> specs(5, spec());
        specs[4].type = "other";
        co_await db().create_jobs(specs, t0);
        const store::job_filter filter4{.limit = 2};
        auto page1 = co_await db().list_jobs(filter4);
        EXPECT_EQ(page1.jobs.size(), 2U);
        EXPECT_EQ(page1.jobs[0].type, "other");
        EXPECT_NE(page1.next_cursor, 0);
        const store::job_filter filter5{.limit = 2, .before_seq = page1.next_cursor};
        auto page2 = co_await db().list_jobs(filter5);
        const store::job_filter filter6{.limit = 2, .before_seq = page2.next_cursor};
        auto page3 = co_await db().list_jobs(filter6);
        EXPECT_EQ(page3.jobs.size(), 1U);
        EXPECT_EQ(page3.next_cursor, 0);
        std::set<std::string> ids;
        for (const auto* p : {&page1, &page2, &page3}) {
            for (const auto& j : p->jobs) {
                ids.insert(j.id);
            }
        }
        EXPECT_EQ(ids.size(), 5U);
        const store::job_filter filter7{.type = "other"};
        auto typed = co_await db().list_jobs(filter7);
        EXPECT_EQ(typed.jobs.size(), 1U);
        auto counts = co_await db().count_jobs();
        EXPECT_EQ(counts.queued, 5);
    });
}

TEST_P(StoreContract, CountsByQueueAndTypeFollowEveryState) {
    run_coro([&](auto&) -> net::awaitable<void> {
        auto empty = co_await db().count_jobs_by_queue_and_type();
        EXPECT_TRUE(empty.empty());
        auto in_q2 = spec();
        in_q2.queue = "q2";
        co_await db().create_jobs(
            jobs_of(spec(), spec(), spec(), in_q2, spec("other"), spec("other")), t0
        );
        auto first = co_await db().claim_jobs(claim_work(1));
        co_await db().complete_job(first[0].job.id, first[0].job.lease_token, "1", t0 + 1);
        auto second = co_await db().claim_jobs(claim_work(1));
        co_await db().fail_job(
            second[0].job.id, second[0].job.lease_token, "{}", false, retry_after(0), t0 + 2
        );
        co_await db().claim_jobs(claim_work(1));
        const store::job_filter others{.type = "other"};
        auto other = co_await db().list_jobs(others);
        co_await db().cancel_job(other.jobs[0].id, t0 + 3);

        auto groups = co_await db().count_jobs_by_queue_and_type();
        EXPECT_EQ(groups.size(), 3U);
        if (groups.size() != 3) {
            co_return;
        }
        auto expect = [](const store::job_group_counts& g,
                         const char* queue,
                         const char* type,
                         store::job_counts c) {
            EXPECT_EQ(g.queue, queue);
            EXPECT_EQ(g.type, type);
            EXPECT_EQ(g.counts.queued, c.queued) << queue << "/" << type;
            EXPECT_EQ(g.counts.active, c.active) << queue << "/" << type;
            EXPECT_EQ(g.counts.succeeded, c.succeeded) << queue << "/" << type;
            EXPECT_EQ(g.counts.failed, c.failed) << queue << "/" << type;
            EXPECT_EQ(g.counts.cancelled, c.cancelled) << queue << "/" << type;
        };
        expect(groups[0], "default", "other", {.queued = 1, .cancelled = 1});
        expect(groups[1], "default", "work", {.active = 1, .succeeded = 1, .failed = 1});
        expect(groups[2], "q2", "work", {.queued = 1});
    });
}

TEST_P(StoreContract, StateAndOffsetsSurviveReopen) {
    std::string id;
    run_coro([&](auto&) -> net::awaitable<void> {
        auto created = co_await db().create_jobs(jobs_of(spec()), t0);
        id = created->front().job.id;
        co_await db().claim_jobs(claim_work(1));
    });
    reopen();
    run_coro([&](auto&) -> net::awaitable<void> {
        auto found = co_await db().find_job(id);
        EXPECT_EQ(found->state, job_state::active);
        co_await db().release_owner("w1", t0 + 1, retry_after(0));
        auto types = co_await types_of(db(), store::job_topic(id));
        EXPECT_EQ(types, (std::vector<std::string>{"job.queued", "job.started", "job.retrying"}));
    });
}

TEST_P(StoreContract, CommitListenerSeesEventsAfterCommit) {
    std::vector<store::event> seen;
    std::mutex mutex;
    db().set_commit_listener([&](const std::vector<store::event>& events) {
        std::lock_guard lock(mutex);
        seen.insert(seen.end(), events.begin(), events.end());
    });
    run_coro([&](auto&) -> net::awaitable<void> {
        auto created = co_await db().create_jobs(jobs_of(spec()), t0);
        std::lock_guard lock(mutex);
        EXPECT_EQ(seen.size(), 1U);
        EXPECT_EQ(seen.at(0).topic, store::job_topic(created->front().job.id));
        EXPECT_EQ(seen.at(0).offset, 1);
    });
}

TEST_P(StoreContract, ConcurrentWritersKeepEveryTopicGapless) {
    constexpr int writers = 8;
    constexpr int per_writer = 25;
    run_coro(
        [&](auto& ioc) -> net::awaitable<void> {
            co_await db().create_jobs(jobs_of(spec()), t0);
            auto c = co_await db().claim_jobs(claim_work(1));
            const auto j = c.at(0).job;
            std::atomic<int> done{0};
            for (int w = 0; w < writers; ++w) {
                auto writer = [&, j]() -> net::awaitable<void> {
                    for (int idx = 0; idx < per_writer; ++idx) {
                        auto posted = co_await db().append_job_events(
                            j.id, j.lease_token, event_of("tick"), t0
                        );
                        EXPECT_TRUE(posted.has_value());
                    }
                    ++done;
                };
                net::co_spawn(net::make_strand(ioc), std::move(writer), net::detached);
            }
            while (done.load() < writers) {
                net::steady_timer timer(
                    co_await net::this_coro::executor, std::chrono::milliseconds(5)
                );
                co_await timer.async_wait(net::use_awaitable);
            }
            auto types = co_await types_of(db(), store::job_topic(j.id));
            EXPECT_EQ(types.size(), 2U + writers * per_writer);
        },
        4
    );
}

}  // namespace
}  // namespace conclave::test
