// The `conclave` client subcommands against the real server.
#include <array>
#include <cstdio>
#include <fstream>

#include <boost/json.hpp>

#include <gtest/gtest.h>
#include <sys/wait.h>

#include "http/client.hpp"
#include "support/run_cli.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace conclave::test {
namespace {

run_result run_cli(const std::string& server_url, const std::string& args) {
    return run_conclave(args, "CONCLAVE_URL=" + server_url);
}

std::string first_line(const std::string& text) {
    return text.substr(0, text.find('\n'));
}

class CliTest : public ::testing::Test {
protected:
    temp_dir dir_;
    server_process server_{dir_.file("cli.db")};
};

TEST_F(CliTest, SubmitWaitFollowsTheJobToItsEnd) {
    auto r = run_cli(server_.url(), "submit sleep --payload '{\"ms\":300}' --wait");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const auto queued = r.output.find("job.queued");
    const auto started = r.output.find("job.started");
    const auto succeeded = r.output.find("job.succeeded");
    ASSERT_NE(queued, std::string::npos) << r.output;
    ASSERT_NE(started, std::string::npos) << r.output;
    ASSERT_NE(succeeded, std::string::npos) << r.output;
    EXPECT_LT(queued, started);
    EXPECT_LT(started, succeeded);
    EXPECT_NE(r.output.find("\"slept_ms\": 300"), std::string::npos) << "prints the finished job";
}

TEST_F(CliTest, SubmitWaitExitsNonZeroWhenTheJobFails) {
    auto r = run_cli(
        server_.url(), "submit sleep --payload '{\"ms\":5000}' --timeout 1 --max-attempts 1 --wait"
    );
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("job.failed"), std::string::npos) << r.output;
}

TEST_F(CliTest, SubmitListShowCancelRetry) {
    auto submitted = run_cli(server_.url(), "submit noop --delay 3600 --queue later");
    ASSERT_EQ(submitted.exit_code, 0) << submitted.output;
    const auto id = first_line(submitted.output);
    EXPECT_EQ(id.size(), 36U) << "prints the job id";

    auto listed = run_cli(server_.url(), "jobs --state queued");
    EXPECT_EQ(listed.exit_code, 0);
    EXPECT_NE(listed.output.find(id), std::string::npos) << listed.output;

    auto shown = run_cli(server_.url(), "job " + id);
    EXPECT_EQ(shown.exit_code, 0);
    EXPECT_NE(shown.output.find("\"queue\": \"later\""), std::string::npos) << shown.output;

    auto cancelled = run_cli(server_.url(), "cancel " + id);
    EXPECT_EQ(cancelled.exit_code, 0);
    EXPECT_EQ(first_line(cancelled.output), id + " cancelled");

    auto again = run_cli(server_.url(), "cancel " + id);
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_NE(again.output.find("invalid_transition"), std::string::npos) << again.output;

    auto retried = run_cli(server_.url(), "retry " + id);
    EXPECT_EQ(retried.exit_code, 0);
    EXPECT_EQ(first_line(retried.output), id + " queued");
}

TEST_F(CliTest, ErrorsAreWordsAndExitCodes) {
    auto unknown_type = run_cli(server_.url(), "submit nope");
    EXPECT_EQ(unknown_type.exit_code, 1);
    EXPECT_NE(unknown_type.output.find("422 unknown_job_type"), std::string::npos)
        << unknown_type.output;
    auto bad_payload = run_cli(server_.url(), "submit noop --payload '{nope'");
    EXPECT_EQ(bad_payload.exit_code, 2);
    EXPECT_NE(bad_payload.output.find("--payload is not valid JSON"), std::string::npos);
    auto missing = run_cli(server_.url(), "job 0192ffff-0000-7000-8000-000000000000");
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.output.find("not_found"), std::string::npos);
    auto unreachable = run_cli("http://127.0.0.1:1", "jobs");
    EXPECT_EQ(unreachable.exit_code, 2);
    EXPECT_NE(unreachable.output.find("cannot reach conclave"), std::string::npos)
        << unreachable.output;
}

TEST_F(CliTest, WatchPrintsAJobsEventsUntilItEnds) {
    auto submitted = run_cli(server_.url(), "submit sleep --payload '{\"ms\":400}'");
    const auto id = first_line(submitted.output);
    auto watched = run_cli(server_.url(), "watch job:" + id);
    EXPECT_EQ(watched.exit_code, 0) << watched.output;
    EXPECT_NE(watched.output.find("job:" + id + "@1  job.queued"), std::string::npos)
        << watched.output;
    EXPECT_NE(watched.output.find("job:" + id + "@3  job.succeeded"), std::string::npos)
        << watched.output;
    auto from_two = run_cli(server_.url(), "watch job:" + id + " --after 2");
    EXPECT_EQ(from_two.output.find("job.queued"), std::string::npos) << "resumes after offset 2";
    EXPECT_NE(from_two.output.find("job.succeeded"), std::string::npos);
    auto past_end = run_cli(server_.url(), "watch job:" + id + " --after 3");
    EXPECT_EQ(past_end.exit_code, 0) << "already ended, and it succeeded";
}

TEST_F(CliTest, WatchRefusesBadTopics) {
    auto unknown = run_cli(server_.url(), "watch space:nothing");
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_NE(unknown.output.find("not_found"), std::string::npos) << unknown.output;
    auto bad = run_cli(server_.url(), "watch 'bad topic'");
    EXPECT_EQ(bad.exit_code, 2);
}

// `conclave ask` on the simulated council (no API key), sped up: live stages, the rankings
// table, the answer, then a second turn in the same conversation.
TEST(CliAskTest, AskShowsTheCouncilLiveAndContinuesAConversation) {
    temp_dir dir;
    const auto config = dir.file("c.toml");
    std::ofstream(config) << "[providers.sim]\ntokens_per_s = 2000\n";
    server_process server(dir.file("ask.db"), {"--config", config});
    auto first = run_cli(server.url(), "ask 'Why is the sky blue?'");
    EXPECT_EQ(first.exit_code, 0) << first.output;
    for (const auto* expected :
         {"simulated",
          "Stage 1",
          "sim:alpha",
          "done",
          "Stage 2",
          "avg rank",
          "Stage 3",
          "— sim:chair",
          "usage:",
          "title: Why is the sky"}) {
        EXPECT_NE(first.output.find(expected), std::string::npos) << expected << "\n"
                                                                  << first.output;
    }
    const auto at = first.output.find("--conversation ");
    ASSERT_NE(at, std::string::npos);
    const auto id = first.output.substr(at + 15, 36);
    auto second = run_cli(server.url(), "ask --conversation " + id + " 'And at sunset?'");
    EXPECT_EQ(second.exit_code, 0) << second.output;
    EXPECT_NE(second.output.find("conversation " + id), std::string::npos) << second.output;
    auto c = http::client(server.url()).get("/v1/conversations/" + id);
    EXPECT_EQ(boost::json::parse(c.body).at("message_count"), 4) << c.body;

    auto unknown = run_cli(server.url(), "ask --conversation nope 'Hello?'");
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_NE(unknown.output.find("conversation nope does not exist"), std::string::npos)
        << unknown.output;
    auto empty = run_cli(server.url(), "ask ' '");
    EXPECT_EQ(empty.exit_code, 1);
    EXPECT_NE(empty.output.find("'content' must not be empty"), std::string::npos) << empty.output;
}

TEST(CliMigrateTest, MigrateCreatesTheSchemaOnce) {
    temp_dir dir;
    const auto db = "sqlite:" + dir.file("m/conclave.db");
    auto first = run_cli("http://127.0.0.1:1", "migrate --db " + db);
    EXPECT_EQ(first.exit_code, 0) << first.output;
    EXPECT_NE(first.output.find("applied 2 migration"), std::string::npos) << first.output;
    auto second = run_cli("http://127.0.0.1:1", "migrate --db " + db);
    EXPECT_NE(second.output.find("applied 0 migration"), std::string::npos) << second.output;
    auto bad = run_cli("http://127.0.0.1:1", "migrate --db mysql://x");
    EXPECT_EQ(bad.exit_code, 2);
}

}  // namespace
}  // namespace conclave::test
