#include "support/producer.hpp"

#include <fstream>
#include <stdexcept>

#include <boost/json.hpp>

namespace conclave::test {
namespace json = boost::json;

namespace {

json::value expect(const http::client_response& res, int status, const std::string& what) {
    if (res.status != status) {
        throw std::runtime_error(what + ": HTTP " + std::to_string(res.status) + " " + res.body);
    }
    return json::parse(res.body);
}

}  // namespace

std::string write_producer_config(const temp_dir& dir, const std::string& extra) {
    const auto path = dir.file("producer.toml");
    std::ofstream(path) << "[types.produce]\nexecutor = \"remote\"\n" << extra;
    return path;
}

producer::producer(const std::string& url, const std::string& topic) : client_(url) {
    auto job = expect(
        client_.post("/v1/jobs", R"({"type":"produce","topics":[")" + topic + R"("]})"),
        201,
        "submit"
    );
    id_ = std::string(job.at("id").as_string());
    const auto claim = R"({"worker":"producer-)" + id_ +
                       R"(","types":["produce"],"max":1,"wait_s":5,"lease_s":3600})";
    // Producers made one after another each find their own job first (oldest first), but
    // another may be queued too: take ours, whatever order the claims come back in.
    for (int attempt = 0; attempt < 10 && token_.empty(); ++attempt) {
        auto claimed =
            expect(client_.post("/v1/workers/claim", claim), 200, "claim").at("jobs").as_array();
        for (const auto& c : claimed) {
            if (c.at("id").as_string() == id_) {
                token_ = std::string(c.at("lease_token").as_string());
            }
        }
    }
    if (token_.empty()) {
        throw std::runtime_error("could not claim producer job " + id_);
    }
}

void producer::post(int n, std::size_t pad_bytes, int batch) {
    const std::string pad(pad_bytes, 'x');
    for (int sent = 0; sent < n;) {
        json::array events;
        for (int idx = 0; idx < batch && sent < n; ++idx, ++sent) {
            events.push_back(json::object{
                {"type", "tick"}, {"data", json::object{{"n", posted_++}, {"pad", pad}}}});
        }
        const auto body =
            json::serialize(json::object{{"lease_token", token_}, {"events", std::move(events)}});
        expect(client_.post("/v1/jobs/" + id_ + "/events", body), 201, "post events");
    }
}

void producer::complete() {
    expect(
        client_.post(
            "/v1/jobs/" + id_ + "/complete", R"({"lease_token":")" + token_ + R"(","result":1})"
        ),
        200,
        "complete"
    );
}

}  // namespace conclave::test
