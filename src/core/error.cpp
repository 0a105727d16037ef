#include "core/error.hpp"

namespace conclave {

const char* to_string(errc code) noexcept {
    switch (code) {
        case errc::bad_request:
            return "bad_request";
        case errc::not_found:
            return "not_found";
        case errc::unknown_job_type:
            return "unknown_job_type";
        case errc::invalid_transition:
            return "invalid_transition";
        case errc::lease_lost:
            return "lease_lost";
        case errc::idempotency_conflict:
            return "idempotency_conflict";
        case errc::payload_too_large:
            return "payload_too_large";
        case errc::header_too_large:
            return "header_too_large";
        case errc::method_not_allowed:
            return "method_not_allowed";
        case errc::unavailable:
            return "unavailable";
        case errc::internal:
            return "internal";
        case errc::unauthorized:
            return "unauthorized";
        case errc::conversation_busy:
            return "conversation_busy";
        case errc::forbidden:
            return "forbidden";
        case errc::rate_limited:
            return "rate_limited";
    }
    return "internal";
}

void throw_exception_from_error(const error& e, const boost::source_location&) {
    throw rejected(e);
}

}  // namespace conclave
