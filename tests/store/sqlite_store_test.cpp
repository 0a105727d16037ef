#include "store/sqlite/sqlite_store.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "store/records_json.hpp"
#include "store/sqlite/migrations.hpp"
#include "store/sqlite/sqlite_db.hpp"
#include "store/store_contract.hpp"
#include "store/topic.hpp"

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
