#include "jobs/submission.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

namespace conclave::jobs {
namespace {

namespace json = boost::json;
constexpr unix_ms now = 1'000'000;

result<store::new_job> parse(std::string_view text) {
    return parse_submission(json::parse(text), builtin_registry(), now);
}

errc code_of(std::string_view text) {
    auto r = parse(text);
    EXPECT_FALSE(r.has_value()) << text;
    return r ? errc::internal : r.error().code;
}

TEST(SubmissionTest, MinimalSubmissionGetsTypeDefaults) {
    auto job = parse(R"({"type":"noop"})");
    ASSERT_TRUE(job.has_value());
    EXPECT_EQ(job->type, "noop");
    EXPECT_EQ(job->queue, "default");
    EXPECT_EQ(job->payload, "{}");
    EXPECT_EQ(job->max_attempts, 3);
    EXPECT_EQ(job->run_at, now);
}

TEST(SubmissionTest, AllFieldsAreRead) {
    auto job = parse(
        R"({"type":"sleep","payload":{"ms":5},"queue":"q1","priority":7,"delay_s":1.5,"max_attempts":9,)"
        R"("timeout_s":30,"backoff_base_s":0.5,"backoff_cap_s":10,"idempotency_key":"k","topics":["space:a","space:a"]})"
    );
    ASSERT_TRUE(job.has_value()) << job.error().message;
    EXPECT_EQ(job->queue, "q1");
    EXPECT_EQ(job->priority, 7);
    EXPECT_EQ(job->run_at, now + 1500);
    EXPECT_EQ(job->max_attempts, 9);
    EXPECT_EQ(job->timeout_s, 30);
    EXPECT_EQ(job->backoff_base_ms, 500);
    EXPECT_EQ(job->backoff_cap_ms, 10'000);
    EXPECT_EQ(job->idempotency_key, "k");
    EXPECT_EQ(job->topics, std::vector<std::string>{"space:a"}) << "duplicates dropped";
}

TEST(SubmissionTest, BadInputIsRefusedWithItsCode) {
    EXPECT_EQ(code_of(R"([])"), errc::bad_request);
    EXPECT_EQ(code_of(R"({})"), errc::bad_request) << "missing type";
    EXPECT_EQ(code_of(R"({"type":5})"), errc::bad_request);
    EXPECT_EQ(code_of(R"({"type":""})"), errc::bad_request);
    EXPECT_EQ(code_of(R"({"type":"nope"})"), errc::unknown_job_type);
    EXPECT_EQ(code_of(R"({"type":"noop","delay_s":-1})"), errc::bad_request);
    EXPECT_EQ(code_of(R"({"type":"noop","delay_s":"1"})"), errc::bad_request);
    EXPECT_EQ(code_of(R"({"type":"noop","max_attempts":0})"), errc::bad_request);
    EXPECT_EQ(code_of(R"({"type":"noop","max_attempts":1.5})"), errc::bad_request);
    EXPECT_EQ(code_of(R"({"type":"noop","priority":"high"})"), errc::bad_request);
    EXPECT_EQ(code_of(R"({"type":"noop","timeout_s":-3})"), errc::bad_request);
    EXPECT_EQ(code_of(R"({"type":"noop","queue":"has space"})"), errc::bad_request);
    EXPECT_EQ(code_of(R"({"type":"noop","topics":["bad topic"]})"), errc::bad_request);
    EXPECT_EQ(code_of(R"({"type":"noop","topics":["job:x"]})"), errc::bad_request);
    EXPECT_EQ(code_of(R"({"type":"noop","idempotency_key":""})"), errc::bad_request);
    EXPECT_EQ(code_of(R"({"type":"noop","priorty":1})"), errc::bad_request)
        << "typos are not ignored";
    EXPECT_EQ(code_of(R"({"type":"sleep","payload":{"ms":-1}})"), errc::bad_request);
    EXPECT_EQ(code_of(R"({"type":"sleep"})"), errc::bad_request);
}

// Regression (found by fuzz/request_json_fuzz): 1.005 s is 1004.999… ms as a double, and
// truncating made it 1004 ms, so a job written back with its own delay moved by a millisecond.
TEST(SubmissionTest, FractionalSecondsRoundToTheNearestMillisecond) {
    auto job =
        parse(R"({"type":"noop","delay_s":1.005,"backoff_base_s":1.005,"backoff_cap_s":0.0007})");
    ASSERT_TRUE(job.has_value()) << job.error().message;
    EXPECT_EQ(job->run_at, now + 1005);
    EXPECT_EQ(job->backoff_base_ms, 1005);
    EXPECT_EQ(job->backoff_cap_ms, 1);
}

TEST(SubmissionTest, ErrorMessagesNameTheField) {
    auto r = parse(R"({"type":"noop","max_attempts":0})");
    EXPECT_NE(r.error().message.find("max_attempts"), std::string::npos);
    auto unknown = parse(R"({"type":"noop","colour":1})");
    EXPECT_NE(unknown.error().message.find("colour"), std::string::npos);
}

TEST(SubmissionTest, RequestHashIgnoresKeyOrderAndTheKeyItself) {
    auto a = parse(R"({"type":"noop","payload":{"x":1,"y":2},"idempotency_key":"k1"})");
    auto b = parse(R"({"idempotency_key":"k1","payload":{"y":2,"x":1},"type":"noop"})");
    auto c = parse(R"({"type":"noop","payload":{"x":1,"y":3},"idempotency_key":"k1"})");
    EXPECT_EQ(a->request_hash, b->request_hash);
    EXPECT_NE(a->request_hash, c->request_hash);
}

}  // namespace
}  // namespace conclave::jobs
