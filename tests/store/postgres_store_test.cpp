// The store on PostgreSQL: the contract suite, plus what several nodes on one database add
// (commit order, claims, idempotency races, wake-ups, a lost connection). Needs the server
// scripts/with-postgres.sh starts (CONCLAVE_TEST_PG_URL); `make test` always provides it.
// Every test works in a schema of its own, dropped when the process ends.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/select.h>
#include <unistd.h>

#include "core/metrics.hpp"
#include "store/postgres/pg_conn.hpp"
#include "store/postgres/pg_group_commit.hpp"
#include "store/postgres/pg_migrations.hpp"
#include "store/postgres/pg_store.hpp"
#include "store/store_contract.hpp"
#include "support/run_coro.hpp"

namespace conclave::test {
namespace {
namespace pg = store::postgres;
using namespace std::chrono_literals;

constexpr unix_ms t0 = 1'700'000'000'000;

std::string test_url() {
    const char* url = std::getenv("CONCLAVE_TEST_PG_URL");
    if (url == nullptr || *url == '\0') {
        throw std::runtime_error(
            "CONCLAVE_TEST_PG_URL is not set: the PostgreSQL tests need the server that "
            "scripts/with-postgres.sh starts, e.g. scripts/with-postgres.sh "
            "build/pg/bin/store_test (make test runs them that way)"
        );
    }
    return url;
}

// The schemas this process made; dropped when it ends.
std::mutex schemas_mutex;
std::vector<std::string> schemas_made;

std::string new_schema() {
    static std::atomic<int> counter{0};
    auto name = "test_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
    std::lock_guard lock(schemas_mutex);
    schemas_made.push_back(name);
    return name;
}

class drop_schemas_at_exit : public ::testing::Environment {
public:
    void TearDown() override {
        std::lock_guard lock(schemas_mutex);
        const char* url = std::getenv("CONCLAVE_TEST_PG_URL");
        if (schemas_made.empty() || url == nullptr || *url == '\0') {
            return;  // nothing made, or no server (the tests said so)
        }
        try {
            pg::connection db(test_url(), "", "conclave test cleanup");
            for (const auto& name : schemas_made) {
                db.exec_script("DROP SCHEMA IF EXISTS " + db.quote_identifier(name) + " CASCADE");
            }
        } catch (const std::exception& e) {
            std::cerr << "leaving test schemas behind: " << e.what() << "\n";
        }
    }
};
[[maybe_unused]] ::testing::Environment* const drop_schemas =
    ::testing::AddGlobalTestEnvironment(new drop_schemas_at_exit);

// The schema of the store whose files live in `dir`: made on first use and recorded there, so
// that reopen() on the same dir opens the same schema.
std::string schema_of(const temp_dir& dir) {
    const auto marker = dir.file("pg_schema");
    std::string name;
    if (std::ifstream in(marker); in >> name) {
        return name;
    }
    name = new_schema();
    std::ofstream(marker) << name;
    return name;
}

// Two writers (a lane per job, topic or conversation, see pg_store.cpp): the contract holds
// with several writers per node too.
pg::postgres_options options_for(const std::string& schema, std::string node_id = "") {
    return {
        .url = test_url(),
        .schema = schema,
        .writer_connections = 2,
        .node_id = std::move(node_id)};
}

INSTANTIATE_TEST_SUITE_P(
    Postgres,
    StoreContract,
    ::testing::Values(store_backend{
        "postgres",
        [](const temp_dir& dir) { return pg::open_postgres_store(options_for(schema_of(dir))); }}),
    backend_name
);

// A node id no other test process uses (NOTIFY channels are database-wide).
std::string node(const std::string& name) {
    return name + "-" + std::to_string(getpid());
}

store::new_job spec(const std::string& type = "work", const std::string& key = "") {
    store::new_job j;
    j.type = type;
    j.run_at = t0;
    j.max_attempts = 3;
    j.idempotency_key = key;
    j.request_hash = "h";
    return j;
}

std::vector<store::new_job> specs_of(int n, const std::string& type = "work") {
    return std::vector<store::new_job>(static_cast<std::size_t>(n), spec(type));
}

std::vector<store::event_spec> one_event(const std::string& type = "tick") {
    return {store::event_spec{type, "{}"}};
}

store::claim_request claim_of(const std::string& type, int max, const std::string& owner) {
    store::claim_request r;
    r.owner = owner;
    r.types = {type};
    r.max = max;
    r.now = t0;
    r.lease_ms = 60'000;
    return r;
}

net::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    net::steady_timer timer(co_await net::this_coro::executor, d);
    co_await timer.async_wait(net::use_awaitable);
}

// Spawns `n` copies of body(i) on strands of `ioc` and waits until all are done.
template <class Body>
net::awaitable<void> in_parallel(net::io_context& ioc, int n, Body body) {
    auto done = std::make_shared<std::atomic<int>>(0);
    for (int idx = 0; idx < n; ++idx) {
        auto task = [body, idx, done]() -> net::awaitable<void> {
            try {
                co_await body(idx);
            } catch (const std::exception& e) {
                ADD_FAILURE() << "task " << idx << " threw: " << e.what();
            }
            ++*done;
        };
        net::co_spawn(net::make_strand(ioc), std::move(task), net::detached);
    }
    while (done->load() < n) {
        co_await sleep_for(2ms);
    }
}

class PostgresStoreTest : public ::testing::Test {
protected:
    std::unique_ptr<store::store> open(const std::string& node_id, int writers = 2) {
        auto options = options_for(schema_, node_id);
        options.writer_connections = writers;
        return pg::open_postgres_store(options);
    }
    std::unique_ptr<pg::connection> session() {
        return std::make_unique<pg::connection>(test_url(), schema_, "conclave test session");
    }

    std::string schema_ = new_schema();
};

TEST(PostgresMigrationsTest, ApplyOnceAndRecordTheVersion) {
    const auto schema = new_schema();
    EXPECT_EQ(pg::migrate_postgres(options_for(schema)), pg::latest_schema_version());
    EXPECT_EQ(pg::migrate_postgres(options_for(schema)), 0) << "already applied";
    pg::connection db(test_url(), schema, "conclave test");
    EXPECT_EQ(db.exec("SELECT max(version) FROM schema_migrations").int64(0, 0), 4);
    EXPECT_EQ(db.exec("SELECT count(*) FROM schema_migrations").int64(0, 0), 4);
    auto tables = db.exec(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = "
        "ANY('{jobs,job_steps,topics,events,conversations,messages,schema_migrations}')",
        schema
    );
    EXPECT_EQ(tables.int64(0, 0), 7) << "every table in the store's own schema";
}

TEST(PostgresMigrationsTest, Version3MovesJobTopicOffsetsOntoTheirJobsRows) {
    const auto schema = new_schema();
    {
        pg::connection db(test_url(), schema, "conclave test");
        EXPECT_EQ(pg::migrate(db, schema, 2), 2);
        // A database written by version 2: job a's topic has a topics row, like space:x.
        db.exec_script(R"(
            INSERT INTO jobs(id, type, queue, state, priority, payload, max_attempts, run_at,
                             timeout_s, backoff_base_ms, backoff_cap_ms, topics, created_at)
            VALUES ('a', 'work', 'default', 'queued', 0, '{}', 3, 0, 0, 1000, 60000, '[]', 0),
                   ('b', 'work', 'default', 'queued', 0, '{}', 3, 0, 0, 1000, 60000, '[]', 0);
            INSERT INTO topics(name, last_offset) VALUES ('job:a', 3), ('space:x', 2);
            INSERT INTO events(topic, "offset", type, data, created_at)
            VALUES ('job:a', 1, 't', '{}', 0), ('job:a', 2, 't', '{}', 0),
                   ('job:a', 3, 't', '{}', 0), ('space:x', 1, 't', '{}', 0),
                   ('space:x', 2, 't', '{}', 0);
        )");
        EXPECT_EQ(pg::migrate(db, schema, 3), 1);
        auto offsets = db.exec("SELECT id, events_offset FROM jobs ORDER BY id");
        ASSERT_EQ(offsets.size(), 2);
        EXPECT_EQ(offsets.int64(0, 1), 3);
        EXPECT_EQ(offsets.int64(1, 1), 0) << "b had no events";
        auto topics = db.exec("SELECT name FROM topics ORDER BY name");
        ASSERT_EQ(topics.size(), 1);
        EXPECT_EQ(topics.text(0, 0), "space:x");
        // What a node of version 2 would do on its next event for job b: refused, and why.
        try {
            db.exec(
                "INSERT INTO topics(name, last_offset) VALUES ('job:b', 1) ON CONFLICT (name) DO "
                "UPDATE SET last_offset = topics.last_offset + 1 RETURNING last_offset"
            );
            ADD_FAILURE() << "an older node gave a job topic a row";
        } catch (const pg::pg_error& e) {
            EXPECT_NE(std::string(e.what()).find("upgrade this conclave node"), std::string::npos)
                << e.what();
        }
        db.exec("INSERT INTO topics(name, last_offset) VALUES ('space:y', 1)");  // others: as ever
    }
    auto db = pg::open_postgres_store(options_for(schema, "n"));
    std::vector<store::event> events;
    run_coro([&](auto&) -> net::awaitable<void> {
        EXPECT_EQ(co_await db->last_offset("job:a"), 3);
        EXPECT_EQ(co_await db->last_offset("space:x"), 2);
        auto cancelled = co_await db->cancel_job("a", 5);
        EXPECT_TRUE(cancelled.has_value());
        auto read = co_await db->read_events("job:a", 0, 10);
        EXPECT_TRUE(read.has_value());
        if (read) {
            events = std::move(*read);
        }
        EXPECT_EQ(co_await db->last_offset("job:a"), 4);
    });
    ASSERT_EQ(events.size(), 4U);
    EXPECT_EQ(events.back().offset, 4) << "numbered on from the migrated offset";
    EXPECT_EQ(events.back().type, "job.cancelled");
}

TEST(PostgresMigrationsTest, Version4ComparesJobIdsStatesAndOwnersByteWise) {
    const auto schema = new_schema();
    pg::connection db(test_url(), schema, "conclave test");
    EXPECT_EQ(pg::migrate(db, schema, 3), 3);
    db.exec_script(R"(
        INSERT INTO jobs(id, type, queue, state, priority, payload, max_attempts, run_at,
                         timeout_s, backoff_base_ms, backoff_cap_ms, topics, created_at,
                         lease_owner, events_offset)
        VALUES ('B', 'work', 'default', 'active', 0, '{}', 3, 0, 0, 1000, 60000, '[]', 0, 'n', 2),
               ('a', 'work', 'default', 'queued', 0, '{}', 3, 0, 0, 1000, 60000, '[]', 0, NULL, 1);
        INSERT INTO job_steps(job_id, key, result, created_at) VALUES ('B', 'k', '1', 0);
    )");
    EXPECT_EQ(pg::migrate(db, schema), 1);
    auto collated = db.exec(
        "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE "
        "table_schema = $1 AND collation_name = 'C' AND table_name IN ('jobs', 'job_steps') "
        "ORDER BY 1",
        schema
    );
    std::vector<std::string> columns;
    for (int row = 0; row < collated.size(); ++row) {
        columns.push_back(collated.text(row, 0));
    }
    EXPECT_EQ(
        columns,
        (std::vector<std::string>{
            "job_steps.job_id",
            "job_steps.key",
            "jobs.id",
            "jobs.idempotency_key",
            "jobs.lease_owner",
            "jobs.queue",
            "jobs.state",
            "jobs.type"})
    );
    // The rows are kept, in byte order now ('B' < 'a'), and the indexes still find them.
    auto ids = db.exec("SELECT id FROM jobs ORDER BY id");
    ASSERT_EQ(ids.size(), 2);
    EXPECT_EQ(ids.text(0, 0), "B");
    EXPECT_EQ(db.exec("SELECT events_offset FROM jobs WHERE id = 'B'").int64(0, 0), 2);
    EXPECT_EQ(db.exec("SELECT count(*) FROM job_steps WHERE job_id = 'B'").int64(0, 0), 1);
}

TEST(PostgresMigrationsTest, NodesStartingTogetherApplyEachMigrationOnce) {
    const auto schema = new_schema();
    std::atomic<int> applied{0};
    std::vector<std::thread> nodes;
    for (int idx = 0; idx < 4; ++idx) {
        nodes.emplace_back([&] { applied += pg::migrate_postgres(options_for(schema)); });
    }
    for (auto& t : nodes) {
        t.join();
    }
    EXPECT_EQ(applied.load(), pg::latest_schema_version());
}

TEST(PostgresMigrationsTest, RefusesASchemaNewerThanTheBinary) {
    const auto schema = new_schema();
    pg::migrate_postgres(options_for(schema));
    {
        pg::connection db(test_url(), schema, "conclave test");
        db.exec_script("INSERT INTO schema_migrations(version, applied_at) VALUES (999, 0)");
    }
    EXPECT_THROW(pg::open_postgres_store(options_for(schema)), pg::pg_error);
}

// Arrays go to the server in binary: every element arrives as it was, whatever it holds.
TEST(PostgresParamsTest, ArraysArriveElementForElement) {
    pg::connection db(test_url(), "", "conclave test");
    const std::vector<std::string> texts{
        "",
        "plain",
        "a \"quoted\" word",
        "back\\slash",
        "{braces},commas",
        "NULL",
        "ünïcödé ✓",
        std::string(100'000, 'x')};
    auto r = db.exec(
        "SELECT t, n, i FROM unnest($1::text[], $2::bigint[], $3::int[]) WITH ORDINALITY "
        "AS u(t, n, i, ord) ORDER BY ord",
        texts,
        std::vector<std::int64_t>{INT64_MIN, -1, 0, 1, INT64_MAX, 42, 7, 8},
        std::vector<int>{INT32_MIN, -1, 0, 1, INT32_MAX, 42, 7, 8}
    );
    ASSERT_EQ(r.size(), 8);
    const std::vector<std::int64_t> ints{INT64_MIN, -1, 0, 1, INT64_MAX, 42, 7, 8};
    const std::vector<std::int64_t> small{INT32_MIN, -1, 0, 1, INT32_MAX, 42, 7, 8};
    for (int row = 0; row < 8; ++row) {
        EXPECT_EQ(r.text(row, 0), texts[static_cast<std::size_t>(row)]);
        EXPECT_FALSE(r.is_null(row, 0));
        EXPECT_EQ(r.int64(row, 1), ints[static_cast<std::size_t>(row)]);
        EXPECT_EQ(r.int64(row, 2), small[static_cast<std::size_t>(row)]);
    }
    // Empty arrays are arrays with no elements, not NULL.
    auto empty = db.exec(
        "SELECT cardinality($1::text[]), cardinality($2::bigint[]), cardinality($3::int[])",
        std::vector<std::string>{},
        std::vector<std::int64_t>{},
        std::vector<int>{}
    );
    EXPECT_EQ(empty.int64(0, 0), 0);
    EXPECT_EQ(empty.int64(0, 1), 0);
    EXPECT_EQ(empty.int64(0, 2), 0);
    // Text the server refuses (not UTF-8) is an error, as a text parameter's would be.
    EXPECT_THROW(
        db.exec("SELECT cardinality($1::text[])", std::vector<std::string>{"ok", "\xff\xfe"}),
        pg::pg_error
    );
}

TEST(PostgresNoticeTest, PayloadIsTheNodeThenATopicAndOffsetPerLine) {
    const auto one = pg::format_event_notices("node a", {{"job:1", 42}, {"space:x", 7}});
    ASSERT_EQ(one, (std::vector<std::string>{"node a\njob:1 42\nspace:x 7"}));
    auto parsed = pg::parse_event_notices(one.front());
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->node_id, "node a");
    ASSERT_EQ(parsed->topics.size(), 2U);
    EXPECT_EQ(parsed->topics[0].topic, "job:1");
    EXPECT_EQ(parsed->topics[0].offset, 42);
    EXPECT_EQ(parsed->topics[1].topic, "space:x");
    EXPECT_EQ(parsed->topics[1].offset, 7);
    EXPECT_TRUE(pg::format_event_notices("n", {}).empty());
    for (const char* bad :
         {"",
          "a",
          "a\n",
          "\nb 1",
          "a\nb",
          "a\n b 1",
          "a\nb 1\n",
          "a\nb x",
          "a\nb -1",
          "a\nb 1x",
          "a\nb 1\nc"}) {
        EXPECT_FALSE(pg::parse_event_notices(bad).has_value()) << "'" << bad << "'";
    }
}

// Many topics in one commit: as few payloads as fit under the limit, each starting with the
// node, every topic in exactly one, none split.
TEST(PostgresNoticeTest, ManyTopicsArePackedUnderTheLimit) {
    std::vector<pg::topic_offset> topics;
    for (int i = 0; i < 1000; ++i) {
        topics.push_back({"job:0192f3c4-5d6e-7f80-9a1b-" + std::to_string(100000000000 + i), i});
    }
    const auto payloads = pg::format_event_notices("node-a", topics);
    std::size_t bytes = 0;
    std::vector<pg::topic_offset> back;
    for (const auto& p : payloads) {
        EXPECT_LE(p.size(), pg::max_notice_bytes);
        bytes += p.size();
        auto parsed = pg::parse_event_notices(p);
        ASSERT_TRUE(parsed.has_value());
        EXPECT_EQ(parsed->node_id, "node-a");
        back.insert(back.end(), parsed->topics.begin(), parsed->topics.end());
    }
    EXPECT_EQ(payloads.size(), (bytes + pg::max_notice_bytes - 1) / pg::max_notice_bytes)
        << "as few as fit";
    ASSERT_EQ(back.size(), topics.size());
    for (std::size_t i = 0; i < topics.size(); ++i) {
        EXPECT_EQ(back[i].topic, topics[i].topic);
        EXPECT_EQ(back[i].offset, topics[i].offset);
    }
}

// Two nodes append to one topic at once: offsets have no gap, and a reader following the table
// never sees an offset before all smaller ones are there (commit order is offset order). Each
// node's commit listener sees its own events in increasing order.
TEST_F(PostgresStoreTest, CommitOrderIsOffsetOrderAcrossTwoStores) {
    constexpr int writers_per_store = 8;
    constexpr int appends_per_writer = 25;
    constexpr std::int64_t total = 2 * writers_per_store * appends_per_writer;
    const std::string topic = "space:shared";
    std::array<std::unique_ptr<store::store>, 2> stores{open(node("a")), open(node("b"))};
    std::mutex mutex;
    std::array<std::vector<std::int64_t>, 2> heard;
    for (std::size_t idx = 0; idx < stores.size(); ++idx) {
        stores[idx]->set_commit_listener([&, idx](const std::vector<store::event>& events) {
            std::lock_guard lock(mutex);
            for (const auto& e : events) {
                heard[idx].push_back(e.offset);
            }
        });
    }
    std::atomic<bool> writing{true};
    std::int64_t followed = 0;
    // Out here: the follower outlives the body's frame (run_coro runs until it is done too).
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    run_coro(
        [&](net::io_context& ioc) -> net::awaitable<void> {
            auto follower = [&]() -> net::awaitable<void> {
                while ((writing.load() || followed < total) &&
                       std::chrono::steady_clock::now() < deadline) {
                    auto events = co_await stores[0]->read_events(topic, followed, 1000);
                    if (events) {
                        for (const auto& e : *events) {
                            EXPECT_EQ(e.offset, followed + 1) << "an offset committed late";
                            followed = e.offset;
                        }
                    }
                    co_await sleep_for(1ms);
                }
            };
            net::co_spawn(net::make_strand(ioc), std::move(follower), net::detached);
            auto write = [&](int idx) -> net::awaitable<void> {
                auto& db = *stores[static_cast<std::size_t>(idx % 2)];
                for (int n = 0; n < appends_per_writer; ++n) {
                    co_await db.append_events(topic, one_event(), t0);
                }
            };
            co_await in_parallel(ioc, 2 * writers_per_store, write);
            writing = false;
        },
        4
    );
    EXPECT_EQ(followed, total);
    std::set<std::int64_t> all;
    for (const auto& offsets : heard) {
        EXPECT_TRUE(std::is_sorted(offsets.begin(), offsets.end()));
        EXPECT_EQ(std::adjacent_find(offsets.begin(), offsets.end()), offsets.end());
        all.insert(offsets.begin(), offsets.end());
        EXPECT_FALSE(offsets.empty()) << "both nodes wrote";
    }
    EXPECT_EQ(all.size(), static_cast<std::size_t>(total));
    EXPECT_EQ(*all.begin(), 1);
    EXPECT_EQ(*all.rbegin(), total);
}

// Workers of two nodes claim from one queue at once: every job is leased once.
TEST_F(PostgresStoreTest, ClaimsFromTwoStoresNeverLeaseTheSameJob) {
    constexpr int jobs = 300;
    std::array<std::unique_ptr<store::store>, 2> stores{open(node("a")), open(node("b"))};
    std::mutex mutex;
    std::multiset<std::string> leased;
    run_coro(
        [&](net::io_context& ioc) -> net::awaitable<void> {
            co_await stores[0]->create_jobs(specs_of(jobs), t0);
            const auto deadline = std::chrono::steady_clock::now() + 20s;
            auto worker = [&](int idx) -> net::awaitable<void> {
                auto& db = *stores[static_cast<std::size_t>(idx % 2)];
                const auto owner = "worker-" + std::to_string(idx);
                for (;;) {
                    {
                        std::lock_guard lock(mutex);
                        if (leased.size() >= jobs || std::chrono::steady_clock::now() > deadline) {
                            co_return;
                        }
                    }
                    auto claimed = co_await db.claim_jobs(claim_of("work", 3, owner));
                    std::lock_guard lock(mutex);
                    for (const auto& c : claimed) {
                        leased.insert(c.job.id);
                    }
                }
            };
            co_await in_parallel(ioc, 12, worker);
        },
        4
    );
    EXPECT_EQ(leased.size(), static_cast<std::size_t>(jobs));
    EXPECT_EQ(std::set<std::string>(leased.begin(), leased.end()).size(), leased.size())
        << "a job leased twice";
}

// A type's concurrency limit holds across nodes: their claims count each other's.
TEST_F(PostgresStoreTest, ClaimLimitsHoldAcrossStores) {
    std::array<std::unique_ptr<store::store>, 2> stores{open(node("a")), open(node("b"))};
    std::atomic<int> claimed{0};
    run_coro(
        [&](net::io_context& ioc) -> net::awaitable<void> {
            auto in_slow = spec("limited");
            in_slow.queue = "slow";
            // The slow queue's jobs come first in claim order, so its limit is what stops them.
            std::vector<store::new_job> batch(10, in_slow);
            batch.insert(batch.end(), 20, spec("limited"));
            co_await stores[0]->create_jobs(batch, t0);
            auto worker = [&](int idx) -> net::awaitable<void> {
                auto& db = *stores[static_cast<std::size_t>(idx % 2)];
                auto request = claim_of("limited", 2, "worker-" + std::to_string(idx));
                request.type_limits = {{"limited", 5}};
                request.queue_limits = {{"slow", 1}};
                for (int round = 0; round < 10; ++round) {
                    auto got = co_await db.claim_jobs(request);
                    claimed += static_cast<int>(got.size());
                }
            };
            co_await in_parallel(ioc, 8, worker);
        },
        4
    );
    EXPECT_EQ(claimed.load(), 5);
    auto db = session();
    auto active = db->exec(
        "SELECT count(*), count(*) FILTER (WHERE queue = 'slow') FROM jobs WHERE state = 'active'"
    );
    EXPECT_EQ(active.int64(0, 0), 5);
    EXPECT_EQ(active.int64(0, 1), 1);
}

// Two nodes submit with the same idempotency key at once: one job, created once, both told of
// it (the second node's INSERT meets the first's key: unique_violation, its batch runs again).
TEST_F(PostgresStoreTest, AnIdempotencyKeyRaceMakesOneJob) {
    constexpr int keys = 20;
    std::array<std::unique_ptr<store::store>, 2> stores{open(node("a")), open(node("b"))};
    std::mutex mutex;
    std::map<std::string, std::vector<store::submitted>> answers;
    run_coro(
        [&](net::io_context& ioc) -> net::awaitable<void> {
            auto submit = [&](int idx) -> net::awaitable<void> {
                auto& db = *stores[static_cast<std::size_t>(idx % 2)];
                const auto key = "k" + std::to_string(idx / 2);
                std::vector<store::new_job> one{spec("work", key)};
                auto got = co_await db.create_jobs(one, t0);
                EXPECT_TRUE(got.has_value());
                if (got) {
                    std::lock_guard lock(mutex);
                    answers[key].push_back(got->front());
                }
            };
            co_await in_parallel(ioc, 2 * keys, submit);
        },
        4
    );
    ASSERT_EQ(answers.size(), static_cast<std::size_t>(keys));
    for (const auto& [key, got] : answers) {
        ASSERT_EQ(got.size(), 2U) << key;
        EXPECT_EQ(got[0].job.id, got[1].job.id) << key;
        EXPECT_EQ(got[0].created + got[1].created, 1) << key << " created once";
    }
    auto db = session();
    EXPECT_EQ(db->exec("SELECT count(*) FROM jobs").int64(0, 0), keys);
}

// Two jobs whose extra topics come in opposite orders, written from two nodes at once: each
// write locks its topics in name order, and a deadlock between batches is run again.
TEST_F(PostgresStoreTest, OpposedTopicOrdersStayGapless) {
    std::array<std::unique_ptr<store::store>, 2> stores{open(node("a")), open(node("b"))};
    std::array<store::job, 2> leased;
    run_coro(
        [&](net::io_context& ioc) -> net::awaitable<void> {
            for (std::size_t idx = 0; idx < 2; ++idx) {
                auto s = spec("work");
                s.topics = idx == 0 ? std::vector<std::string>{"space:x", "space:y"}
                                    : std::vector<std::string>{"space:y", "space:x"};
                std::vector<store::new_job> one{s};
                co_await stores[idx]->create_jobs(one, t0);
                auto got = co_await stores[idx]->claim_jobs(claim_of("work", 1, "w"));
                leased[idx] = got.at(0).job;
            }
            auto post = [&](int idx) -> net::awaitable<void> {
                const auto which = static_cast<std::size_t>(idx % 2);
                const auto& j = leased[which];
                for (int n = 0; n < 20; ++n) {
                    auto posted = co_await stores[which]->append_job_events(
                        j.id, j.lease_token, one_event(), t0
                    );
                    EXPECT_TRUE(posted.has_value());
                }
            };
            co_await in_parallel(ioc, 8, post);
        },
        4
    );
    run_coro([&](auto&) -> net::awaitable<void> {
        for (const char* topic : {"space:x", "space:y"}) {
            auto events = co_await stores[0]->read_events(topic, 0, 1000);
            EXPECT_EQ(events->size(), 4U + 8U * 20U) << topic;
            for (std::size_t idx = 0; idx < events->size(); ++idx) {
                EXPECT_EQ((*events)[idx].offset, static_cast<std::int64_t>(idx + 1)) << topic;
            }
        }
    });
}

double deadlock_retries() {
    return metrics::global()
        .counter(
            "conclave_store_commit_retries_total", {{"backend", "postgres"}, {"reason", "deadlock"}}
        )
        .value();
}

// Group commits of the PostgreSQL stores of this process so far.
std::uint64_t commits() {
    return metrics::global()
        .histogram(
            "conclave_store_commit_batch_size", metrics::size_buckets(), {{"backend", "postgres"}}
        )
        .read()
        .count;
}

// A batch the database picks as a deadlock's victim is rolled back and run again, and its
// writers never hear of it. The deadlock is made with a session of our own: it holds topic y,
// the store's batch locks the job's topics in name order (x, then waits for y), then the session
// asks for x. The store's wait began first, so it checks for a deadlock first (deadlock_timeout,
// 1 s, after it began waiting) and is the victim — if the session's request came within that
// second. On a slow machine (TSan) it may not have: then the session's own check, a second
// later, finds the cycle and the session is the victim; the scenario is then played again with
// new topics, up to three times.
TEST_F(PostgresStoreTest, ADeadlockedBatchRunsAgain) {
    const auto me = node("d");
    auto db = open(me);
    auto watcher = session();
    bool store_was_victim = false;
    for (int round = 0; round < 3 && !store_was_victim; ++round) {
        const auto x = "space:dx" + std::to_string(round);
        const auto y = "space:dy" + std::to_string(round);
        store::job j;
        run_coro([&](auto&) -> net::awaitable<void> {
            auto s = spec("work");
            s.topics = {x, y};
            std::vector<store::new_job> one{s};
            co_await db->create_jobs(one, t0);
            auto got = co_await db->claim_jobs(claim_of("work", 1, "w"));
            j = got.at(0).job;
        });
        const double retries_before = deadlock_retries();
        auto other = session();
        other->exec_script("BEGIN");
        other->exec("SELECT * FROM topics WHERE name = $1 FOR UPDATE", y);
        auto append = std::async(std::launch::async, [&] {
            bool appended = false;
            run_coro([&](auto&) -> net::awaitable<void> {
                auto posted = co_await db->append_job_events(j.id, j.lease_token, one_event(), t0);
                appended = posted.has_value() && posted->front().offset == 3;
            });
            return appended;
        });
        bool waiting = false;
        for (int tick = 0; tick < 200 && !waiting; ++tick) {
            waiting =
                watcher
                    ->exec(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND "
                        "wait_event_type = 'Lock'",
                        "conclave " + me + " writer"
                    )
                    .int64(0, 0) == 1;
            if (!waiting) {
                std::this_thread::sleep_for(5ms);
            }
        }
        EXPECT_TRUE(waiting) << "the store's batch waits for topic " << y;
        bool session_was_victim = false;
        try {
            other->exec("SELECT * FROM topics WHERE name = $1 FOR UPDATE", x);  // the cycle
            other->exec_script("COMMIT");
        } catch (const pg::pg_error& e) {
            ASSERT_EQ(e.sqlstate(), pg::sqlstate::deadlock_detected) << e.what();
            session_was_victim = true;
            other->exec_script("ROLLBACK");
        }
        EXPECT_TRUE(append.get()) << "the append went through, at its offset";
        store_was_victim = deadlock_retries() >= retries_before + 1;
        EXPECT_NE(store_was_victim, session_was_victim) << "one deadlock, one victim";
        run_coro([&](auto&) -> net::awaitable<void> {
            for (const auto& topic : {x, y}) {
                auto events = co_await db->read_events(topic, 0, 100);
                EXPECT_EQ(events->size(), 3U) << topic << ": queued, started, tick; nothing twice";
            }
        });
    }
    EXPECT_TRUE(store_was_victim) << "in three rounds the store's batch was never the victim";
}

// Completions queued together run as one group (one read, one update, one topic lock for
// all), and each still gets its own outcome: a stale token is refused, a second completion of
// a job sees the first, a cancelled job's completion is refused; each job that succeeded has
// one job.succeeded on each of its topics, at the next offset. The batch is made by holding
// the writer behind another session's lock while the completions queue up.
// A node writes on several connections at once (a lane per job, topic or conversation), yet its
// commit listener — the node's hub — sees every topic's events in offset order: here 3 × 300 jobs
// sharing a topic complete on four lanes, each completion appending to it.
TEST_F(PostgresStoreTest, SeveralWritersHandTheListenerEachTopicsEventsInOffsetOrder) {
    auto db = open(node("l"), 4);
    std::mutex seen_mutex;
    std::vector<std::int64_t> seen;  // offsets of space:shared, as the listener got them
    std::atomic<unsigned> calls{0};
    db->set_commit_listener([&](const std::vector<store::event>& events) {
        // Takes its time, more or less of it (as a busy hub would): without the writers
        // handing it one commit at a time, a later commit would often be seen first.
        std::this_thread::sleep_for(std::chrono::microseconds(calls++ % 3 * 700));
        std::lock_guard lock(seen_mutex);
        for (const auto& e : events) {
            if (e.topic == "space:shared") {
                seen.push_back(e.offset);
            }
        }
    });
    constexpr int n = 300;
    constexpr int rounds = 3;
    std::vector<store::claimed_job> claimed;
    auto complete = [&](int idx) -> net::awaitable<void> {
        const auto& j = claimed[static_cast<std::size_t>(idx)].job;
        auto done = co_await db->complete_job(j.id, j.lease_token, "{}", t0 + 1);
        EXPECT_TRUE(done.has_value());
    };
    run_coro(
        [&](net::io_context& ioc) -> net::awaitable<void> {
            auto shared = spec();
            shared.topics = {"space:shared"};
            for (int round = 0; round < rounds; ++round) {
                co_await db->create_jobs(std::vector<store::new_job>(n, shared), t0);
                claimed = co_await db->claim_jobs(claim_of("work", n, "w"));
                EXPECT_EQ(claimed.size(), static_cast<std::size_t>(n));
                co_await in_parallel(ioc, static_cast<int>(claimed.size()), complete);
            }
        },
        4
    );
    std::lock_guard lock(seen_mutex);
    ASSERT_EQ(seen.size(), 3U * n * rounds) << "queued, started and succeeded of each job";
    for (std::size_t idx = 0; idx < seen.size(); ++idx) {
        ASSERT_EQ(seen[idx], static_cast<std::int64_t>(idx + 1)) << "at " << idx;
    }
}

// With several writers, the writes about one job still run in the order they were made: 40
// appends to one job's topic, all made at once without waiting, land in that order (each
// writer is FIFO, and every write about a job goes to the same one).
TEST_F(PostgresStoreTest, SeveralWritersKeepTheOrderOfTheWritesAboutOneJob) {
    auto db = open(node("o"), 4);
    constexpr int n = 40;
    std::vector<std::string> types;
    run_coro([&](net::io_context& ioc) -> net::awaitable<void> {
        co_await db->create_jobs(specs_of(1), t0);
        auto claimed = co_await db->claim_jobs(claim_of("work", 1, "w"));
        if (claimed.size() != 1) {
            ADD_FAILURE() << "no job claimed";
            co_return;
        }
        const auto job = claimed.front().job;
        auto done = std::make_shared<std::atomic<int>>(0);
        for (int idx = 0; idx < n; ++idx) {  // one thread: each starts (and queues) in turn
            auto post = [&db, job, idx, done]() -> net::awaitable<void> {
                auto posted = co_await db->append_job_events(
                    job.id, job.lease_token, one_event("e" + std::to_string(idx)), t0
                );
                EXPECT_TRUE(posted.has_value());
                ++*done;
            };
            net::co_spawn(ioc, post, net::detached);
        }
        while (done->load() < n) {
            co_await sleep_for(2ms);
        }
        auto events = co_await db->read_events(store::job_topic(job.id), 2, 100);
        if (events) {
            for (const auto& e : *events) {
                types.push_back(e.type);
            }
        }
    });
    std::vector<std::string> expected;
    for (int idx = 0; idx < n; ++idx) {
        expected.push_back("e" + std::to_string(idx));
    }
    EXPECT_EQ(types, expected) << "after job.queued and job.started";
}

TEST_F(PostgresStoreTest, CompletionsOfOneBatchRunTogetherWithTheirOwnOutcomes) {
    const auto me = node("g");
    auto db = open(me, 1);  // one writer: the lock holds back every write
    std::vector<store::job> jobs;
    run_coro([&](auto&) -> net::awaitable<void> {
        auto with_topic = spec("work");
        with_topic.topics = {"space:gx"};
        std::vector<store::new_job> specs = specs_of(4);
        specs.push_back(with_topic);
        co_await db->create_jobs(specs, t0);
        co_await db->append_events("space:block", one_event(), t0);
        for (const auto& c : co_await db->claim_jobs(claim_of("work", 5, "w"))) {
            jobs.push_back(c.job);
        }
        auto cancelled = co_await db->cancel_job(jobs.at(3).id, t0);
        EXPECT_TRUE(cancelled.has_value());
    });
    ASSERT_EQ(jobs.size(), 5U);

    auto other = session();
    other->exec_script("BEGIN; SELECT * FROM topics WHERE name = 'space:block' FOR UPDATE");
    struct completion {
        std::size_t job;
        std::string token;
        std::string result;
    };
    const std::vector<completion> queued{
        {0, jobs[0].lease_token, R"({"n":0})"},
        {1, "stale", R"({"n":1})"},
        {0, jobs[0].lease_token, R"({"n":2})"},
        {3, jobs[3].lease_token, R"({"n":3})"},
        {4, jobs[4].lease_token, R"({"n":4})"},
        {2, jobs[2].lease_token, R"({"n":5})"},
    };
    std::vector<result<store::job>> outcomes(queued.size(), store::job{});
    auto work = std::async(std::launch::async, [&] {
        run_coro([&](net::io_context& ioc) -> net::awaitable<void> {
            auto blocked = [&]() -> net::awaitable<void> {
                co_await db->append_events("space:block", one_event(), t0);
            };
            net::co_spawn(ioc, blocked, net::detached);
            co_await sleep_for(200ms);  // the writer waits for the other session's lock
            auto complete = [&](int idx) -> net::awaitable<void> {
                const auto& c = queued[static_cast<std::size_t>(idx)];
                outcomes[static_cast<std::size_t>(idx)] =
                    co_await db->complete_job(jobs[c.job].id, c.token, c.result, t0 + 1);
            };
            co_await in_parallel(ioc, static_cast<int>(queued.size()), complete);
        });
    });
    auto watcher = session();
    bool waiting = false;
    for (int tick = 0; tick < 200 && !waiting; ++tick) {
        waiting = watcher
                      ->exec(
                          "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND "
                          "wait_event_type = 'Lock'",
                          "conclave " + me + " writer"
                      )
                      .int64(0, 0) == 1;
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(waiting) << "the writer waits for topic space:block";
    std::this_thread::sleep_for(500ms);  // the completions queue up behind it
    const auto commits_before = commits();
    other->exec_script("COMMIT");
    work.get();
    EXPECT_EQ(commits() - commits_before, 2U) << "the blocked batch, then the six completions";

    // One of the two completions of job 0 won (the batch's order is the queue's); the other
    // found it succeeded, its lease gone.
    const bool first_won = outcomes[0].has_value();
    ASSERT_NE(first_won, outcomes[2].has_value()) << "exactly one completion of job 0 holds";
    EXPECT_EQ((first_won ? outcomes[2] : outcomes[0]).error().code, errc::lease_lost);
    EXPECT_EQ(outcomes[1].error().code, errc::lease_lost) << "a stale token";
    EXPECT_EQ(outcomes[3].error().code, errc::invalid_transition) << "a cancelled job";
    ASSERT_TRUE(outcomes[4].has_value());
    ASSERT_TRUE(outcomes[5].has_value());
    EXPECT_EQ(outcomes[4]->state, store::job_state::succeeded);
    EXPECT_EQ(outcomes[4]->result, R"({"n":4})");
    EXPECT_EQ(outcomes[5]->result, R"({"n":5})");

    std::vector<result<store::job>> found;
    std::vector<std::vector<store::event>> events;  // jobs 0..4, then space:gx
    run_coro([&](auto&) -> net::awaitable<void> {
        for (const auto& j : jobs) {
            found.push_back(co_await db->find_job(j.id));
            events.push_back(*co_await db->read_events(store::job_topic(j.id), 0, 100));
        }
        events.push_back(*co_await db->read_events("space:gx", 0, 100));
    });
    EXPECT_EQ(found[0]->state, store::job_state::succeeded);
    EXPECT_EQ(found[0]->result, first_won ? R"({"n":0})" : R"({"n":2})");
    EXPECT_TRUE(found[0]->lease_token.empty());
    EXPECT_EQ(found[1]->state, store::job_state::active) << "the stale completion changed nothing";
    EXPECT_EQ(found[3]->state, store::job_state::cancelled);
    for (std::size_t idx : {0U, 2U, 4U, 5U}) {
        ASSERT_EQ(events[idx].size(), 3U) << "queued, started, succeeded: topic " << idx;
        EXPECT_EQ(events[idx].back().type, "job.succeeded");
        EXPECT_EQ(events[idx].back().offset, 3);
    }
    EXPECT_EQ(events[1].size(), 2U) << "no event for a refused completion";
}

// A completion PostgreSQL could not store is refused as a bad request before it joins its
// batch's group of completions, whose one statement (and batch) it would otherwise fail.
TEST_F(PostgresStoreTest, ACompletionThatIsNotTextIsABadRequest) {
    auto db = open(node("n"));
    run_coro([&](auto&) -> net::awaitable<void> {
        co_await db->create_jobs(specs_of(1), t0);
        auto claimed = co_await db->claim_jobs(claim_of("work", 1, "w"));
        EXPECT_EQ(claimed.size(), 1U);
        const auto& j = claimed.at(0).job;
        auto refused = co_await db->complete_job(j.id, j.lease_token, "\"\xff\"", t0 + 1);
        EXPECT_FALSE(refused.has_value());
        if (!refused) {
            EXPECT_EQ(refused.error().code, errc::bad_request);
        }
        auto found = co_await db->find_job(j.id);
        EXPECT_EQ(found->state, store::job_state::active);
        auto done = co_await db->complete_job(j.id, j.lease_token, "{}", t0 + 2);
        EXPECT_TRUE(done.has_value());
    });
}

// A writer stopped inside a transaction (here a write that stalls after locking a topic row,
// as a frozen node would) loses its session once it has been idle there for
// idle_in_transaction_ms: the row lock goes with it, so other sessions go on, and the stalled
// batch's writes get store::unavailable instead of committing late. The next batch reconnects.
TEST_F(PostgresStoreTest, AWriterIdleInATransactionLosesItsSessionAndItsLocks) {
    auto db = open(node("i"));  // the schema
    run_coro([&](auto&) -> net::awaitable<void> {
        co_await db->append_events("space:held", one_event(), t0);
    });
    pg::writer w(
        {.conninfo = test_url(),
         .schema = schema_,
         .node_id = node("i2"),
         .idle_in_transaction_ms = 200}
    );
    std::atomic<bool> locked{false};
    auto stalled = std::async(std::launch::async, [&] {
        std::string outcome = "committed";
        run_coro([&](auto&) -> net::awaitable<void> {
            std::function<bool(pg::write_txn&)> fn = [&](pg::write_txn& txn) {
                txn.lock_topics({"space:held"});
                locked = true;
                std::this_thread::sleep_for(5s);  // idle in the transaction, the row locked
                return true;
            };
            try {
                co_await w.submit<bool>(std::move(fn));
            } catch (const store::unavailable&) {
                outcome = "unavailable";
            }
        });
        return outcome;
    });
    while (!locked) {
        std::this_thread::sleep_for(5ms);
    }
    auto other = session();
    other->exec_script("SET lock_timeout = '3s'; BEGIN");
    bool got_lock = true;
    try {
        other->exec("SELECT 1 FROM topics WHERE name = 'space:held' FOR UPDATE");
    } catch (const pg::pg_error& e) {
        got_lock = false;
        ADD_FAILURE() << "the stalled writer kept its lock: " << e.what();
    }
    other->exec_script(got_lock ? "COMMIT" : "ROLLBACK");
    EXPECT_EQ(stalled.get(), "unavailable") << "the stalled batch must not commit late";
    bool next = false;
    run_coro([&](auto&) -> net::awaitable<void> {
        std::function<bool(pg::write_txn&)> fn = [](pg::write_txn& txn) {
            txn.append("space:held", "tick", "{}", t0);
            return true;
        };
        next = co_await w.submit<bool>(std::move(fn));
    });
    EXPECT_TRUE(next) << "the writer reconnected";
}

// Another session's transaction left open after reading every table holds no lock the store
// needs: claims, completions, events and lease sweeps go on.
TEST_F(PostgresStoreTest, ALongOpenTransactionDoesNotStopClaimsOrCompletions) {
    auto db = open(node("a"));
    run_coro([&](auto&) -> net::awaitable<void> {
        co_await db->create_jobs(specs_of(5), t0);
        co_await db->claim_jobs(claim_of("work", 1, "w0"));
    });
    auto idle = session();
    idle->exec_script(
        "BEGIN; SELECT count(*) FROM jobs; SELECT * FROM topics; SELECT * FROM events; SELECT * "
        "FROM job_steps"
    );
    auto work = std::async(std::launch::async, [&] {
        run_coro([&](auto&) -> net::awaitable<void> {
            co_await db->create_jobs(specs_of(5), t0);
            auto claimed = co_await db->claim_jobs(claim_of("work", 10, "w1"));
            EXPECT_EQ(claimed.size(), 9U);
            for (const auto& c : claimed) {
                auto step = co_await db->save_step(c.job.id, c.job.lease_token, "s", "1", t0);
                EXPECT_TRUE(step.has_value());
                auto posted =
                    co_await db->append_job_events(c.job.id, c.job.lease_token, one_event(), t0);
                EXPECT_TRUE(posted.has_value());
                auto done = co_await db->complete_job(c.job.id, c.job.lease_token, "{}", t0 + 1);
                EXPECT_TRUE(done.has_value());
            }
            const store::retry_policy never = [](const store::job&, bool, unix_ms) {
                return std::optional<unix_ms>();
            };
            auto expired = co_await db->expire_leases(t0 + 120'000, 0, never);
            EXPECT_EQ(expired.size(), 1U) << "the first claim's lease";
            co_await db->prune_events("job:", 0, 1, 1000);
        });
    });
    const bool finished = work.wait_for(30s) == std::future_status::ready;
    idle->exec_script("ROLLBACK");  // unblocks the store if it was waiting
    work.get();
    EXPECT_TRUE(finished) << "the store waited for another session's open transaction";
}

// The server ends the store's sessions (a restart, an administrator): the next operations
// reconnect on their own.
TEST_F(PostgresStoreTest, EndedSessionsAreReplaced) {
    auto db = open(node("r"));
    std::string id;
    run_coro([&](auto&) -> net::awaitable<void> {
        auto created = co_await db->create_jobs(specs_of(1), t0);
        id = created->front().job.id;
        co_await db->find_job(id);
    });
    auto admin = session();
    auto ended = admin->exec(
        "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE "
        "application_name "
        "LIKE $1",
        "conclave " + node("r") + " %"
    );
    EXPECT_GE(ended.int64(0, 0), 2) << "the writer and a reader";
    run_coro([&](auto&) -> net::awaitable<void> {
        auto created = co_await db->create_jobs(specs_of(1), t0);
        EXPECT_TRUE(created.has_value());
        auto found = co_await db->find_job(id);
        EXPECT_TRUE(found.has_value());
    });
    EXPECT_TRUE(db->reachable());
}

// A batch whose connection is lost during COMMIT may have committed, events and all, yet its
// writers hear `unavailable` and the commit listener nothing: the writer says its outcome is
// unknown (the store then catches the node's hub up from the tables). A connection lost
// before COMMIT is a rollback for certain, and says nothing. A deferred trigger ends the
// writer's session inside its COMMIT.
TEST_F(PostgresStoreTest, AConnectionLostDuringCommitLeavesTheOutcomeUnknown) {
    pg::migrate_postgres(options_for(schema_));
    session()->exec_script(R"sql(
CREATE TABLE commit_bomb (x INTEGER);
CREATE FUNCTION end_my_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_terminate_backend(pg_backend_pid());
    PERFORM pg_sleep(5);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON commit_bomb DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION end_my_session();
)sql");
    pg::writer w({test_url(), schema_, node("u"), 16});
    std::atomic<int> unknown{0};
    w.set_unknown_outcome_listener([&] { ++unknown; });
    // What a write running `sql` in the writer's batch hears back.
    auto outcome = [&](std::string sql) {
        std::function<int(pg::write_txn&)> op = [sql](pg::write_txn& txn) {
            txn.db().exec_script(sql);
            return 0;
        };
        std::string what;
        run_coro([&](auto&) -> net::awaitable<void> {
            try {
                co_await w.submit<int>(std::move(op));
                what = "committed";
            } catch (const store::unavailable&) {
                what = "unavailable";
            }
        });
        return what;
    };
    EXPECT_EQ(outcome("SELECT pg_terminate_backend(pg_backend_pid())"), "unavailable");
    EXPECT_EQ(unknown.load(), 0) << "lost before COMMIT: rolled back";
    EXPECT_EQ(outcome("INSERT INTO commit_bomb VALUES (1)"), "unavailable");
    EXPECT_EQ(unknown.load(), 1) << "lost during COMMIT";
    EXPECT_EQ(outcome("SELECT 1"), "committed");
    EXPECT_EQ(unknown.load(), 1);
}

// A write that fails on its own data — bytes PostgreSQL refuses as text, here — gets its error
// and its batch's other writes commit, whether it ran in a savepoint or not; so does a write
// appending an event that is not text (which would otherwise fail the batch at flush()).
TEST_F(PostgresStoreTest, AWriteRefusedForItsDataFailsAlone) {
    pg::migrate_postgres(options_for(schema_));
    session()->exec_script("CREATE TABLE notes (note TEXT)");
    pg::writer w({test_url(), schema_, node("a"), 16});
    using write = std::function<int(pg::write_txn&)>;
    auto note = [](std::string text) -> write {
        return [text](pg::write_txn& txn) {
            txn.db().exec("INSERT INTO notes VALUES ($1)", text);
            return 0;
        };
    };
    auto tick = [](std::string data) -> write {
        return [data](pg::write_txn& txn) {
            return static_cast<int>(txn.append("notes:t", "tick", data, t0).offset);
        };
    };
    const std::string not_text = "\xff";
    const std::vector<std::pair<write, pg::writer::mode>> writes{
        {note("plain"), pg::writer::mode::plain},
        {note(not_text), pg::writer::mode::plain},
        {note("in a savepoint"), pg::writer::mode::with_savepoint},
        {note(not_text), pg::writer::mode::with_savepoint},
        {tick(not_text), pg::writer::mode::plain},
        {tick("{}"), pg::writer::mode::plain},
    };
    std::vector<std::string> heard(writes.size());
    std::atomic<bool> holding{false};
    run_coro([&](auto& ioc) -> net::awaitable<void> {
        // Keeps the writer busy while the writes queue up behind it: they make one batch.
        write hold = [&holding](pg::write_txn& txn) {
            holding = true;
            txn.db().exec_script("SELECT pg_sleep(0.3)");
            return 0;
        };
        net::co_spawn(ioc, w.submit<int>(std::move(hold)), net::detached);
        while (!holding) {
            std::this_thread::sleep_for(1ms);
        }
        // Takes what it uses as parameters: they live in the coroutine's frame.
        auto one = [](pg::writer& to, write op, pg::writer::mode m, std::string& out
                   ) -> net::awaitable<void> {
            auto task = to.submit<int>(std::move(op), m);
            try {
                out = "ok " + std::to_string(co_await std::move(task));
            } catch (const pg::pg_error& e) {
                out = e.sqlstate();
            } catch (const std::invalid_argument&) {
                out = "not text";
            }
        };
        for (std::size_t idx = 0; idx < writes.size(); ++idx) {
            net::co_spawn(
                ioc, one(w, writes[idx].first, writes[idx].second, heard[idx]), net::detached
            );
        }
        co_return;
    });
    EXPECT_EQ(w.batches_committed(), 2U) << "the hold, then the six writes together";
    EXPECT_EQ(
        heard, (std::vector<std::string>{"ok 0", "22021", "ok 0", "22021", "not text", "ok 1"})
    ) << "22021: character_not_in_repertoire; the good event takes offset 1, no gap";
    auto rows = session()->exec("SELECT note FROM notes ORDER BY note");
    ASSERT_EQ(rows.size(), 2);
    EXPECT_EQ(rows.text(0, 0), "in a savepoint");
    EXPECT_EQ(rows.text(1, 0), "plain");
}

// While the database refuses the store's sessions, operations throw store::unavailable and
// reachable() turns false; once it lets them in again the store recovers by itself.
TEST_F(PostgresStoreTest, AnUnreachableDatabaseIsUnavailableUntilItIsBack) {
    const auto role = "conclave_test_" + std::to_string(getpid());
    auto admin = std::make_unique<pg::connection>(test_url(), "", "conclave test admin");
    admin->exec_script("DROP ROLE IF EXISTS " + role);
    admin->exec_script("CREATE ROLE " + role + " LOGIN SUPERUSER");
    pg::migrate_postgres(options_for(schema_));
    auto url = test_url();
    const auto user = url.find("postgres@");
    ASSERT_NE(user, std::string::npos) << "expected scripts/with-postgres.sh's URL: " << url;
    url.replace(user, std::string("postgres@").size(), role + "@");
    auto db = pg::open_postgres_store({.url = url, .schema = schema_, .node_id = node("u")});

    admin->exec_script("ALTER ROLE " + role + " NOLOGIN");
    admin->exec(
        "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE usename = $1",
        role
    );
    run_coro([&](auto&) -> net::awaitable<void> {
        bool write_refused = false;
        try {
            co_await db->create_jobs(specs_of(1), t0);
        } catch (const store::unavailable&) {
            write_refused = true;
        }
        EXPECT_TRUE(write_refused);
        bool read_refused = false;
        try {
            co_await db->count_jobs();
        } catch (const store::unavailable&) {
            read_refused = true;
        }
        EXPECT_TRUE(read_refused);
    });
    EXPECT_FALSE(db->reachable());

    admin->exec_script("ALTER ROLE " + role + " LOGIN");
    for (int tick = 0; tick < 50 && !db->reachable(); ++tick) {
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(db->reachable()) << "the writer reconnects while idle";
    run_coro([&](auto&) -> net::awaitable<void> {
        auto created = co_await db->create_jobs(specs_of(1), t0);
        EXPECT_TRUE(created.has_value());
        auto counts = co_await db->count_jobs();
        EXPECT_EQ(counts.queued, 1);
    });
    db.reset();
    admin->exec(
        "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE usename = $1",
        role
    );
    admin->exec_script("DROP ROLE " + role);
}

// Waits up to `timeout` for notifications on `conn` until `done(all so far)` holds.
template <class Done>
std::vector<std::pair<std::string, std::string>> notifications(
    pg::connection& conn, std::chrono::milliseconds timeout, Done done
) {
    std::vector<std::pair<std::string, std::string>> out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto* raw = conn.native_handle();
    while (!done(out) && std::chrono::steady_clock::now() < deadline) {
        const int fd = PQsocket(raw);
        fd_set readable;
        FD_ZERO(&readable);
        FD_SET(fd, &readable);
        timeval wait{0, 50'000};
        select(fd + 1, &readable, nullptr, nullptr, &wait);
        PQconsumeInput(raw);
        while (PGnotify* n = PQnotifies(raw)) {
            out.emplace_back(n->relname, n->extra);
            PQfreemem(n);
        }
    }
    return out;
}

// Another node learns of each commit: per topic its newest offset, and that jobs were queued.
TEST_F(PostgresStoreTest, CommitsNotifyTopicOffsetsAndQueuedJobs) {
    auto listener = session();
    listener->exec_script("LISTEN conclave_events; LISTEN conclave_jobs");
    const auto me = node("n");
    auto db = open(me);
    std::string job_id;
    run_coro([&](auto&) -> net::awaitable<void> {
        std::vector<store::event_spec> three(3, store::event_spec{"e", "{}"});
        co_await db->append_events("space:notified", three, t0);
        auto created = co_await db->create_jobs(specs_of(1), t0);
        job_id = created->front().job.id;
    });
    const auto expected_topic = "space:notified 3";
    const auto expected_job = "job:" + job_id + " 1";
    // "jobs:" per conclave_jobs notice, "<topic> <offset>" per topic in this node's notices.
    auto mine = [&](const std::vector<std::pair<std::string, std::string>>& got) {
        std::vector<std::string> out;
        for (const auto& [channel, payload] : got) {
            if (channel == "conclave_jobs") {
                out.push_back("jobs:" + payload);
            } else if (auto notices = pg::parse_event_notices(payload)) {
                if (notices->node_id != me) {
                    continue;
                }
                for (const auto& t : notices->topics) {
                    out.push_back(t.topic + " " + std::to_string(t.offset));
                }
            } else {
                ADD_FAILURE() << "a payload that does not parse: " << payload;
            }
        }
        return out;
    };
    auto got = notifications(*listener, 5s, [&](const auto& so_far) {
        auto seen = mine(so_far);
        return std::find(seen.begin(), seen.end(), expected_job) != seen.end();
    });
    auto seen = mine(got);
    EXPECT_NE(std::find(seen.begin(), seen.end(), expected_topic), seen.end())
        << "one notice for the three events, with the last offset";
    EXPECT_EQ(std::count(seen.begin(), seen.end(), "space:notified 1"), 0);
    EXPECT_NE(std::find(seen.begin(), seen.end(), expected_job), seen.end());
    // Its payload is empty, so with other test processes on the server this only shows the
    // channel is in use; PostgresNoticeTest and the store's code say the rest.
    EXPECT_NE(std::find(seen.begin(), seen.end(), "jobs:"), seen.end()) << "jobs were queued";
}

}  // namespace
}  // namespace conclave::test
