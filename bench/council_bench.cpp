// Many councils at once against tools/fake-llm: what Conclave adds to the time a token takes to
// reach a watching client, how much longer a council takes under load than alone, and the
// server's CPU per 1,000 tokens streamed.
//
// fake-llm stamps every token with the microsecond it sent it ("stamp"); SSE clients watching
// some of the councils compare each token's stamp with the time it arrived: that delay is the
// whole path (client parse, delta coalescing, group commit, fan-out, SSE), on one machine so
// the clocks agree.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include <boost/json.hpp>

#include <CLI/CLI.hpp>

#include "http/client.hpp"
#include "http/sse_client.hpp"
#include "support/proc_status.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace json = boost::json;
using namespace conclave;
using clock_type = std::chrono::steady_clock;

std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch()
    )
        .count();
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::string start_council(http::client& c, const std::string& question) {
    auto conv = c.post("/v1/conversations", "{}");
    const auto id = json::value_to<std::string>(json::parse(conv.body).at("id"));
    auto res = c.post(
        "/v1/conversations/" + id + "/messages",
        json::serialize(json::object{{"content", question}})
    );
    if (res.status != 202) {
        std::fprintf(stderr, "submit failed: %d %s\n", res.status, res.body.c_str());
        std::exit(1);
    }
    return json::value_to<std::string>(json::parse(res.body).at("job_id"));
}

// Watches `jobs` on one multiplexed stream; records each stamped token's delay in ms.
void watch(const std::string& url, const std::vector<std::string>& jobs, std::vector<double>& out) {
    std::string topics;
    for (const auto& id : jobs) {
        topics += (topics.empty() ? "job:" : ",job:") + id;
    }
    http::sse_request req;
    req.target = "/v1/stream?topics=" + topics;
    req.timeout = std::chrono::minutes(30);
    req.on_event = [&](const http::sse_event& e) {
        if (e.type.ends_with(".delta")) {
            const auto received = now_us();
            const auto event = json::parse(e.data);
            const auto text = json::value_to<std::string>(event.at("data").at("text"));
            for (auto at = text.find('@'); at != std::string::npos; at = text.find('@', at + 1)) {
                const auto sent = std::stoll(text.substr(at + 1, 16));
                out.push_back(static_cast<double>(received - sent) / 1000.0);
            }
        }
        return true;
    };
    http::read_sse(url, req);
}

struct stats_t {
    std::int64_t succeeded = 0, failed = 0;
};

stats_t job_stats(http::client& c) {
    const auto s = json::parse(c.get("/v1/stats").body).at("jobs");
    return {s.at("succeeded").as_int64(), s.at("failed").as_int64()};
}

double duration_ms(const json::value& job) {
    // started_at / finished_at are RFC 3339 with milliseconds; the seconds part is enough.
    auto ms_of = [](const std::string& t) {
        std::tm tm{};
        strptime(t.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
        return static_cast<double>(timegm(&tm)) * 1000.0 + std::stod(t.substr(20, 3));
    };
    return ms_of(json::value_to<std::string>(job.at("finished_at"))) -
           ms_of(json::value_to<std::string>(job.at("started_at")));
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"Conclave council benchmark: many councils at once against fake-llm"};
    int councils = 500;
    int members = 4;
    int tokens = 100;
    int token_ms = 40;
    int first_token_ms = 300;
    int watched = 50;
    int delta_ms = 50;
    cli.add_option("--councils", councils, "councils running at once");
    cli.add_option("--members", members, "members per council");
    cli.add_option("--tokens", tokens, "tokens per answer");
    cli.add_option("--token-ms", token_ms, "ms between tokens (an LLM's pace)");
    cli.add_option("--first-token-ms", first_token_ms, "ms before the first token");
    cli.add_option("--watched", watched, "councils watched over SSE to time tokens");
    cli.add_option("--delta-ms", delta_ms, "[stream] delta_interval_ms of the server");
    CLI11_PARSE(cli, argc, argv);

    test::temp_dir dir;
    const auto script = dir.file("script.json");
    std::ofstream(script) << json::serialize(json::object{
        {"default",
         {{"tokens", tokens},
          {"token_ms", token_ms},
          {"first_token_ms", first_token_ms},
          {"stamp", true}}}});
    test::server_process fake(
        {test::fake_llm_binary(), "--listen", "127.0.0.1:0", "--script", script},
        test::server_process::command_line
    );
    std::string member_list;
    for (int idx = 0; idx < members; ++idx) {
        member_list += (idx ? ", \"fake:m" : "\"fake:m") + std::to_string(idx) + "\"";
    }
    const auto config = dir.file("conclave.toml");
    std::ofstream(config) << "[engine]\nconcurrency = " << councils + 8
                          << "\n[stream]\ndelta_interval_ms = " << delta_ms
                          << "\n[providers.fake]\nbase_url = \"" << fake.url()
                          << "/v1\"\nmax_concurrency = 100000\n[council]\nmembers = ["
                          << member_list << "]\nchairman = \"fake:chair\"\n"
                          << "title_model = \"fake:titler\"\n";
    test::server_process server(dir.file("bench.db"), {"--config", config});
    http::client c(server.url());

    // One council alone: the baseline the loaded councils are compared with.
    const auto alone = start_council(c, "baseline");
    while (job_stats(c).succeeded < 1) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const double baseline_ms = duration_ms(json::parse(c.get("/v1/jobs/" + alone).body));

    const double cpu_before = test::cpu_ms(server.pid());
    const auto t0 = clock_type::now();
    std::vector<std::string> ids;
    for (int idx = 0; idx < councils; ++idx) {
        ids.push_back(start_council(c, "question " + std::to_string(idx)));
    }
    const double submit_s = std::chrono::duration<double>(clock_type::now() - t0).count();

    std::vector<std::vector<double>> delays((static_cast<std::size_t>(watched) + 49) / 50);
    std::vector<std::thread> watchers;
    for (std::size_t w = 0; w < delays.size(); ++w) {
        std::vector<std::string> group;
        for (std::size_t idx = w * 50; idx < std::min<std::size_t>(watched, (w + 1) * 50); ++idx) {
            group.push_back(ids[idx]);
        }
        watchers.emplace_back([&, w, group] { watch(server.url(), group, delays[w]); });
    }
    stats_t s;
    while ((s = job_stats(c)).succeeded + s.failed < councils + 1) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const double wall_s = std::chrono::duration<double>(clock_type::now() - t0).count();
    const double cpu = test::cpu_ms(server.pid()) - cpu_before;
    for (auto& t : watchers) {
        t.join();
    }

    std::vector<double> added;
    std::int64_t streamed_tokens = 0;
    for (const auto& id : ids) {
        const auto job = json::parse(c.get("/v1/jobs/" + id).body);
        if (job.at("state") != "succeeded") {
            continue;
        }
        added.push_back(duration_ms(job) - baseline_ms);
        streamed_tokens +=
            job.at("result").at("metadata").at("usage").at("completion_tokens").as_int64();
    }
    std::vector<double> all;
    for (const auto& d : delays) {
        all.insert(all.end(), d.begin(), d.end());
    }
    std::printf(
        "councils: %d at once x %d members, %d tokens per answer at %d ms/token (first after %d "
        "ms), delta_interval_ms %d\n",
        councils,
        members,
        tokens,
        token_ms,
        first_token_ms,
        delta_ms
    );
    std::printf(
        "  %lld succeeded, %lld failed in %.1f s (submitted in %.2f s)\n",
        static_cast<long long>(s.succeeded - 1),
        static_cast<long long>(s.failed),
        wall_s,
        submit_s
    );
    std::printf(
        "  token delay fake-llm -> SSE client (%zu tokens of %d councils): p50 %.1f ms, p99 %.1f "
        "ms, max %.1f ms\n",
        all.size(),
        watched,
        percentile(all, 0.5),
        percentile(all, 0.99),
        percentile(all, 1.0)
    );
    std::printf(
        "  council duration vs one alone (%.0f ms): added p50 %.0f ms, p99 %.0f ms\n",
        baseline_ms,
        percentile(added, 0.5),
        percentile(added, 0.99)
    );
    std::printf(
        "  server CPU %.0f ms for %lld tokens: %.2f ms per 1k tokens\n",
        cpu,
        static_cast<long long>(streamed_tokens),
        cpu / (static_cast<double>(streamed_tokens) / 1000.0)
    );
    return 0;
}
