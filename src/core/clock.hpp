// core/clock.hpp: wall-clock time as Unix milliseconds, behind an interface so tests can move it.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace conclave {

using unix_ms = std::int64_t;

class clock {
public:
    virtual ~clock() = default;
    virtual unix_ms now() const = 0;
};

// The real clock (std::chrono::system_clock).
class system_clock final : public clock {
public:
    unix_ms now() const override;
};

// A clock that only moves when told to. Thread-safe.
class manual_clock final : public clock {
public:
    explicit manual_clock(unix_ms start) : now_(start) {}
    unix_ms now() const override { return now_.load(); }
    void advance(unix_ms delta) { now_ += delta; }
    void set(unix_ms value) { now_ = value; }

private:
    std::atomic<unix_ms> now_;
};

// RFC 3339 in UTC with milliseconds, e.g. "2026-11-21T01:08:42.123Z".
std::string format_time(unix_ms t);

}  // namespace conclave
