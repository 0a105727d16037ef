// GET /v1/config over real HTTP: the council a UI would offer, the providers without secrets.
#include <cstdlib>

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "http/client.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace conclave::test {
namespace {

namespace json = boost::json;

constexpr const char* local_key = "sk-local-secret-4f2a9c";
constexpr const char* openrouter_key = "sk-or-secret-77d1e0";

// The entry of `providers` named `name`, or null.
json::value provider(const json::value& config, std::string_view name) {
    for (const auto& p : config.at("providers").as_array()) {
        if (p.at("name").as_string() == name) {
            return p;
        }
    }
    ADD_FAILURE() << "no provider " << name << " in " << json::serialize(config);
    return nullptr;
}

json::value get_config(const server_process& server) {
    http::client client(server.url());
    auto res = client.get("/v1/config");
    EXPECT_EQ(res.status, 200) << res.body;
    return json::parse(res.body);
}

class ConfigApiTest : public ::testing::Test {
protected:
    void SetUp() override { ::unsetenv("OPENROUTER_API_KEY"); }
    void TearDown() override {
        ::unsetenv("OPENROUTER_API_KEY");
        ::unsetenv("CONCLAVE_TEST_LOCAL_KEY");
    }

    std::string write_config(const std::string& text) {
        const auto path = dir_.file("conclave.toml");
        FILE* f = std::fopen(path.c_str(), "w");
        std::fputs(text.c_str(), f);
        std::fclose(f);
        return path;
    }

    temp_dir dir_;
};

TEST_F(ConfigApiTest, WithoutAKeyTheCouncilIsSimulated) {
    server_process server(dir_.file("sim.db"));
    auto config = get_config(server);
    EXPECT_TRUE(config.at("simulated").as_bool());
    EXPECT_EQ(config.at("default_provider").as_string(), "openrouter");
    EXPECT_FALSE(config.at("version").as_string().empty());
    const auto& council = config.at("council");
    EXPECT_EQ(council.at("members").as_array().size(), 4U);
    EXPECT_EQ(council.at("members").at(0).as_string(), "sim:alpha");
    EXPECT_EQ(council.at("chairman").as_string(), "sim:chair");
    EXPECT_EQ(council.at("chairman_fallback").as_string(), "sim:alpha");
    EXPECT_EQ(council.at("title_model").as_string(), "sim:title");
    EXPECT_TRUE(council.at("self_ranking").as_bool());
    auto sim = provider(config, "sim");
    EXPECT_TRUE(sim.at("simulated").as_bool());
    EXPECT_FALSE(sim.at("has_key").as_bool());
    EXPECT_FALSE(sim.as_object().contains("base_url"));
    auto openrouter = provider(config, "openrouter");
    EXPECT_FALSE(openrouter.at("simulated").as_bool());
    EXPECT_FALSE(openrouter.at("has_key").as_bool());
    EXPECT_EQ(openrouter.at("base_url").as_string(), "https://openrouter.ai/api/v1");
    EXPECT_EQ(openrouter.at("api_key_env").as_string(), "OPENROUTER_API_KEY");
}

TEST_F(ConfigApiTest, ProvidersShowWhetherTheyHaveAKeyButNeverTheKey) {
    ::setenv("OPENROUTER_API_KEY", openrouter_key, 1);
    ::setenv("CONCLAVE_TEST_LOCAL_KEY", local_key, 1);
    const auto file = write_config(
        "default_provider = \"local\"\n"
        "[providers.local]\n"
        "base_url = \"http://alice:hunter2@127.0.0.1:9/v1?api_key=qs-secret\"\n"
        "api_key_env = \"CONCLAVE_TEST_LOCAL_KEY\"\n"
        "[council]\n"
        "members = [\"local:m1\", \"sim:alpha\"]\n"
        "chairman = \"local:m1\"\n"
        "self_ranking = false\n"
    );
    server_process server(dir_.file("keys.db"), {"--config", file});
    http::client client(server.url());
    const auto text = client.get("/v1/config").body;
    for (const char* secret : {local_key, openrouter_key, "hunter2", "qs-secret", "alice"}) {
        EXPECT_EQ(text.find(secret), std::string::npos) << secret << " in " << text;
    }
    auto config = json::parse(text);
    EXPECT_FALSE(config.at("simulated").as_bool());
    EXPECT_EQ(config.at("default_provider").as_string(), "local");
    const auto& council = config.at("council");
    EXPECT_EQ(council.at("members"), (json::array{"local:m1", "sim:alpha"}));
    EXPECT_EQ(council.at("chairman").as_string(), "local:m1");
    EXPECT_TRUE(council.at("chairman_fallback").is_null());
    EXPECT_TRUE(council.at("title_model").is_null());
    EXPECT_FALSE(council.at("self_ranking").as_bool());
    auto local = provider(config, "local");
    EXPECT_EQ(local.at("base_url").as_string(), "http://127.0.0.1:9/v1");
    EXPECT_TRUE(local.at("has_key").as_bool());
    EXPECT_FALSE(local.at("simulated").as_bool());
    EXPECT_TRUE(provider(config, "openrouter").at("has_key").as_bool());
}

}  // namespace
}  // namespace conclave::test
