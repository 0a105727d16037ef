#include "core/metrics.hpp"

#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace conclave::metrics {
namespace {

TEST(MetricsTest, CounterFamilyHasHelpTypeAndOneLinePerLabelSet) {
    registry r;
    r.counter("app_requests_total", {{"route", "/b"}, {"status", "200"}}, "Requests").inc(2);
    r.counter("app_requests_total", {{"status", "200"}, {"route", "/a"}}).inc();
    r.counter("app_requests_total", {{"route", "/b"}, {"status", "200"}}).inc();
    EXPECT_EQ(
        r.expose(),
        "# HELP app_requests_total Requests\n"
        "# TYPE app_requests_total counter\n"
        "app_requests_total{route=\"/a\",status=\"200\"} 1\n"
        "app_requests_total{route=\"/b\",status=\"200\"} 3\n"
    );
}

TEST(MetricsTest, SameLabelsInAnyOrderAreOneSeriesAndReferencesStayValid) {
    registry r;
    auto& a = r.counter("x_total", {{"a", "1"}, {"b", "2"}});
    auto& b = r.counter("x_total", {{"b", "2"}, {"a", "1"}});
    EXPECT_EQ(&a, &b);
    for (int idx = 0; idx < 100; ++idx) {
        r.counter("x_total", {{"a", std::to_string(idx + 2)}});
    }
    a.inc();
    EXPECT_EQ(r.counter("x_total", {{"a", "1"}, {"b", "2"}}).value(), 1);
}

TEST(MetricsTest, FamiliesAreSortedAndEmptyLabelsHaveNoBraces) {
    registry r;
    r.gauge("b_open", {}, "Open").set(3);
    r.counter("a_total", {}, "A").add(0.25);
    r.counter("a_total").inc();
    EXPECT_EQ(
        r.expose(),
        "# HELP a_total A\n# TYPE a_total counter\na_total 1.25\n"
        "# HELP b_open Open\n# TYPE b_open gauge\nb_open 3\n"
    );
}

TEST(MetricsTest, LabelValuesAndHelpAreEscaped) {
    registry r;
    r.gauge("g", {{"path", "a\\b\"c\nd"}}, "line one\nback\\slash").set(-1.5);
    EXPECT_EQ(
        r.expose(),
        "# HELP g line one\\nback\\\\slash\n"
        "# TYPE g gauge\n"
        "g{path=\"a\\\\b\\\"c\\nd\"} -1.5\n"
    );
    EXPECT_EQ(escape_label_value("plain"), "plain");
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
    registry r;
    auto& h = r.histogram("lat_seconds", {0.125, 1, 10}, {{"op", "commit"}}, "Latency");
    // 0.125 is on a bound: `le` is inclusive.
    for (double v : {0.0625, 0.125, 0.5, 2.0, 20.0}) {
        h.observe(v);
    }
    EXPECT_EQ(
        r.expose(),
        "# HELP lat_seconds Latency\n"
        "# TYPE lat_seconds histogram\n"
        "lat_seconds_bucket{op=\"commit\",le=\"0.125\"} 2\n"
        "lat_seconds_bucket{op=\"commit\",le=\"1\"} 3\n"
        "lat_seconds_bucket{op=\"commit\",le=\"10\"} 4\n"
        "lat_seconds_bucket{op=\"commit\",le=\"+Inf\"} 5\n"
        "lat_seconds_sum{op=\"commit\"} 22.6875\n"
        "lat_seconds_count{op=\"commit\"} 5\n"
    );
    const auto s = h.read();
    EXPECT_EQ(s.cumulative, (std::vector<std::uint64_t>{2, 3, 4, 5}));
    EXPECT_EQ(s.count, 5U);
}

TEST(MetricsTest, AFamilysBucketsAreFixedByItsFirstSeries) {
    registry r;
    r.histogram("h", {1, 2}, {{"k", "a"}});
    auto& other = r.histogram("h", {5}, {{"k", "b"}});
    EXPECT_EQ(other.bounds(), (std::vector<double>{1, 2}));
}

TEST(MetricsTest, MisuseIsALogicError) {
    registry r;
    r.counter("used_total");
    EXPECT_THROW(r.gauge("used_total"), std::logic_error);
    EXPECT_THROW(r.counter("bad-name"), std::logic_error);
    EXPECT_THROW(r.counter("ok_total", {{"9bad", "x"}}), std::logic_error);
    EXPECT_THROW(r.counter("ok_total", {{"le", "x"}}), std::logic_error);
    EXPECT_THROW(r.counter("ok_total", {{"a", "x"}, {"a", "y"}}), std::logic_error);
    EXPECT_THROW(r.histogram("h2", {2, 1}), std::logic_error);
}

TEST(MetricsTest, ValuesFormatAsPrometheusParsesThem) {
    EXPECT_EQ(format_value(0), "0");
    EXPECT_EQ(format_value(42), "42");
    EXPECT_EQ(format_value(-3), "-3");
    EXPECT_EQ(format_value(0.001), "0.001");
    EXPECT_EQ(format_value(1e300), "1e+300");
    EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(MetricsTest, GaugeFamilyWrittenAtScrapeTime) {
    std::string out;
    write_gauge_family(
        out, "jobs", "Jobs", {{{{"state", "queued"}, {"queue", "q\"1"}}, 2}, {{}, 0}}
    );
    EXPECT_EQ(
        out,
        "# HELP jobs Jobs\n# TYPE jobs gauge\njobs{queue=\"q\\\"1\",state=\"queued\"} 2\njobs 0\n"
    );
}

TEST(MetricsTest, ConcurrentIncrementsAndLookupsLoseNothing) {
    registry r;
    constexpr int threads = 4;
    constexpr int per_thread = 20'000;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&r, t] {
            auto& mine = r.counter("c_total", {{"t", std::to_string(t)}});
            auto& shared = r.gauge("g");
            auto& h = r.histogram("h", {1});
            for (int idx = 0; idx < per_thread; ++idx) {
                mine.inc();
                r.counter("c_total", {{"t", "all"}}).inc();
                shared.inc();
                h.observe(0.5);
            }
        });
    }
    for (auto& t : pool) {
        t.join();
    }
    EXPECT_EQ(r.counter("c_total", {{"t", "all"}}).value(), threads * per_thread);
    EXPECT_EQ(r.counter("c_total", {{"t", "0"}}).value(), per_thread);
    EXPECT_EQ(r.gauge("g").value(), threads * per_thread);
    EXPECT_EQ(r.histogram("h", {1}).read().count, static_cast<std::uint64_t>(threads * per_thread));
}

}  // namespace
}  // namespace conclave::metrics
