// A table of hostile inputs against one real server, on SQLite and on PostgreSQL: each gets its
// clear error, nothing is changed, and afterwards the server is healthy, answers promptly and
// stays within its memory budget. (The fuzzers in fuzz/ try the parsers with arbitrary bytes;
// this is the wire.)
#include <chrono>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "http/client.hpp"
#include "support/pg_database.hpp"
#include "support/proc_status.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"
#include "support/ws_client.hpp"

namespace conclave::test {
namespace {

// The server's memory budget after the hostile inputs. The server under test is built like this
// test: under ASan it also holds ASan's shadow memory and its quarantine of freed blocks (up to
// 256 MiB by default), which are not the server's.
#if defined(__SANITIZE_ADDRESS__)
constexpr long memory_budget_kib = 768 * 1024;
#else
constexpr long memory_budget_kib = 256 * 1024;
#endif

namespace json = boost::json;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace std::string_literals;

// http::client::raw answers "STATUS\nBODY" ("" when no response came).
int status_of_raw(const std::string& reply) {
    return reply.size() >= 3 ? std::stoi(reply.substr(0, 3)) : 0;
}

std::string body_of_raw(const std::string& reply) {
    const auto at = reply.find('\n');
    return at == std::string::npos ? std::string() : reply.substr(at + 1);
}

class HostileTest : public ::testing::TestWithParam<std::string> {
protected:
    HostileTest() {
        if (GetParam() == "postgres") {
            pg_ = std::make_unique<pg_database>();
            server_ = std::make_unique<server_process>(server_process::db_url_t{}, pg_->url());
        } else {
            server_ = std::make_unique<server_process>(dir_.file("h.db"));
        }
    }

    http::client_response call(
        const std::string& method, const std::string& target, const std::string& body = {}
    ) {
        return http::client(server_->url()).request(method, target, body);
    }

    std::size_t job_count() {
        return json::parse(call("GET", "/v1/jobs?limit=1000").body).at("jobs").as_array().size();
    }

    temp_dir dir_;
    std::unique_ptr<pg_database> pg_;
    std::unique_ptr<server_process> server_;  // declared after pg_: stops before it is dropped
};

INSTANTIATE_TEST_SUITE_P(
    Backends,
    HostileTest,
    ::testing::Values("sqlite", "postgres"),
    [](const ::testing::TestParamInfo<std::string>& backend) { return backend.param; }
);

TEST_P(HostileTest, EachHostileInputGetsItsErrorAndChangesNothing) {
    auto created = call("POST", "/v1/jobs", R"({"type":"noop"})");
    ASSERT_EQ(created.status, 201);
    const std::string job_id(json::parse(created.body).at("id").as_string());
    auto conversation = call("POST", "/v1/conversations", "{}");
    ASSERT_EQ(conversation.status, 201);
    const std::string conversation_id(json::parse(conversation.body).at("id").as_string());
    const auto jobs_before = job_count();

    // A slowloris client holds a connection, sending a header byte now and then; it must not
    // hold anyone else up.
    asio::io_context io;
    asio::ip::tcp::socket slow(io);
    asio::connect(
        slow, asio::ip::tcp::resolver(io).resolve("127.0.0.1", std::to_string(server_->port()))
    );
    asio::write(slow, asio::buffer(std::string("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Slow: ")));

    struct json_case {
        std::string name, method, target, body;
        int status;
        std::string code;
    };
    const std::string nested(20'000, '[');
    const std::vector<json_case> cases = {
        {"deeply nested JSON", "POST", "/v1/jobs", nested, 400, "bad_request"},
        {"nested payload",
         "POST",
         "/v1/jobs",
         R"({"type":"noop","payload":)" + std::string(40, '[') + std::string(40, ']') + "}",
         400,
         "bad_request"},
        {"invalid UTF-8",
         "POST",
         "/v1/jobs",
         "{\"type\":\"noop\",\"payload\":\"\xff\xfe\"}",
         400,
         "bad_request"},
        {"invalid UTF-8 in a message",
         "POST",
         "/v1/conversations/x/messages",
         "{\"content\":\"\xc3\x28\"}",
         400,
         "bad_request"},
        {"not JSON", "POST", "/v1/jobs", "type=noop", 400, "bad_request"},
        {"SQL in a type",
         "POST",
         "/v1/jobs",
         R"({"type":"noop'; DROP TABLE jobs;--"})",
         422,
         "unknown_job_type"},
        {"SQL in a filter",
         "GET",
         "/v1/jobs?state=succeeded'%20OR%20'1'='1",
         "",
         400,
         "bad_request"},
        {"SQL in a topic",
         "GET",
         "/v1/topics/x';DROP%20TABLE%20events;--/events",
         "",
         400,
         "bad_request"},
        {"SQL in an id", "GET", "/v1/jobs/1%20OR%201=1", "", 404, "not_found"},
        // Bytes that are not text where text is stored: PostgreSQL refused them mid-batch,
        // failing the other writes of the group commit, or cut them short at a NUL.
        {"invalid UTF-8 in a job id", "POST", "/v1/jobs/%FF/cancel", "", 400, "bad_request"},
        {"a NUL in a job id",
         "POST",
         "/v1/jobs/" + job_id + "%00x/events",
         R"({"lease_token":"t","events":[{"type":"x","data":{}}]})",
         400,
         "bad_request"},
        {"invalid UTF-8 in a filter", "GET", "/v1/jobs?type=%C3%28", "", 400, "bad_request"},
        {"a NUL in an idempotency key",
         "POST",
         "/v1/jobs",
         R"({"type":"noop","idempotency_key":"k\u0000"})",
         400,
         "bad_request"},
        {"a NUL in a lease token",
         "POST",
         "/v1/jobs/" + job_id + "/complete",
         R"({"lease_token":"\u0000","result":{}})",
         400,
         "bad_request"},
        {"a NUL in a message",
         "POST",
         "/v1/conversations/" + conversation_id + "/messages",
         R"({"content":"hi\u0000there"})",
         400,
         "bad_request"},
        {"a NUL in an event type",
         "POST",
         "/v1/topics/t/events",
         R"({"type":"x\u0000","data":{}})",
         400,
         "bad_request"},
        {"a topic name too long",
         "POST",
         "/v1/topics/" + std::string(300, 'a') + "/events",
         R"({"type":"x","data":{}})",
         400,
         "bad_request"},
        {"path traversal", "GET", "/assets/../../../../etc/passwd", "", 404, "not_found"},
        {"encoded traversal", "GET", "/assets/%2e%2e/%2e%2e/etc/passwd", "", 404, "not_found"},
        {"unknown route", "DELETE", "/v1/jobs", "", 405, "method_not_allowed"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto r = call(c.method, c.target, c.body);
        EXPECT_EQ(r.status, c.status) << r.body;
        boost::system::error_code ec;
        auto body = json::parse(r.body, ec);
        ASSERT_FALSE(ec) << "a JSON error body: " << r.body;
        EXPECT_EQ(body.at("error").at("code"), c.code.c_str()) << r.body;
        EXPECT_FALSE(std::string(body.at("error").at("message").as_string()).empty());
    }

    // SQL-looking text where text belongs is kept verbatim, not run.
    const std::string sql = R"(Robert'); DROP TABLE conversations;--)";
    auto job = call(
        "POST",
        "/v1/jobs",
        json::serialize(json::object{
            {"type", "noop"}, {"idempotency_key", sql}, {"payload", json::object{{"q", sql}}}})
    );
    ASSERT_EQ(job.status, 201) << job.body;
    EXPECT_EQ(json::parse(job.body).at("payload").at("q").as_string(), sql);

    // Wire-level abuse, each on a fresh connection.
    http::client raw(server_->url());
    const auto huge_header = raw.raw(
        "GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n"
    );
    EXPECT_EQ(status_of_raw(huge_header), 431);
    const auto huge_body = raw.raw(
        "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
        std::to_string(8 << 20) + "\r\n\r\n{"
    );
    EXPECT_EQ(status_of_raw(huge_body), 413);
    EXPECT_NE(body_of_raw(huge_body).find("payload_too_large"), std::string::npos);
    EXPECT_EQ(status_of_raw(raw.raw("\x16\x03\x01 not http at all\r\n\r\n")), 400);
    EXPECT_EQ(status_of_raw(raw.raw("GET /v1/jobs\0/x HTTP/1.1\r\nHost: x\r\n\r\n"s)), 400);

    // WebSocket: an unknown op gets an error and the connection lives; an oversized message
    // closes with 1009.
    ws_client ws(server_->url());
    ws.send(R"({"op":"drop_database"})");
    auto reply = ws.receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->at("op"), "error");
    EXPECT_EQ(reply->at("code"), "unknown_op");
    ws.send(R"({"op":"subscribe","topic":"job:'; DROP TABLE jobs;--","after":0})");
    reply = ws.receive();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->at("code"), "bad_request");
    ws_client big(server_->url());
    big.send(R"({"op":"ping","pad":")" + std::string(200 * 1024, 'x') + R"("})");
    EXPECT_FALSE(big.receive(5s).has_value());
    EXPECT_EQ(big.close_code(), 1009);

    // Nothing changed but the one legitimate job; the server answers promptly while the
    // slowloris connection is still open, and stays within its memory budget.
    EXPECT_EQ(job_count(), jobs_before + 1);
    EXPECT_EQ(
        json::parse(call("GET", "/v1/conversations").body).at("conversations").as_array().size(), 1U
    );
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(call("GET", "/healthz").status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    asio::write(slow, asio::buffer(std::string("1\r\n")));
    const long rss_kib = status_kib(server_->pid(), "VmRSS");
    EXPECT_GT(rss_kib, 0);
    EXPECT_LT(rss_kib, memory_budget_kib) << "RSS after the hostile inputs, KiB";
}

}  // namespace
}  // namespace conclave::test
