#include "app/config.hpp"

#include <fstream>

#include <gtest/gtest.h>

#include "support/temp_dir.hpp"

namespace conclave::app {
namespace {

std::string write(const test::temp_dir& dir, const std::string& text) {
    const auto path = dir.file("conclave.toml");
    std::ofstream(path) << text;
    return path;
}

TEST(ConfigTest, DefaultsNeedNoFile) {
    auto c = load_config(std::nullopt);
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->listen, "127.0.0.1:8080");
    EXPECT_EQ(c->db, "sqlite:./data/conclave.db");
    EXPECT_FALSE(c->engine.node_id.empty());
}

TEST(ConfigTest, FileSetsServerStoreTypesAndQueues) {
    test::temp_dir dir;
    auto c = load_config(write(dir, R"(
[server]
listen = "0.0.0.0:9000"
[store]
url = "sqlite:/tmp/x.db"
writers = 3
[engine]
concurrency = 12
lease_s = 5
[types.transcribe]
executor = "remote"
max_attempts = 5
timeout_s = 600
backoff_base_s = 2
backoff_cap_s = 300
concurrency = 8
[queues.slow]
concurrency = 2
)"));
    ASSERT_TRUE(c.has_value()) << c.error().message;
    EXPECT_EQ(c->listen, "0.0.0.0:9000");
    EXPECT_EQ(c->db, "sqlite:/tmp/x.db");
    EXPECT_EQ(c->store_writers, 3);
    EXPECT_EQ(c->engine.concurrency, 12);
    EXPECT_EQ(c->engine.lease_ms, 5000);
    auto types = build_registry(*c);
    ASSERT_TRUE(types.has_value()) << types.error().message;
    const auto* t = types->find("transcribe");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->exec, jobs::executor::remote);
    EXPECT_EQ(t->max_attempts, 5);
    EXPECT_EQ(t->concurrency, 8);
    EXPECT_EQ(t->backoff_base_s, 2);
    EXPECT_EQ(types->queue_limits().size(), 1U);
    EXPECT_NE(types->find("noop"), nullptr) << "built-ins stay";
}

TEST(ConfigTest, EnvironmentOverridesFile) {
    test::temp_dir dir;
    setenv("CONCLAVE_LISTEN", "127.0.0.1:7777", 1);
    auto c = load_config(write(dir, "[server]\nlisten = \"0.0.0.0:9000\"\n"));
    unsetenv("CONCLAVE_LISTEN");
    EXPECT_EQ(c->listen, "127.0.0.1:7777");
}

TEST(ConfigTest, MistakesAreNamed) {
    test::temp_dir dir;
    auto typo = load_config(write(dir, "[server]\nlisen = \"x\"\n"));
    ASSERT_FALSE(typo.has_value());
    EXPECT_NE(typo.error().message.find("server.lisen"), std::string::npos);
    auto wrong_type = load_config(write(dir, "[engine]\nconcurrency = \"many\"\n"));
    EXPECT_NE(wrong_type.error().message.find("engine.concurrency"), std::string::npos);
    auto syntax = load_config(write(dir, "[server\n"));
    EXPECT_FALSE(syntax.has_value());
    auto no_exec = load_config(write(dir, "[types.mystery]\nmax_attempts = 2\n"));
    ASSERT_TRUE(no_exec.has_value());
    auto reg = build_registry(*no_exec);
    ASSERT_FALSE(reg.has_value());
    EXPECT_NE(reg.error().message.find("types.mystery"), std::string::npos);
    auto builtin_remote = load_config(write(dir, "[types.noop]\nexecutor = \"remote\"\n"));
    EXPECT_FALSE(build_registry(*builtin_remote).has_value());
}

// A type's settings have the bounds a submission's have: a timeout past a week overflowed
// PostgreSQL's 32-bit arithmetic in the lease sweep once past 24.8 days.
TEST(ConfigTest, TypeSettingsHaveTheSubmissionsBounds) {
    test::temp_dir dir;
    for (const char* setting :
         {"timeout_s = 604801",
          "timeout_s = -1",
          "timeout_s = 3000000",
          "max_attempts = 0",
          "max_attempts = 1001"}) {
        auto config = load_config(
            write(dir, std::string("[types.slow]\nexecutor = \"remote\"\n") + setting + "\n")
        );
        ASSERT_TRUE(config.has_value()) << setting;
        auto reg = build_registry(*config);
        ASSERT_FALSE(reg.has_value()) << setting;
        EXPECT_NE(reg.error().message.find("types.slow."), std::string::npos)
            << reg.error().message;
    }
    auto week = load_config(
        write(dir, "[types.slow]\nexecutor = \"remote\"\ntimeout_s = 604800\nmax_attempts = 1000\n")
    );
    ASSERT_TRUE(week.has_value());
    auto reg = build_registry(*week);
    ASSERT_TRUE(reg.has_value()) << reg.error().message;
    EXPECT_EQ(reg->find("slow")->timeout_s, 604800);
}

// Integers: a float past the integer range, or an integer past the field's type, is refused
// with the key named (not converted: toml++'s own conversion is undefined there); an integral
// float is taken.
TEST(ConfigTest, IntegersOutOfRangeAreRefused) {
    test::temp_dir dir;
    for (const char* value : {"9.2e77", "-1e19", "inf", "nan", "4294967296", "2.5"}) {
        auto refused = load_config(write(dir, std::string("[engine]\nconcurrency = ") + value));
        ASSERT_FALSE(refused.has_value()) << value;
        EXPECT_NE(refused.error().message.find("engine.concurrency"), std::string::npos)
            << refused.error().message;
    }
    auto taken = load_config(write(dir, "[engine]\nconcurrency = 4.0\n"));
    ASSERT_TRUE(taken.has_value()) << taken.error().message;
    EXPECT_EQ(taken->engine.concurrency, 4);
}

TEST(ConfigTest, StoreWritersAreOneToSixteen) {
    test::temp_dir dir;
    EXPECT_EQ(load_config(write(dir, "log_level = \"info\"\n"))->store_writers, 1) << "default";
    for (const char* value : {"0", "17", "-1", "\"2\""}) {
        auto refused = load_config(write(dir, std::string("[store]\nwriters = ") + value));
        ASSERT_FALSE(refused.has_value()) << value;
        EXPECT_NE(refused.error().message.find("store.writers"), std::string::npos)
            << refused.error().message;
    }
}

TEST(ConfigTest, ProviderBudgetsAreReadAndBadOnesRefused) {
    test::temp_dir dir;
    auto c = load_config(write(dir, R"(
[providers.fake]
base_url = "http://127.0.0.1:1/v1"
tokens_per_minute = 90000
usd_per_day = 2.5
reserve_output_tokens = 300
usd_per_million_tokens = 3
)"));
    ASSERT_TRUE(c.has_value()) << c.error().message;
    ASSERT_EQ(c->providers.size(), 1U);
    const auto& b = c->providers[0].budget;
    EXPECT_EQ(b.tokens_per_minute, 90000);
    EXPECT_DOUBLE_EQ(b.usd_per_day, 2.5);
    EXPECT_EQ(b.reserve_output_tokens, 300);
    EXPECT_DOUBLE_EQ(b.usd_per_million_tokens, 3);
    EXPECT_EQ(load_config(std::nullopt)->providers.size(), 0U) << "no budget unless asked";
    for (const char* bad :
         {"tokens_per_minute = -1",
          "usd_per_day = nan",
          "usd_per_day = -0.5",
          "reserve_output_tokens = -3",
          "usd_per_million_tokens = inf",
          "usd_per_day = \"ten\""}) {
        auto refused = load_config(write(dir, std::string("[providers.fake]\n") + bad + "\n"));
        ASSERT_FALSE(refused.has_value()) << bad;
        EXPECT_NE(refused.error().message.find("providers.fake."), std::string::npos)
            << refused.error().message;
    }
}

TEST(ConfigTest, LogFormatIsTextOrJson) {
    test::temp_dir dir;
    EXPECT_EQ(load_config(std::nullopt)->log_format, "text");
    auto json = load_config(write(dir, "[log]\nformat = \"json\"\n"));
    ASSERT_TRUE(json.has_value()) << json.error().message;
    EXPECT_EQ(json->log_format, "json");
    auto xml = load_config(write(dir, "[log]\nformat = \"xml\"\n"));
    ASSERT_FALSE(xml.has_value());
    EXPECT_NE(xml.error().message.find("log.format"), std::string::npos);
    auto typo = load_config(write(dir, "[log]\nfromat = \"json\"\n"));
    ASSERT_FALSE(typo.has_value());
    EXPECT_NE(typo.error().message.find("log.fromat"), std::string::npos);
}

TEST(ConfigTest, ListenAndDbUrls) {
    auto hp = parse_listen("127.0.0.1:0");
    ASSERT_TRUE(hp.has_value());
    EXPECT_EQ(hp->first, "127.0.0.1");
    EXPECT_EQ(hp->second, 0);
    EXPECT_EQ(parse_listen("[::1]:80")->first, "::1");
    EXPECT_FALSE(parse_listen("nohost").has_value());
    EXPECT_FALSE(parse_listen("h:99999").has_value());
    EXPECT_EQ(*sqlite_path("sqlite:./a.db"), "./a.db");
    EXPECT_EQ(*sqlite_path("sqlite:///abs/a.db"), "/abs/a.db");
    EXPECT_FALSE(sqlite_path("mysql://x").has_value());
}

}  // namespace
}  // namespace conclave::app
