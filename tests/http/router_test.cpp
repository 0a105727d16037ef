#include "http/router.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include "http/json_body.hpp"
#include "support/run_coro.hpp"

namespace conclave::http {
namespace {

namespace json = boost::json;

response call(const router& r, bhttp::verb method, const std::string& target) {
    response out;
    test::run_coro([&](auto&) -> net::awaitable<void> {
        request req{method, target, 11};
        auto reply = co_await r.handle(req);
        out = std::move(reply.res);
    });
    return out;
}

std::string error_code(const response& res) {
    return std::string(json::parse(res.body()).at("error").at("code").as_string());
}

router sample_router() {
    router r;
    r.add(bhttp::verb::get, "/v1/jobs/{id}", [](request_context& ctx) -> net::awaitable<response> {
        co_return json_response(
            bhttp::status::ok,
            json::object{{"id", ctx.params[0]}, {"q", ctx.query("q").value_or("-")}}
        );
    });
    r.add(bhttp::verb::post, "/v1/jobs:batch", [](request_context&) -> net::awaitable<response> {
        co_return json_response(bhttp::status::created, json::object{{"batch", true}});
    });
    r.add(bhttp::verb::get, "/boom", [](request_context&) -> net::awaitable<response> {
        throw std::runtime_error("secret internals");
        co_return response{};
    });
    return r;
}

TEST(RouterTest, CapturesDecodedSegmentsAndQuery) {
    auto res = call(sample_router(), bhttp::verb::get, "/v1/jobs/a%20b?q=x%26y");
    EXPECT_EQ(res.result(), bhttp::status::ok);
    auto body = json::parse(res.body());
    EXPECT_EQ(body.at("id").as_string(), "a b");
    EXPECT_EQ(body.at("q").as_string(), "x&y");
}

TEST(RouterTest, LiteralSegmentWithColonMatches) {
    auto res = call(sample_router(), bhttp::verb::post, "/v1/jobs:batch");
    EXPECT_EQ(res.result(), bhttp::status::created);
}

TEST(RouterTest, UnknownPathIs404) {
    auto res = call(sample_router(), bhttp::verb::get, "/v2/nothing");
    EXPECT_EQ(res.result(), bhttp::status::not_found);
    EXPECT_EQ(error_code(res), "not_found");
}

TEST(RouterTest, WrongMethodIs405) {
    auto res = call(sample_router(), bhttp::verb::delete_, "/v1/jobs/x");
    EXPECT_EQ(res.result(), bhttp::status::method_not_allowed);
    EXPECT_EQ(error_code(res), "method_not_allowed");
}

TEST(RouterTest, HandlerExceptionIs500WithoutInternals) {
    auto res = call(sample_router(), bhttp::verb::get, "/boom");
    EXPECT_EQ(res.result(), bhttp::status::internal_server_error);
    EXPECT_EQ(res.body().find("secret"), std::string::npos);
}

TEST(RouterTest, FallbackAnswersOnlyPathsNoRouteMatches) {
    auto r = sample_router();
    r.set_fallback([](request_context& ctx) -> net::awaitable<response> {
        co_return json_response(
            bhttp::status::ok, json::object{{"fallback", std::string(ctx.url.path())}}
        );
    });
    auto unknown = call(r, bhttp::verb::get, "/v2/nothing");
    EXPECT_EQ(json::parse(unknown.body()).at("fallback").as_string(), "/v2/nothing");
    EXPECT_EQ(call(r, bhttp::verb::get, "/").result(), bhttp::status::ok);
    EXPECT_EQ(call(r, bhttp::verb::get, "/v1/jobs/x").body().find("fallback"), std::string::npos);
    EXPECT_EQ(
        call(r, bhttp::verb::delete_, "/v1/jobs/x").result(), bhttp::status::method_not_allowed
    );
}

TEST(RouterTest, MalformedTargetIs400) {
    auto res = call(sample_router(), bhttp::verb::get, "no-slash");
    EXPECT_EQ(res.result(), bhttp::status::bad_request);
}

// Decoded ids, names and filters go to the stores as text: PostgreSQL refused invalid UTF-8
// (failing every write of the group commit it was in) and cut a parameter at a NUL.
TEST(RouterTest, TargetsDecodingToNonTextAre400) {
    for (const char* target :
         {"/v1/jobs/%FF",
          "/v1/jobs/a%00b",
          "/v1/jobs/%C3%28",
          "/v1/jobs/x?q=%FF",
          "/v1/jobs/x?q=a%00",
          "/v1/jobs/x?%FE=1",
          "/v1/jobs/%ED%A0%80"}) {
        auto res = call(sample_router(), bhttp::verb::get, target);
        EXPECT_EQ(res.result(), bhttp::status::bad_request) << target;
        EXPECT_EQ(error_code(res), "bad_request") << target;
    }
    auto res = call(sample_router(), bhttp::verb::get, "/v1/jobs/%C3%A9t%C3%A9?q=%E2%82%AC");
    EXPECT_EQ(res.result(), bhttp::status::ok) << "UTF-8 text decodes and passes";
    EXPECT_EQ(json::parse(res.body()).at("id").as_string(), "\xC3\xA9t\xC3\xA9");
}

TEST(JsonBodyTest, ParsesAndRefusesClearly) {
    EXPECT_TRUE(parse_json_body(R"({"a":[1,2]})").has_value());
    EXPECT_EQ(parse_json_body("").error().code, errc::bad_request);
    EXPECT_EQ(parse_json_body("{").error().code, errc::bad_request);
    EXPECT_EQ(parse_json_body("\xff\xfe").error().code, errc::bad_request) << "invalid UTF-8";
    const std::string deep(200, '[');
    auto too_deep = parse_json_body(deep + std::string(200, ']'));
    EXPECT_EQ(too_deep.error().code, errc::bad_request);
    EXPECT_NE(too_deep.error().message.find("nested"), std::string::npos);
}

TEST(JsonBodyTest, NonNegativeIntegers) {
    EXPECT_EQ(*parse_non_negative("42", "after"), 42);
    EXPECT_FALSE(parse_non_negative("-1", "after").has_value());
    EXPECT_FALSE(parse_non_negative("4x", "after").has_value());
    EXPECT_FALSE(parse_non_negative("", "after").has_value());
    EXPECT_FALSE(parse_non_negative("99999999999999999999", "after").has_value());
}

TEST(ErrorsTest, EveryCodeHasItsStatus) {
    EXPECT_EQ(status_of(errc::bad_request), bhttp::status::bad_request);
    EXPECT_EQ(status_of(errc::unknown_job_type), bhttp::status::unprocessable_entity);
    EXPECT_EQ(status_of(errc::invalid_transition), bhttp::status::conflict);
    EXPECT_EQ(status_of(errc::lease_lost), bhttp::status::conflict);
    EXPECT_EQ(status_of(errc::idempotency_conflict), bhttp::status::conflict);
    EXPECT_EQ(status_of(errc::payload_too_large), bhttp::status::payload_too_large);
    EXPECT_EQ(status_of(errc::unavailable), bhttp::status::service_unavailable);
    auto res = error_response(fail(errc::lease_lost, "stale"));
    auto body = json::parse(res.body());
    EXPECT_EQ(body.at("error").at("code").as_string(), "lease_lost");
    EXPECT_EQ(body.at("error").at("message").as_string(), "stale");
}

}  // namespace
}  // namespace conclave::http
