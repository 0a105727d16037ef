// store/job_rules.hpp: the backend-neutral rules of a job's life, shared by every store backend
// so that they answer alike: the lease check (fencing), the states a user's move starts from,
// the job a submission creates, which queued jobs a claim takes within its limits, and the data
// of each job event. Pure functions (no I/O), safe from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "store/records.hpp"

namespace conclave::store {

// "job ID does not exist"
error job_not_found(const std::string& id);

// The lease check every worker write goes through (fencing). `found` is job `id` as stored
// (nullopt: no such job). Returns it when `token` holds its current lease.
// Errors: not_found, lease_lost (token stale or job not active), invalid_transition (cancelled).
result<job> check_lease(std::optional<job> found, const std::string& id, const std::string& token);

// A user's move (`moved`: "cancelled", "retried") of job `id`, allowed only from states `a` or
// `b`. Returns the job. Errors: not_found, invalid_transition.
result<job> check_move(
    std::optional<job> found, const std::string& id, job_state a, job_state b, const char* moved
);

// The queued job a submission creates: a new UUIDv7 id, no seq yet (the backend assigns it).
job job_from_spec(const new_job& spec, unix_ms now);

// The idempotency outcome of a keyed submission whose key is already taken by `existing_id`
// with `existing_hash`: nothing when the request is the same, else idempotency_conflict.
std::optional<error> idempotency_mismatch(
    const new_job& spec, const std::string& existing_id, const std::string& existing_hash
);

// What a claim may still take: free active slots per type and per queue (a type or queue not
// listed has no limit).
struct claim_budget {
    std::map<std::string, std::int64_t> per_type;
    std::map<std::string, std::int64_t> per_queue;

    // Starts from the request's limits minus the active jobs counted by `active_of_type` and
    // `active_in_queue` (absent: none active).
    static claim_budget from(
        const claim_request& request,
        const std::map<std::string, std::int64_t>& active_of_type,
        const std::map<std::string, std::int64_t>& active_in_queue
    );

    // How many queued jobs of `type` to read as candidates (0: none): the claim's max within
    // the type's budget, plus slack when queue limits may hide some of them.
    std::int64_t fetch_for(const std::string& type, int max) const;
};

// The claim order: highest priority, then earliest run_at, then oldest.
bool claims_before(const job& a, const job& b);

// Picks from `candidates` (queued and due, any order) at most `max` jobs in claim order within
// `budget`, consuming it. Returns the picked jobs, unchanged.
std::vector<job> pick_claims(std::vector<job> candidates, int max, claim_budget& budget);

// Job `j` as the claim by `request` leaves it: active, attempt counted, leased to the request's
// owner with `token` until now + lease_ms.
void start_attempt(job& j, const claim_request& request, std::string token);

// The JSON text of each job event's data.
std::string queued_data(const job& j, unix_ms now);  // job.queued {type, queue[, run_at]}
std::string requeued_data();                         // job.queued {reason: "retry"}
std::string started_data(const job& j);              // job.started {attempt}
std::string progress_data(const job& j, const std::string& progress);  // job.progress
std::string succeeded_data(const job& j);                   // job.succeeded {attempt, result}
std::string retrying_data(const job& j, unix_ms run_at);    // job.retrying {attempt, error, run_at}
std::string failed_data(const job& j);                      // job.failed {attempt, error}
std::string cancelled_data(const job& j, bool was_active);  // job.cancelled {attempt, was_active}

// The error (JSON text {code, message}) an attempt ended by the store gets.
std::string error_text(const char* code, const std::string& message);
// A lease expiry's: lease_expired when the lease ran out before `now`, else timeout.
std::string expiry_error(const job& j, unix_ms now);
// release_owner's.
std::string restart_error();

}  // namespace conclave::store
