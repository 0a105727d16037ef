#include "http/observability.hpp"

#include "core/ids.hpp"
#include "core/logging.hpp"
#include "core/metrics.hpp"

namespace conclave::http {
namespace {

constexpr std::size_t max_request_id = 64;

bool valid_request_id(std::string_view id) {
    if (id.empty() || id.size() > max_request_id) {
        return false;
    }
    for (const char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

metrics::gauge& open_connections() {
    static auto& g = metrics::global().gauge(
        "conclave_http_connections_open", {}, "HTTP connections open now (streams included)"
    );
    return g;
}

metrics::counter& accepted_connections() {
    static auto& c = metrics::global().counter(
        "conclave_http_connections_accepted_total", {}, "HTTP connections accepted"
    );
    return c;
}

}  // namespace

std::string assign_request_id(request& req) {
    const auto given = req[request_id_header];
    std::string id = valid_request_id(given) ? std::string(given) : random_token();
    req.set(request_id_header, id);
    return id;
}

std::string_view request_id(const request& req) {
    const auto id = req[request_id_header];
    return std::string_view(id.data(), id.size());
}

void record_request(
    const request& req,
    std::string_view route,
    unsigned status,
    std::chrono::steady_clock::time_point started
) {
    const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
    const std::string method(req.method_string());
    const std::string route_name(route);
    const std::string status_text = std::to_string(status);
    auto& registry = metrics::global();
    registry
        .counter(
            "conclave_http_requests_total",
            {{"method", method}, {"route", route_name}, {"status", status_text}},
            "HTTP requests answered, by method, route pattern and status"
        )
        .inc();
    registry
        .histogram(
            "conclave_http_request_duration_seconds",
            metrics::latency_buckets(),
            {{"method", method}, {"route", route_name}},
            "Time from a request read to its response written (to the hand-over, for streams)"
        )
        .observe(took.count());
    const auto target = req.target();
    const auto path = target.substr(0, target.find('?'));
    log_with(
        *logger("http"),
        spdlog::level::info,
        {{"method", method},
         {"route", route_name},
         {"path", std::string_view(path.data(), path.size())},
         {"status", status},
         {"duration_ms", took.count() * 1000},
         {"request_id", request_id(req)}},
        "access"
    );
}

connection_scope::connection_scope() {
    accepted_connections().inc();
    open_connections().inc();
}

connection_scope::~connection_scope() {
    open_connections().dec();
}

void count_refused(std::string_view reason) {
    metrics::global()
        .counter(
            "conclave_http_refused_total",
            {{"reason", std::string(reason)}},
            "Requests and connections refused by a limit or access rule, by reason"
        )
        .inc();
}

}  // namespace conclave::http
