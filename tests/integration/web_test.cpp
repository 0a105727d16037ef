// The embedded web UI over real HTTP: index.html, hashed assets with ETags, client-side routes,
// and what must stay a JSON 404. Passes with the built UI and with the placeholder page (the
// asset checks skip when the embedded index.html references no /assets/ file).
#include <regex>

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "http/client.hpp"
#include "support/server_process.hpp"
#include "support/temp_dir.hpp"

namespace conclave::test {
namespace {

namespace json = boost::json;
using headers = std::vector<std::pair<std::string, std::string>>;

const headers browser{{"Accept", "text/html,application/xhtml+xml,*/*;q=0.8"}};

std::string header(const http::client_response& res, std::string_view name) {
    for (const auto& [key, value] : res.headers) {
        if (key.size() == name.size() &&
            std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) ==
                       std::tolower(static_cast<unsigned char>(b));
            })) {
            return value;
        }
    }
    return "";
}

class WebTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new temp_dir();
        server_ = new server_process(dir_->file("web.db"));
    }
    static void TearDownTestSuite() {
        delete server_;
        delete dir_;
    }

    http::client_response get(const std::string& target, const headers& extra = {}) {
        return client_.request("GET", target, {}, extra);
    }

    // Checks a JSON 404 {"error": {"code": "not_found", …}}.
    void expect_json_404(const std::string& target, const headers& extra = browser) {
        auto res = get(target, extra);
        EXPECT_EQ(res.status, 404) << target << " -> " << res.body;
        EXPECT_EQ(header(res, "Content-Type"), "application/json") << target;
        auto body = json::parse(res.body);
        EXPECT_EQ(body.at("error").at("code").as_string(), "not_found") << target;
    }

    // The first /assets/… file the served index.html references, or "".
    std::string asset_in_index() {
        const auto index = get("/").body;
        std::smatch m;
        if (!std::regex_search(index, m, std::regex(R"((/assets/[^"'?#\s]+))"))) {
            return "";
        }
        return m[1];
    }

    static temp_dir* dir_;
    static server_process* server_;
    http::client client_{server_->url()};
};

temp_dir* WebTest::dir_ = nullptr;
server_process* WebTest::server_ = nullptr;

TEST_F(WebTest, IndexIsHtmlThatBrowsersRevalidate) {
    auto res = get("/");
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(header(res, "Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(header(res, "Cache-Control"), "no-cache");
    EXPECT_NE(header(res, "ETag"), "");
    EXPECT_NE(res.body.find("<html"), std::string::npos);
    EXPECT_EQ(get("/index.html").body, res.body);

    auto head = client_.request("HEAD", "/");
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.body, "");
    EXPECT_EQ(header(head, "Content-Length"), std::to_string(res.body.size()));

    auto again = get("/", {{"If-None-Match", header(res, "ETag")}});
    EXPECT_EQ(again.status, 304);
    EXPECT_EQ(again.body, "");
}

TEST_F(WebTest, HashedAssetsAreImmutableAndAnswer304ToTheirETag) {
    const auto asset = asset_in_index();
    if (asset.empty()) {
        GTEST_SKIP() << "the embedded index.html references no /assets/ file (UI not built)";
    }
    auto res = get(asset);
    ASSERT_EQ(res.status, 200) << asset;
    EXPECT_EQ(header(res, "Cache-Control"), "public, max-age=31536000, immutable");
    EXPECT_FALSE(res.body.empty());
    const auto type = header(res, "Content-Type");
    if (asset.ends_with(".js")) {
        EXPECT_EQ(type, "text/javascript; charset=utf-8");
    } else if (asset.ends_with(".css")) {
        EXPECT_EQ(type, "text/css; charset=utf-8");
    }
    const auto etag = header(res, "ETag");
    ASSERT_NE(etag, "");
    auto cached = get(asset, {{"If-None-Match", "\"other\", " + etag}});
    EXPECT_EQ(cached.status, 304);
    EXPECT_EQ(cached.body, "");
    EXPECT_EQ(header(cached, "ETag"), etag);
    EXPECT_EQ(get(asset, {{"If-None-Match", "\"other\""}}).status, 200);
}

TEST_F(WebTest, ClientSideRoutesGetIndexWhenTheBrowserAsksForHtml) {
    const auto index = get("/").body;
    for (const char* target : {"/jobs", "/jobs/x", "/c/0190f0aa-1111-7222-8333-444455556666"}) {
        auto res = get(target, browser);
        EXPECT_EQ(res.status, 200) << target;
        EXPECT_EQ(header(res, "Content-Type"), "text/html; charset=utf-8") << target;
        EXPECT_EQ(res.body, index) << target;
    }
    expect_json_404("/jobs/x", {{"Accept", "application/json"}});
}

TEST_F(WebTest, ApiPathsAndUnknownAssetsStayJson404) {
    expect_json_404("/v1/nope");
    expect_json_404("/v1/nope", {});
    expect_json_404("/api/nope");
    expect_json_404("/metrics/nope");
    expect_json_404("/assets/missing.js");
    expect_json_404("/assets/missing.js", {});
    auto health = get("/healthz", browser);
    EXPECT_EQ(health.status, 200);
    EXPECT_EQ(header(health, "Content-Type"), "application/json");
    auto metrics = get("/metrics", browser);  // the route answers, never the UI
    EXPECT_EQ(metrics.status, 200);
    EXPECT_TRUE(header(metrics, "Content-Type").starts_with("text/plain; version=0.0.4"));
}

TEST_F(WebTest, PathTraversalIsOnly404) {
    for (const char* target :
         {"/assets/../index.html",
          "/assets/%2e%2e/index.html",
          "/assets/..%2findex.html",
          "/%2e%2e/%2e%2e/etc/passwd",
          "/../../etc/passwd",
          "/jobs/./x",
          "/assets/..%5c..%5cetc%5cpasswd"}) {
        expect_json_404(target);
    }
}

}  // namespace
}  // namespace conclave::test
