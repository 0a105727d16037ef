// Access control against the real server: keys and scopes on every API (native and /api),
// rate limits with Retry-After, subscribe tokens over SSE and WebSocket, `conclave keys`
// editing the configuration the running server reloads, and the refusal to listen on the
// network without keys.
#include <array>
#include <cstdio>
#include <fstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sys/wait.h>

#include "http/client.hpp"
#include "http/sse_client.hpp"
#include "support/run_cli.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"
#include "support/ws_client.hpp"

namespace conclave::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using headers = std::vector<std::pair<std::string, std::string>>;

run_result run(const std::string& args) {
    return run_conclave(args);
}

// The key a `keys create` printed: its last line.
std::string key_of(const run_result& r) {
    auto text = r.output;
    while (!text.empty() && text.back() == '\n') {
        text.pop_back();
    }
    return text.substr(text.rfind('\n') + 1);
}

std::string error_code_of(const http::client_response& r) {
    return std::string(json::parse(r.body).at("error").at("code").as_string());
}

class AuthTest : public ::testing::Test {
protected:
    AuthTest() {
        config_ = dir_.file("conclave.toml");
        std::ofstream(config_) << "[types.remote]\nexecutor = \"remote\"\n";
        reader_ = create("reader", "read");
        submitter_ = create("submitter", "read,submit");
        worker_ = create("worker", "worker");
        admin_ = create("admin", "admin");
        limited_ = create("limited", "read", "--rate 2");
        server_ = std::make_unique<server_process>(
            dir_.file("a.db"), std::vector<std::string>{"--config", config_}
        );
    }

    std::string create(
        const std::string& name, const std::string& scopes, const std::string& more = ""
    ) {
        auto r =
            run("keys create " + name + " --scopes " + scopes + " --config " + config_ + " " + more
            );
        EXPECT_EQ(r.exit_code, 0) << r.output;
        return key_of(r);
    }

    http::client_response call(
        const std::string& key,
        const std::string& method,
        const std::string& target,
        const std::string& body = {}
    ) {
        headers h;
        if (!key.empty()) {
            h.emplace_back("Authorization", "Bearer " + key);
        }
        return http::client(server_->url()).request(method, target, body, h);
    }

    std::string submit(const std::string& body) {
        auto r = call(submitter_, "POST", "/v1/jobs", body);
        EXPECT_EQ(r.status, 201) << r.body;
        return std::string(json::parse(r.body).at("id").as_string());
    }

    temp_dir dir_;
    std::string config_;
    std::string reader_, submitter_, worker_, admin_, limited_;
    std::unique_ptr<server_process> server_;
};

TEST_F(AuthTest, KeysAndScopesGuardEveryApi) {
    // No key: 401 with the error body; health and the UI stay public.
    auto none = call("", "GET", "/v1/jobs");
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(error_code_of(none), "unauthorized");
    EXPECT_EQ(call("", "GET", "/healthz").status, 200);
    EXPECT_EQ(call("", "GET", "/").status, 200);
    EXPECT_EQ(call("ck_not_a_key", "GET", "/v1/jobs").status, 401);
    EXPECT_EQ(call("", "GET", "/api/conversations").status, 401) << "the /api routes too";

    // Scopes.
    EXPECT_EQ(call(reader_, "GET", "/v1/jobs").status, 200);
    EXPECT_EQ(call(reader_, "GET", "/api/conversations").status, 200);
    auto denied = call(reader_, "POST", "/v1/jobs", R"({"type":"noop"})");
    EXPECT_EQ(denied.status, 403);
    EXPECT_EQ(error_code_of(denied), "forbidden");
    EXPECT_EQ(call(reader_, "POST", "/v1/conversations", "{}").status, 403);
    const auto id = submit(R"({"type":"remote"})");
    EXPECT_EQ(
        call(
            submitter_,
            "POST",
            "/v1/workers/claim",
            R"({"worker":"w","types":["remote"],"wait_s":0})"
        )
            .status,
        403
    );
    auto claimed =
        call(worker_, "POST", "/v1/workers/claim", R"({"worker":"w","types":["remote"]})");
    ASSERT_EQ(claimed.status, 200) << claimed.body;
    EXPECT_EQ(json::parse(claimed.body).at("jobs").at(0).at("id").as_string(), id);
    EXPECT_EQ(call(worker_, "GET", "/v1/jobs").status, 403) << "a worker key only works jobs";
    EXPECT_EQ(call(submitter_, "POST", "/v1/jobs:retry", R"({"ids":["x"]})").status, 403);
    EXPECT_EQ(call(admin_, "POST", "/v1/jobs:retry", R"({"ids":["x"]})").status, 200);
    EXPECT_EQ(call(admin_, "POST", "/v1/jobs", R"({"type":"noop"})").status, 201) << "admin: all";
    // Nothing was created by the refused requests.
    auto jobs = json::parse(call(reader_, "GET", "/v1/jobs").body).at("jobs").as_array();
    EXPECT_EQ(jobs.size(), 2U);
    // The refusals are counted.
    const auto metrics = call(reader_, "GET", "/metrics");
    ASSERT_EQ(metrics.status, 200);
    EXPECT_NE(
        metrics.body.find("conclave_http_refused_total{reason=\"unauthorized\"} 3"),
        std::string::npos
    ) << metrics.body.substr(0, 2000);
    EXPECT_NE(
        metrics.body.find("conclave_http_refused_total{reason=\"forbidden\"}"), std::string::npos
    );
}

TEST_F(AuthTest, RateLimitAnswers429WithRetryAfter) {
    // rate 2/s with 2 s of burst: 4 pass at once, the 5th waits.
    int ok = 0;
    http::client_response limited;
    for (int idx = 0; idx < 10 && limited.status == 0; ++idx) {
        auto r = call(limited_, "GET", "/v1/jobs");
        if (r.status == 200) {
            ++ok;
        } else {
            limited = r;
        }
    }
    EXPECT_EQ(ok, 4);
    ASSERT_EQ(limited.status, 429);
    EXPECT_EQ(error_code_of(limited), "rate_limited");
    std::string retry_after;
    for (const auto& [name, value] : limited.headers) {
        if (name == "Retry-After") {
            retry_after = value;
        }
    }
    EXPECT_EQ(retry_after, "1");
    EXPECT_EQ(call(reader_, "GET", "/v1/jobs").status, 200) << "other keys are not slowed";
    std::this_thread::sleep_for(600ms);
    EXPECT_EQ(call(limited_, "GET", "/v1/jobs").status, 200) << "refilled";
}

TEST_F(AuthTest, SubscribeTokensReadOnlyTheirTopicsUntilTheyExpire) {
    const auto mine = submit(R"({"type":"sleep","payload":{"ms":100}})");
    const auto other = submit(R"({"type":"sleep","payload":{"ms":100}})");
    auto issued = call(
        reader_, "POST", "/v1/tokens/subscribe", R"({"topics":["job:)" + mine + R"("],"ttl_s":60})"
    );
    ASSERT_EQ(issued.status, 201) << issued.body;
    const std::string token(json::parse(issued.body).at("token").as_string());
    EXPECT_EQ(call("", "POST", "/v1/tokens/subscribe", R"({"topics":["job:x"]})").status, 401);
    EXPECT_EQ(call(reader_, "POST", "/v1/tokens/subscribe", R"({"topics":[]})").status, 400);
    EXPECT_EQ(
        call(reader_, "POST", "/v1/tokens/subscribe", R"({"topics":["job:x"],"ttl_s":99999})")
            .status,
        400
    );

    // SSE with ?token=: its topic streams to the end; another topic or a JSON route is refused.
    auto stream = http::read_sse(
        server_->url(), {.target = "/v1/jobs/" + mine + "/events?token=" + token, .timeout = 10s}
    );
    ASSERT_EQ(stream.status, 200);
    ASSERT_FALSE(stream.events.empty());
    EXPECT_EQ(stream.events.back().type, "end");
    auto foreign = http::read_sse(
        server_->url(), {.target = "/v1/jobs/" + other + "/events?token=" + token, .timeout = 5s}
    );
    EXPECT_EQ(foreign.status, 403);
    EXPECT_EQ(call(token, "GET", "/v1/jobs/" + mine).status, 403);
    EXPECT_EQ(call(token, "POST", "/v1/jobs", R"({"type":"noop"})").status, 403);
    EXPECT_EQ(call(token, "POST", "/v1/tokens/subscribe", R"({"topics":["job:x"]})").status, 403);
    auto multi = http::read_sse(
        server_->url(),
        {.target = "/v1/stream?topics=job:" + mine + ",job:" + other + "&token=" + token,
         .timeout = 5s}
    );
    EXPECT_EQ(multi.status, 403) << "every topic must be in the token";

    // WebSocket: the upgrade carries the token; each subscribe is checked.
    ws_client ws(server_->url(), 10s, "/v1/ws?token=" + token);
    ws.send(R"({"op":"subscribe","topic":"job:)" + other + R"(","after":0})");
    auto refused = ws.receive();
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(refused->at("op"), "error");
    EXPECT_EQ(refused->at("code"), "forbidden");
    ws.send(R"({"op":"subscribe","topic":"job:)" + mine + R"(","after":0})");
    auto ok = ws.receive();
    ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(ok->at("op"), "subscribed");
    EXPECT_THROW(ws_client(server_->url(), 5s, "/v1/ws"), std::runtime_error) << "no credential";

    // Expired: 401 on SSE.
    auto brief = call(
        reader_, "POST", "/v1/tokens/subscribe", R"({"topics":["job:)" + mine + R"("],"ttl_s":1})"
    );
    const std::string short_token(json::parse(brief.body).at("token").as_string());
    std::this_thread::sleep_for(2100ms);
    auto expired = http::read_sse(
        server_->url(),
        {.target = "/v1/jobs/" + mine + "/events?token=" + short_token, .timeout = 5s}
    );
    EXPECT_EQ(expired.status, 401);
}

TEST_F(AuthTest, KeysCommandsEditTheConfigAndTheServerReloadsIt) {
    auto listed = run("keys list --config " + config_);
    EXPECT_EQ(listed.exit_code, 0);
    EXPECT_NE(listed.output.find("submitter  read,submit"), std::string::npos) << listed.output;
    std::ifstream file(config_);
    const std::string text((std::istreambuf_iterator<char>(file)), {});
    EXPECT_EQ(text.find(reader_), std::string::npos) << "only the hash is stored";

    const auto extra = create("extra", "read");
    auto wait_for = [&](const std::string& key, int status) {
        for (int tries = 0; tries < 50; ++tries) {
            if (call(key, "GET", "/v1/jobs").status == status) {
                return true;
            }
            std::this_thread::sleep_for(100ms);
        }
        return false;
    };
    EXPECT_TRUE(wait_for(extra, 200)) << "a new key works without a restart";
    auto revoked = run("keys revoke extra --config " + config_);
    EXPECT_EQ(revoked.exit_code, 0) << revoked.output;
    EXPECT_TRUE(wait_for(extra, 401)) << "a revoked key stops working without a restart";
    EXPECT_EQ(call(reader_, "GET", "/v1/jobs").status, 200) << "the others still work";
    EXPECT_NE(run("keys revoke extra --config " + config_).exit_code, 0);
    EXPECT_NE(run("keys create bad --scopes root --config " + config_).exit_code, 0);
    EXPECT_NE(run("keys create reader --scopes read --config " + config_).exit_code, 0)
        << "names are unique";
}

TEST(AuthStartTest, RefusesTheNetworkWithoutKeysAndListensWithThem) {
    temp_dir dir;
    auto refused =
        run("serve --listen 0.0.0.0:0 --db sqlite:" + dir.file("n.db") + " --log-level warn");
    EXPECT_EQ(refused.exit_code, 2);
    EXPECT_NE(
        refused.output.find("refusing to listen on 0.0.0.0:0 without API keys"), std::string::npos
    ) << refused.output;
    const auto config = dir.file("c.toml");
    auto created = run("keys create ops --scopes admin --config " + config);
    ASSERT_EQ(created.exit_code, 0) << created.output;
    server_process server(
        {conclave_binary(),
         "serve",
         "--listen",
         "0.0.0.0:0",
         "--db",
         "sqlite:" + dir.file("k.db"),
         "--config",
         config},
        server_process::command_line
    );
    EXPECT_EQ(http::client(server.url()).get("/v1/jobs").status, 401);
}

// This machine's first non-loopback IPv4 address, if any.
std::string external_ipv4() {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) {
        return {};
    }
    std::string found;
    for (auto* a = list; a != nullptr && found.empty(); a = a->ifa_next) {
        if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET ||
            (a->ifa_flags & IFF_LOOPBACK) != 0U) {
            continue;
        }
        std::array<char, INET_ADDRSTRLEN> text{};
        const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
        if (inet_ntop(AF_INET, &in->sin_addr, text.data(), text.size()) != nullptr) {
            found = text.data();
        }
    }
    freeifaddrs(list);
    return found;
}

TEST(AuthStartTest, ConnectionsPerClientAddressAreLimited) {
    const auto ip = external_ipv4();
    if (ip.empty()) {
        GTEST_SKIP() << "no non-loopback IPv4 address (loopback is never limited)";
    }
    temp_dir dir;
    const auto config = dir.file("c.toml");
    std::ofstream(config) << "[server]\nmax_connections_per_client = 2\n";
    ASSERT_EQ(run("keys create ops --scopes admin --config " + config).exit_code, 0);
    server_process server(
        {conclave_binary(),
         "serve",
         "--listen",
         "0.0.0.0:0",
         "--db",
         "sqlite:" + dir.file("l.db"),
         "--config",
         config},
        server_process::command_line
    );
    const auto url = "http://" + ip + ":" + std::to_string(server.port());
    boost::asio::io_context io;
    auto open = [&] {
        boost::asio::ip::tcp::socket s(io);
        s.connect({boost::asio::ip::make_address(ip), server.port()});
        return s;
    };
    auto first = open();
    auto second = open();
    std::this_thread::sleep_for(200ms);  // both accepted and counted
    auto third = http::client(url).get("/healthz");
    EXPECT_EQ(third.status, 429) << third.body;
    EXPECT_NE(third.body.find("too many connections from " + ip), std::string::npos) << third.body;
    first.close();
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(http::client(url).get("/healthz").status, 200) << "room again";
    EXPECT_EQ(http::client(server.url()).get("/healthz").status, 200);
}

}  // namespace
}  // namespace conclave::test
