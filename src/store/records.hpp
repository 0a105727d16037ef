// store/records.hpp: the plain records the store reads and writes. No behaviour beyond naming.
//
// JSON documents (payload, result, error, progress, event data) are kept as serialized JSON text:
// the store never looks inside them, and the HTTP layer parses them once when it answers.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"

namespace conclave::store {

enum class job_state { queued, active, succeeded, failed, cancelled };

const char* to_string(job_state s) noexcept;
std::optional<job_state> parse_job_state(std::string_view s) noexcept;
bool is_terminal(job_state s) noexcept;

struct job {
    std::int64_t seq = 0;  // insertion order; the list cursor
    std::string id;
    std::string type;
    std::string queue = "default";
    job_state state = job_state::queued;
    int priority = 0;
    std::string payload = "null";
    std::string result;    // JSON text; empty until succeeded
    std::string error;     // JSON text of the last failure; empty when none
    std::string progress;  // JSON text; empty when none
    int attempts = 0;      // attempts started so far; the current attempt's number while active
    int max_attempts = 1;
    unix_ms run_at = 0;
    int timeout_s = 0;  // 0: no timeout
    unix_ms backoff_base_ms = 0;
    unix_ms backoff_cap_ms = 0;
    std::string lease_owner;  // empty when not leased
    std::string lease_token;
    unix_ms lease_expires_at = 0;
    unix_ms lease_ms = 0;  // lease length of the current claim; heartbeats extend by it
    bool cancel_requested = false;
    std::string idempotency_key;      // empty when none
    std::vector<std::string> topics;  // extra topics the job's events also go to
    unix_ms created_at = 0;
    unix_ms started_at = 0;   // 0: never started
    unix_ms finished_at = 0;  // 0: not finished
};

// A submission, validated by the jobs layer. `request_hash` identifies the request for
// idempotency: the same key with another hash is a conflict.
struct new_job {
    std::string type;
    std::string queue = "default";
    std::string payload = "null";
    int priority = 0;
    unix_ms run_at = 0;
    int max_attempts = 1;
    int timeout_s = 0;
    unix_ms backoff_base_ms = 1000;
    unix_ms backoff_cap_ms = 300'000;
    std::string idempotency_key;
    std::string request_hash;
    std::vector<std::string> topics;
};

struct submitted {
    store::job job;
    bool created = false;  // false: an existing job returned for a known idempotency key
};

struct job_filter {
    std::optional<job_state> state;
    std::string type;   // empty: any
    std::string queue;  // empty: any
    std::size_t limit = 50;
    std::int64_t before_seq = 0;  // 0: from the newest
};

struct job_page {
    std::vector<job> jobs;
    std::int64_t next_cursor = 0;  // 0: no more
};

struct job_counts {
    std::int64_t queued = 0, active = 0, succeeded = 0, failed = 0, cancelled = 0;

    // Adds `n` to the count of `state`.
    void add(job_state state, std::int64_t n) noexcept;
};

// The job counts of one (queue, type) pair.
struct job_group_counts {
    std::string queue;
    std::string type;
    job_counts counts;
};

struct step {
    std::string key;
    std::string result;  // JSON text
};

struct claimed_job {
    store::job job;  // state active, with its lease token and attempt number
    std::vector<step> steps;
};

struct claim_request {
    std::string owner;               // who holds the lease (a node or a remote worker)
    std::vector<std::string> types;  // which types the claimant runs
    std::vector<std::pair<std::string, int>> type_limits;   // max active jobs per type
    std::vector<std::pair<std::string, int>> queue_limits;  // max active jobs per queue
    int max = 1;
    unix_ms now = 0;
    unix_ms lease_ms = 30'000;
};

struct lease_info {
    unix_ms lease_expires_at = 0;
    bool cancel_requested = false;
};

struct event_spec {
    std::string type;
    std::string data = "{}";  // JSON text
};

struct event {
    std::string topic;
    std::int64_t offset = 0;
    std::string type;
    std::string data;  // JSON text
    unix_ms time = 0;
};

// Decides what happens to a job whose attempt failed: the time to run it again, or nullopt to
// fail it for good. Called inside the store's transaction; must be pure and fast.
using retry_policy =
    std::function<std::optional<unix_ms>(const job& failed_attempt, bool retryable, unix_ms now)>;

// The topic every event of job `id` goes to.
std::string job_topic(std::string_view id);
// Whether `topic` is in the jobs' namespace ("job:…"), reserved for their events.
bool is_job_topic(std::string_view topic);
// The id of the job whose topic `topic` is, or empty when it is not a job's topic.
std::string_view job_of_topic(std::string_view topic);

// A council conversation. `processing_state` is idle, active (a council is running: a second
// message is refused) or error (the last turn failed; a new message is allowed).
struct conversation {
    std::int64_t seq = 0;  // creation order; the list cursor
    std::string id;
    std::string title;
    unix_ms created_at = 0;
    std::string processing_state = "idle";
    std::string council;      // JSON text of the per-conversation settings, "{}" when none
    std::string last_job_id;  // the newest council job, empty before the first message
    std::int64_t message_count = 0;
};

struct message {
    std::string id;
    std::int64_t seq = 0;  // order within the conversation, from 1
    std::string role;      // user | assistant
    std::string content;   // the user's text, or the final answer
    std::string stages;    // JSON text {stage1, stage2, stage3}; empty for a user message
    std::string metadata;  // JSON text; empty for a user message
    std::string job_id;    // the council job that answers (user) or answered (assistant)
    unix_ms created_at = 0;
};

struct conversation_page {
    std::vector<conversation> conversations;
    std::int64_t next_cursor = 0;  // 0: no more
};

// What a turn submits: the user's message and the council job that answers it (its payload
// complete; the store adds the conversation's topic to the job's topics).
struct new_turn {
    std::string conversation_id;
    std::string content;
    new_job job;
};

struct turn {
    store::message message;
    store::job job;
};

// The topic of a conversation's events (every event of its council jobs goes there too).
std::string conversation_topic(std::string_view id);

}  // namespace conclave::store
