// Resume latency: how long a reconnecting SSE client waits for its first replayed event, when
// the hub's ring still holds its position and when the store must be read. Prints p50/p99.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include <boost/json.hpp>

#include <CLI/CLI.hpp>

#include "http/client.hpp"
#include "http/sse_client.hpp"
#include "support/producer.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

struct percentiles {
    double p50 = 0, p99 = 0;
};

// Opens `count` streams resuming after `after` and times connect → first event, in µs.
percentiles time_resumes(
    const std::string& url, const std::string& topic, std::int64_t after, int count
) {
    std::vector<double> micros;
    for (int idx = 0; idx < count; ++idx) {
        const auto start = clock_type::now();
        auto r = conclave::http::read_sse(
            url,
            {.target = "/v1/topics/" + topic + "/events",
             .last_event_id = std::to_string(after),
             .max_events = 1}
        );
        if (r.events.size() != 1 ||
            json::parse(r.events[0].data).at("offset").as_int64() != after + 1) {
            std::fprintf(
                stderr,
                "resume after %lld did not start at the next event\n",
                static_cast<long long>(after)
            );
            std::exit(1);
        }
        micros.push_back(
            std::chrono::duration<double, std::micro>(clock_type::now() - start).count()
        );
    }
    std::sort(micros.begin(), micros.end());
    auto at = [&](double p) {
        return micros[static_cast<std::size_t>(p * static_cast<double>(micros.size() - 1))];
    };
    return {at(0.5), at(0.99)};
}

}  // namespace

int main(int argc, char** argv) {
    using namespace conclave;
    CLI::App cli{"Conclave SSE resume benchmark"};
    int events = 5000;
    int resumes = 500;
    cli.add_option("--events", events, "events in the topic");
    cli.add_option("--resumes", resumes, "resumes timed per case");
    CLI11_PARSE(cli, argc, argv);

    test::temp_dir dir;
    test::server_process server(
        dir.file("resume.db"), {"--config", test::write_producer_config(dir)}
    );
    test::producer p(server.url(), "resume:t");
    p.post(events, 0);
    const auto last = static_cast<std::int64_t>(events) + 2;  // plus job.queued and job.started
    const auto ring = time_resumes(server.url(), "resume:t", last - 10, resumes);
    const auto store = time_resumes(server.url(), "resume:t", 10, resumes);
    std::printf(
        "resume to first event, %d resumes each: from the ring p50 %.0f us, p99 %.0f us; "
        "from the store p50 %.0f us, p99 %.0f us\n",
        resumes,
        ring.p50,
        ring.p99,
        store.p50,
        store.p99
    );
    return 0;
}
