// core/error.hpp: expected failures as values.
//
// Expected outcomes that depend on input (not found, conflict, bad field) are returned as
// result<T> holding a conclave::error: a code from errc plus a human message. The HTTP layer maps
// each errc to one status and one wire code (http/errors.cpp). Infrastructure failures throw;
// broken invariants are CONCLAVE_ASSERT.
#pragma once

#include <cassert>
#include <stdexcept>
#include <string>
#include <utility>

#include <boost/system/result.hpp>

#define CONCLAVE_ASSERT(cond) assert(cond)

namespace conclave {

enum class errc {
    bad_request = 1,       // malformed JSON, wrong field type, value out of range
    not_found,             // no such job / topic
    unknown_job_type,      // type not registered (422)
    invalid_transition,    // state machine refuses the move (409)
    lease_lost,            // stale lease token (409)
    idempotency_conflict,  // key reused with a different request (409)
    payload_too_large,     // body over the limit (413)
    header_too_large,      // headers over the limit (431)
    method_not_allowed,    // path exists, method does not (405)
    unavailable,           // not ready, retry later (503)
    internal,              // a bug or an infrastructure failure, reported without internals (500)
    unauthorized,          // missing or refused credentials (401)
    conversation_busy,     // a council is already running in the conversation (409)
    forbidden,             // known caller, not allowed (403)
    rate_limited,          // over a request-rate or connection limit (429)
};

// The wire name of a code, e.g. "invalid_transition".
const char* to_string(errc code) noexcept;

struct error {
    errc code = errc::internal;
    std::string message;
};

template <class T>
using result = boost::system::result<T, error>;

// Shorthand for `return fail(errc::not_found, "job " + id + " does not exist");`
inline error fail(errc code, std::string message) {
    return error{code, std::move(message)};
}

// Thrown inside a store transaction to undo everything the operation wrote and report `err`
// as an expected outcome (the store turns it back into a result).
class rejected : public std::runtime_error {
public:
    explicit rejected(error err) : std::runtime_error(err.message), err_(std::move(err)) {}
    const error& err() const noexcept { return err_; }

private:
    error err_;
};

// Called by boost::system::result<T, error>::value() on an error.
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

}  // namespace conclave
