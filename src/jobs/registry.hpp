// jobs/registry.hpp: the job types this server knows and how each is executed.
//
// A type is either served in-process by a C++ handler (noop, sleep, type, later council…) or by
// remote workers over HTTP. A submission of a type not registered here is refused (422). Built once
// at start-up; read-only (and so thread-safe) afterwards.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/fwd.hpp>

#include "core/asio.hpp"

namespace conclave::jobs {

class job_context;

// A handler returns the job's result as JSON text, or throws (handler_error for a failure it
// can classify; anything else counts as retryable).
using handler = std::function<net::awaitable<std::string>(job_context&)>;

// Checks a submission's payload; returns an error message for a bad one.
using payload_validator =
    std::function<std::optional<std::string>(const boost::json::value& payload)>;

enum class executor { in_process, remote };

struct type_config {
    std::string name;
    executor exec = executor::remote;
    handler run;                 // in-process types only
    payload_validator validate;  // optional
    int max_attempts = 3;
    int timeout_s = 0;  // 0: none
    double backoff_base_s = 1;
    double backoff_cap_s = 300;
    int concurrency = 0;  // max active jobs of this type, 0: no limit
};

class registry {
public:
    // Adds or replaces a type.
    void add(type_config type);
    const type_config* find(const std::string& name) const;
    std::vector<std::string> names(executor which) const;
    // (type, concurrency) for the types of `which` that have a limit.
    std::vector<std::pair<std::string, int>> limits(executor which) const;

    // Per-queue concurrency limits (max active jobs per queue).
    void set_queue_limit(const std::string& queue, int concurrency);
    const std::vector<std::pair<std::string, int>>& queue_limits() const { return queue_limits_; }

private:
    std::map<std::string, type_config> types_;
    std::vector<std::pair<std::string, int>> queue_limits_;
};

// A registry holding the built-in in-process types: `noop` (returns its payload) and
// `sleep {ms}` (waits, cancellably).
registry builtin_registry();

}  // namespace conclave::jobs
