// Observability over a real server: GET /metrics after jobs, a council against tools/fake-llm, an
// SSE stream and bad requests (the expected series with plausible values, in a well-formed
// exposition), and --log-format json (every stderr line a JSON object, with the request id a
// client sent and the id of a job that ran).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "http/client.hpp"
#include "http/sse_client.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace conclave::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using labels = std::map<std::string, std::string>;

// One scrape: every sample by name and labels, and the families' declared types.
struct exposition {
    std::map<std::string, std::map<labels, double>> samples;
    std::map<std::string, std::string> types;

    // The value of the series, or -1 when it is absent.
    double value(const std::string& name, const labels& l = {}) const {
        auto family = samples.find(name);
        if (family == samples.end()) {
            return -1;
        }
        auto series = family->second.find(l);
        return series == family->second.end() ? -1 : series->second;
    }
};

// Parses the text format strictly enough to catch malformed output: HELP and TYPE before a
// family's samples, names and label names of the allowed characters, quoted and escaped values.
exposition parse_exposition(const std::string& text) {
    exposition out;
    const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
    const std::regex label_name_re("[a-zA-Z_][a-zA-Z0-9_]*");
    std::istringstream lines(text);
    std::string line;
    std::string helped;
    while (std::getline(lines, line)) {
        EXPECT_FALSE(line.empty()) << "blank line in the exposition";
        if (line.starts_with("# HELP ")) {
            helped = line.substr(7, line.find(' ', 7) - 7);
            continue;
        }
        if (line.starts_with("# TYPE ")) {
            std::istringstream parts(line.substr(7));
            std::string name, type;
            parts >> name >> type;
            EXPECT_EQ(name, helped) << "TYPE without its HELP: " << line;
            EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
            EXPECT_FALSE(out.types.contains(name)) << "family declared twice: " << name;
            out.types[name] = type;
            continue;
        }
        std::size_t at = 0;
        while (at < line.size() && line[at] != '{' && line[at] != ' ') {
            ++at;
        }
        const std::string name = line.substr(0, at);
        EXPECT_TRUE(std::regex_match(name, name_re)) << line;
        labels l;
        if (at < line.size() && line[at] == '{') {
            ++at;
            while (at < line.size() && line[at] != '}') {
                const auto eq = line.find('=', at);
                const std::string label = line.substr(at, eq - at);
                EXPECT_TRUE(std::regex_match(label, label_name_re)) << line;
                EXPECT_EQ(line[eq + 1], '"') << line;
                std::string value;
                at = eq + 2;
                while (at < line.size() && line[at] != '"') {
                    if (line[at] == '\\') {
                        ++at;
                        value += line[at] == 'n' ? '\n' : line[at];
                    } else {
                        value += line[at];
                    }
                    ++at;
                }
                l[label] = value;
                ++at;  // the closing quote
                if (line[at] == ',') {
                    ++at;
                }
            }
            ++at;  // '}'
        }
        EXPECT_EQ(line[at], ' ') << line;
        const std::string value = line.substr(at + 1);
        out.samples[name][l] = value == "+Inf" ? INFINITY : std::stod(value);
        std::string family = name;
        for (const char* suffix : {"_bucket", "_sum", "_count"}) {
            if (!out.types.contains(family) && family.ends_with(suffix)) {
                family.resize(family.size() - std::strlen(suffix));
            }
        }
        EXPECT_TRUE(out.types.contains(family)) << "sample before its TYPE: " << line;
    }
    return out;
}

// Every histogram: buckets non-decreasing in `le`, the +Inf bucket equal to _count.
void expect_histograms_well_formed(const exposition& e) {
    for (const auto& [name, type] : e.types) {
        if (type != "histogram") {
            continue;
        }
        std::map<labels, std::vector<std::pair<double, double>>> by_series;
        for (const auto& [l, v] : e.samples.at(name + "_bucket")) {
            auto series = l;
            const auto le = series.at("le");
            series.erase("le");
            by_series[series].emplace_back(le == "+Inf" ? INFINITY : std::stod(le), v);
        }
        for (auto& [series, buckets] : by_series) {
            std::sort(buckets.begin(), buckets.end());
            for (std::size_t idx = 1; idx < buckets.size(); ++idx) {
                EXPECT_LE(buckets[idx - 1].second, buckets[idx].second) << name;
            }
            EXPECT_TRUE(std::isinf(buckets.back().first)) << name;
            EXPECT_EQ(buckets.back().second, e.value(name + "_count", series)) << name;
            EXPECT_GE(e.value(name + "_sum", series), 0) << name;
        }
    }
}

class MetricsEndpointTest : public ::testing::Test {
protected:
    MetricsEndpointTest() {
        const auto script = dir_.file("script.json");
        std::ofstream(script) << R"({
            "default": {"tokens": 8, "token_ms": 1, "ranking": {"tokens": 8, "token_ms": 1}},
            "models": {"down": {"status": 500, "fail_times": 1000000}}})";
        fake_ = std::make_unique<server_process>(
            std::vector<std::string>{
                fake_llm_binary(), "--listen", "127.0.0.1:0", "--script", script},
            server_process::command_line
        );
        const auto config = dir_.file("conclave.toml");
        std::ofstream(config) << "[providers.fake]\nbase_url = \"" << fake_->url()
                              << "/v1\"\nmax_retries = 0\n"
                                 "[council]\nmembers = [\"fake:a\", \"fake:down\"]\n"
                                 "chairman = \"fake:chair\"\n";
        server_ = std::make_unique<server_process>(
            dir_.file("m.db"), std::vector<std::string>{"--config", config}
        );
        client_ = std::make_unique<http::client>(server_->url());
    }

    std::string submit(const std::string& body) {
        auto res = client_->post("/v1/jobs", body);
        EXPECT_EQ(res.status, 201) << res.body;
        return std::string(json::parse(res.body).at("id").as_string());
    }

    void wait_state(const std::string& id, const std::string& state) {
        for (int idx = 0; idx < 1500; ++idx) {
            auto job = json::parse(client_->get("/v1/jobs/" + id).body);
            if (job.at("state").as_string() == state) {
                return;
            }
            std::this_thread::sleep_for(20ms);
        }
        ADD_FAILURE() << id << " never reached " << state;
    }

    exposition scrape() {
        auto res = client_->get("/metrics");
        EXPECT_EQ(res.status, 200);
        bool typed = false;
        for (const auto& [name, value] : res.headers) {
            if (name == "Content-Type") {
                typed = value.starts_with("text/plain; version=0.0.4");
            }
        }
        EXPECT_TRUE(typed) << "Content-Type";
        return parse_exposition(res.body);
    }

    // Scrapes until `done` holds (gauges and the job counts settle a little after the fact).
    template <class Pred>
    exposition scrape_until(Pred done) {
        auto e = scrape();
        for (int idx = 0; idx < 100 && !done(e); ++idx) {
            std::this_thread::sleep_for(50ms);
            e = scrape();
        }
        return e;
    }

    temp_dir dir_;
    std::unique_ptr<server_process> fake_;
    std::unique_ptr<server_process> server_;
    std::unique_ptr<http::client> client_;
};

TEST_F(MetricsEndpointTest, JobsStreamsRequestsStoreAndLlmCallsShowUp) {
    constexpr int n = 3;
    std::vector<std::string> ids;
    for (int idx = 0; idx < n; ++idx) {
        ids.push_back(submit(R"({"type":"noop","queue":"q1"})"));
    }
    const auto council = submit(R"({"type":"council","payload":{"question":"Why?"}})");
    EXPECT_EQ(client_->post("/v1/jobs", "{not json").status, 400);
    EXPECT_EQ(client_->get("/v1/jobs/0190f0a0-0000-7000-8000-000000000000").status, 404);
    for (const auto& id : ids) {
        wait_state(id, "succeeded");
    }
    wait_state(council, "succeeded");
    // An SSE stream of a finished job: its events, then `end`, then the server closes it.
    auto streamed = http::read_sse(server_->url(), {.target = "/v1/jobs/" + ids[0] + "/events"});
    EXPECT_EQ(streamed.status, 200);
    EXPECT_TRUE(streamed.closed_by_server);
    ASSERT_GE(streamed.events.size(), 3U);

    const labels noop_done{{"queue", "q1"}, {"type", "noop"}, {"state", "succeeded"}};
    auto e = scrape_until([&](const exposition& x) {
        return x.value("conclave_jobs", noop_done) == n &&
               x.value("conclave_stream_subscriptions", {{"transport", "sse"}}) == 0;
    });
    expect_histograms_well_formed(e);

    // HTTP: by method, route pattern (never the raw path) and status.
    const labels posted{{"method", "POST"}, {"route", "/v1/jobs"}, {"status", "201"}};
    EXPECT_EQ(e.value("conclave_http_requests_total", posted), n + 1);
    EXPECT_EQ(
        e.value(
            "conclave_http_requests_total",
            {{"method", "POST"}, {"route", "/v1/jobs"}, {"status", "400"}}
        ),
        1
    );
    EXPECT_EQ(
        e.value(
            "conclave_http_requests_total",
            {{"method", "GET"}, {"route", "/v1/jobs/{id}"}, {"status", "404"}}
        ),
        1
    );
    EXPECT_GE(
        e.value(
            "conclave_http_requests_total",
            {{"method", "GET"}, {"route", "/v1/jobs/{id}/events"}, {"status", "200"}}
        ),
        1
    );
    for (const auto& [l, v] : e.samples.at("conclave_http_requests_total")) {
        EXPECT_EQ(l.at("route").find("0190f0a0"), std::string::npos) << "a raw path as a label";
    }
    EXPECT_EQ(
        e.value(
            "conclave_http_request_duration_seconds_count",
            {{"method", "POST"}, {"route", "/v1/jobs"}}
        ),
        n + 2
    );
    EXPECT_GE(e.value("conclave_http_connections_accepted_total"), 2);
    EXPECT_GE(e.value("conclave_http_connections_open"), 1);  // this scrape's own

    // Jobs: counts by queue/type/state at scrape time, claim latency and duration.
    EXPECT_EQ(
        e.value("conclave_jobs", {{"queue", "q1"}, {"type", "noop"}, {"state", "queued"}}), 0
    );
    EXPECT_EQ(
        e.value(
            "conclave_jobs", {{"queue", "default"}, {"type", "council"}, {"state", "succeeded"}}
        ),
        1
    );
    EXPECT_EQ(e.value("conclave_jobs_running_here"), 0);
    EXPECT_EQ(e.value("conclave_job_claim_latency_seconds_count", {{"type", "noop"}}), n);
    EXPECT_EQ(
        e.value(
            "conclave_job_duration_seconds_count", {{"type", "noop"}, {"outcome", "succeeded"}}
        ),
        n
    );

    // Events and the store: every job appended at least queued, started and succeeded.
    EXPECT_GE(e.value("conclave_events_appended_total"), 3 * (n + 1));
    EXPECT_GE(e.value("conclave_store_commit_batch_size_count"), 1);
    EXPECT_GE(e.value("conclave_store_commit_batch_size_sum"), 3 * (n + 1));
    // Idle claims keep committing, so the two may differ by a batch read in between.
    EXPECT_NEAR(
        e.value("conclave_store_commit_seconds_count"),
        e.value("conclave_store_commit_batch_size_count"),
        2
    );

    // Streams: the events the SSE client read, and no subscription left.
    const auto job_events =
        std::count_if(streamed.events.begin(), streamed.events.end(), [](const auto& ev) {
            return ev.type != "end";
        });
    EXPECT_GE(
        e.value("conclave_stream_events_delivered_total", {{"transport", "sse"}}),
        static_cast<double>(job_events)
    );
    EXPECT_EQ(e.value("conclave_stream_subscriptions", {{"transport", "sse"}}), 0);

    // LLM: member "a" answered and ranked, "down" failed each time, the chairman answered.
    const labels a{{"provider", "fake"}, {"model", "a"}};
    EXPECT_EQ(e.value("conclave_llm_calls_total", a), 2);
    EXPECT_EQ(e.value("conclave_llm_calls_total", {{"provider", "fake"}, {"model", "chair"}}), 1);
    EXPECT_GE(
        e.value(
            "conclave_llm_errors_total",
            {{"provider", "fake"}, {"model", "down"}, {"code", "unavailable"}}
        ),
        1
    );
    EXPECT_GT(
        e.value(
            "conclave_llm_tokens_total",
            {{"provider", "fake"}, {"model", "a"}, {"kind", "completion"}}
        ),
        0
    );
    EXPECT_GT(
        e.value(
            "conclave_llm_tokens_total", {{"provider", "fake"}, {"model", "a"}, {"kind", "prompt"}}
        ),
        0
    );
    EXPECT_GE(e.value("conclave_llm_call_duration_seconds_count", {{"provider", "fake"}}), 4);
}

class JsonLogTest : public ::testing::Test {
protected:
    JsonLogTest() {
        log_ = dir_.file("stderr.log");
        const std::string command =
            "exec '" + conclave_binary() +
            "' serve --listen 127.0.0.1:0 --db 'sqlite:" + dir_.file("j.db") +
            "' --log-level info --log-format json 2>'" + log_ + "'";
        server_ = std::make_unique<server_process>(
            std::vector<std::string>{"/bin/sh", "-c", command}, server_process::command_line
        );
    }

    temp_dir dir_;
    std::string log_;
    std::unique_ptr<server_process> server_;
};

std::string header(const http::client_response& res, const std::string& name) {
    for (const auto& [key, value] : res.headers) {
        if (key == name) {
            return value;
        }
    }
    return "";
}

TEST_F(JsonLogTest, EveryLineIsJsonWithRequestAndJobIds) {
    http::client c(server_->url());
    const std::string sent = "test-req.42_A";
    auto created = c.request("POST", "/v1/jobs", R"({"type":"noop"})", {{"X-Request-Id", sent}});
    ASSERT_EQ(created.status, 201) << created.body;
    EXPECT_EQ(header(created, "X-Request-Id"), sent) << "echoed";
    const auto job_id = std::string(json::parse(created.body).at("id").as_string());
    // An id that is not 1-64 of [A-Za-z0-9._-] is replaced by a fresh one.
    auto replaced = c.request("GET", "/healthz", "", {{"X-Request-Id", "bad id\"{}"}});
    const auto fresh = header(replaced, "X-Request-Id");
    EXPECT_EQ(fresh.size(), 32U) << fresh;
    auto generated = c.get("/v1/jobs/" + job_id);
    EXPECT_EQ(header(generated, "X-Request-Id").size(), 32U);
    EXPECT_NE(header(generated, "X-Request-Id"), fresh);
    // Input that ends up in log lines: a path with control characters and invalid UTF-8.
    EXPECT_GE(c.get("/v1/jobs/%01%FF%22x").status, 400);
    for (int idx = 0; idx < 500; ++idx) {
        auto job = json::parse(c.get("/v1/jobs/" + job_id).body);
        if (job.at("state").as_string() == "succeeded") {
            break;
        }
        std::this_thread::sleep_for(20ms);
    }
    server_->stop();

    std::ifstream in(log_);
    std::string line;
    int lines = 0;
    bool saw_request = false, saw_job = false, saw_fresh = false;
    while (std::getline(in, line)) {
        ++lines;
        json::value parsed;
        ASSERT_NO_THROW(parsed = json::parse(line)) << line;
        ASSERT_TRUE(parsed.is_object()) << line;
        const auto& o = parsed.as_object();
        for (const char* key : {"time", "level", "logger", "msg"}) {
            EXPECT_TRUE(o.contains(key) && o.at(key).is_string()) << key << " in " << line;
        }
        if (o.contains("request_id") && o.at("request_id") == sent.c_str()) {
            saw_request = true;
            EXPECT_EQ(o.at("msg"), "access");
            EXPECT_EQ(o.at("logger"), "http");
            EXPECT_EQ(o.at("method"), "POST");
            EXPECT_EQ(o.at("route"), "/v1/jobs");
            EXPECT_EQ(o.at("status"), 201);
            EXPECT_TRUE(o.at("duration_ms").is_number());
        }
        if (o.contains("request_id") && o.at("request_id") == fresh.c_str()) {
            saw_fresh = true;
        }
        if (o.contains("job_id") && o.at("job_id") == job_id.c_str()) {
            saw_job = true;
            EXPECT_EQ(o.at("logger"), "jobs");
        }
    }
    EXPECT_GT(lines, 3);
    EXPECT_TRUE(saw_request) << "no access line with the request id sent";
    EXPECT_TRUE(saw_fresh) << "no access line with the generated request id";
    EXPECT_TRUE(saw_job) << "no line about job " << job_id;
}

}  // namespace
}  // namespace conclave::test
