// The one mapping from conclave::errc to HTTP statuses and error bodies.
#include <boost/json.hpp>

#include "http/message.hpp"

namespace conclave::http {

bhttp::status status_of(errc code) noexcept {
    switch (code) {
        case errc::bad_request:
            return bhttp::status::bad_request;
        case errc::not_found:
            return bhttp::status::not_found;
        case errc::unknown_job_type:
            return bhttp::status::unprocessable_entity;
        case errc::invalid_transition:
        case errc::lease_lost:
        case errc::idempotency_conflict:
        case errc::conversation_busy:
            return bhttp::status::conflict;
        case errc::payload_too_large:
            return bhttp::status::payload_too_large;
        case errc::header_too_large:
            return bhttp::status::request_header_fields_too_large;
        case errc::method_not_allowed:
            return bhttp::status::method_not_allowed;
        case errc::unavailable:
            return bhttp::status::service_unavailable;
        case errc::internal:
            return bhttp::status::internal_server_error;
        case errc::unauthorized:
            return bhttp::status::unauthorized;
        case errc::forbidden:
            return bhttp::status::forbidden;
        case errc::rate_limited:
            return bhttp::status::too_many_requests;
    }
    return bhttp::status::internal_server_error;
}

response json_response(bhttp::status status, const boost::json::value& body) {
    response res{status, 11};
    res.set(bhttp::field::content_type, "application/json");
    res.body() = boost::json::serialize(body);
    res.prepare_payload();
    return res;
}

response error_response(const error& e) {
    boost::json::object inner{{"code", to_string(e.code)}, {"message", e.message}};
    return json_response(status_of(e.code), boost::json::object{{"error", std::move(inner)}});
}

}  // namespace conclave::http
