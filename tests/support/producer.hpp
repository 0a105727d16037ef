// tests/support/producer.hpp: appends events to a topic the way a remote worker does — a job of
// the remote type `produce`, claimed and kept active, posting events that go to its own topic
// and to `topic`. For stream tests and benchmarks.
#pragma once

#include <cstddef>
#include <string>

#include "http/client.hpp"
#include "support/temp_dir.hpp"

namespace conclave::test {

// Writes a config declaring the remote type `produce`, followed by `extra` TOML; returns its path.
std::string write_producer_config(const temp_dir& dir, const std::string& extra = {});

class producer {
public:
    // Submits and claims a `produce` job whose events also go to `topic` (its offsets 1 and 2
    // are job.queued and job.started). Throws std::runtime_error if the server refuses.
    producer(const std::string& url, const std::string& topic);

    // Posts `n` events of type `tick` (data {n, pad}, pad of `pad_bytes`), `batch` per request.
    void post(int n, std::size_t pad_bytes = 20, int batch = 100);
    void complete();
    const std::string& id() const { return id_; }
    const std::string& token() const { return token_; }

private:
    http::client client_;
    std::string id_;
    std::string token_;
    int posted_ = 0;
};

}  // namespace conclave::test
