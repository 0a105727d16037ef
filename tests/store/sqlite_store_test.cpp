#include "store/sqlite/sqlite_store.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "store/records_json.hpp"
#include "store/sqlite/migrations.hpp"
#include "store/sqlite/sqlite_db.hpp"
#include "store/store_contract.hpp"
#include "store/topic.hpp"
#include "support/run_coro.hpp"

namespace conclave::test {
namespace {

INSTANTIATE_TEST_SUITE_P(
    Sqlite,
    StoreContract,
    ::testing::Values(store_backend{
        "sqlite",
        [](const temp_dir& dir) {
            return store::sqlite::open_sqlite_store({.path = dir.file("test.db")});
        }}),
    backend_name
);

TEST(SqliteMigrationsTest, ApplyOnceAndRecordTheVersion) {
    temp_dir dir;
    const auto path = dir.file("nested/dir/m.db");
    EXPECT_EQ(store::sqlite::migrate_sqlite(path), store::sqlite::latest_schema_version());
    EXPECT_EQ(store::sqlite::migrate_sqlite(path), 0) << "already applied";
    store::sqlite::connection db(path);
    auto q = db.prepare("SELECT max(version) FROM schema_migrations");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.int64_at(0), store::sqlite::latest_schema_version());
}

TEST(SqliteMigrationsTest, RefusesADatabaseNewerThanTheBinary) {
    temp_dir dir;
    const auto path = dir.file("newer.db");
    store::sqlite::migrate_sqlite(path);
    {
        store::sqlite::connection db(path);
        db.exec("INSERT INTO schema_migrations(version, applied_at) VALUES (999, 0)");
    }
    EXPECT_THROW(store::sqlite::open_sqlite_store({.path = path}), store::sqlite::sqlite_error);
}

TEST(SqliteDbTest, WalAndFullSyncAreOn) {
    temp_dir dir;
    store::sqlite::connection db(dir.file("p.db"));
    auto mode = db.prepare("PRAGMA journal_mode");
    ASSERT_TRUE(mode.step());
    EXPECT_EQ(mode.text_at(0), "wal");
    auto sync = db.prepare("PRAGMA synchronous");
    ASSERT_TRUE(sync.step());
    EXPECT_EQ(sync.int64_at(0), 2) << "FULL";
}

// /v1/stats' counts per queue and type read every job; what they hold while doing it must not
// grow with the table (SQLite's GROUP BY sorted every row's key in memory first: 55 MB with
// 1.1 M jobs).
TEST(SqliteStoreTest, CountingByQueueAndTypeHoldsNoRowPerJob) {
    // The store turns SQLite's memory statistics off (they take a global mutex on every
    // allocation); this test turns them on while no connection is open, and off again after.
    struct sqlite_memory_statistics {
        sqlite_memory_statistics() { set(1); }
        ~sqlite_memory_statistics() { set(0); }
        static void set(int on) {
            sqlite3_shutdown();
            sqlite3_config(SQLITE_CONFIG_MEMSTATUS, on);
            sqlite3_initialize();
        }
    } statistics;
    temp_dir dir;
    auto db = store::sqlite::open_sqlite_store({.path = dir.file("stats.db"), .reader_threads = 1});
    constexpr int jobs = 40'000;
    std::int64_t growth = 0;
    run_coro([&](auto&) -> net::awaitable<void> {
        for (int made = 0; made < jobs; made += 2'000) {
            std::vector<store::new_job> batch(2'000);
            for (std::size_t i = 0; i < batch.size(); ++i) {
                batch[i].type = i % 2 == 0 ? "even" : "odd";
                batch[i].queue = "q" + std::to_string(i % 3);
            }
            auto created = co_await db->create_jobs(std::move(batch), 1);
            EXPECT_TRUE(created.has_value());
        }
        co_await db->count_jobs_by_queue_and_type();  // the reader's page cache fills
        sqlite3_int64 before = 0;
        sqlite3_int64 peak = 0;
        sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &before, &peak, 1);
        auto groups = co_await db->count_jobs_by_queue_and_type();
        sqlite3_int64 now = 0;
        sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &now, &peak, 0);
        growth = peak - before;
        EXPECT_EQ(groups.size(), 6U);
        std::int64_t queued = 0;
        for (const auto& g : groups) {
            queued += g.counts.queued;
        }
        EXPECT_EQ(queued, jobs);
    });
    // A sort of 40,000 keys needs over a megabyte; a statement and one entry per group do not.
    EXPECT_LT(growth, 256 * 1024) << "SQLite's memory grew by " << growth << " bytes";
}

TEST(TopicTest, ValidNames) {
    EXPECT_TRUE(store::is_valid_topic("job:0192-abc"));
    EXPECT_TRUE(store::is_valid_topic("space:acme:runs"));
    EXPECT_TRUE(store::is_valid_topic("a"));
    EXPECT_FALSE(store::is_valid_topic(""));
    EXPECT_FALSE(store::is_valid_topic(":a"));
    EXPECT_FALSE(store::is_valid_topic("a:"));
    EXPECT_FALSE(store::is_valid_topic("a::b"));
    EXPECT_FALSE(store::is_valid_topic("a b"));
    EXPECT_FALSE(store::is_valid_topic("a/b"));
    EXPECT_FALSE(store::is_valid_topic(std::string(201, 'a')));
    EXPECT_TRUE(store::is_valid_topic(std::string(200, 'a')));
}

TEST(RecordsJsonTest, JobHidesLeaseTokenAndInlinesDocuments) {
    store::job j;
    j.id = "x";
    j.payload = R"({"a":1})";
    j.lease_token = "secret";
    j.created_at = 1'700'000'000'123;
    auto o = store::to_json(j);
    EXPECT_FALSE(o.contains("lease_token"));
    EXPECT_EQ(o.at("payload").at("a").as_int64(), 1);
    EXPECT_EQ(o.at("created_at").as_string(), "2023-11-14T22:13:20.123Z");
    EXPECT_TRUE(o.at("result").is_null());
}

}  // namespace
}  // namespace conclave::test
