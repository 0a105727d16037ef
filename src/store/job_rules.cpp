#include "store/job_rules.hpp"

#include <algorithm>
#include <utility>

#include <boost/json.hpp>

#include "core/ids.hpp"
#include "store/records_json.hpp"

namespace conclave::store {
namespace json = boost::json;
namespace {

// Extra candidates per type when queue limits apply, so that jobs of a full queue do not hide
// the others.
constexpr std::int64_t queue_limit_slack = 64;

}  // namespace

error job_not_found(const std::string& id) {
    return fail(errc::not_found, "job " + id + " does not exist");
}

result<job> check_lease(std::optional<job> found, const std::string& id, const std::string& token) {
    if (!found) {
        return job_not_found(id);
    }
    if (token.empty() || found->lease_token != token) {
        return fail(errc::lease_lost, "lease token for job " + id + " is not current");
    }
    if (found->state == job_state::cancelled) {
        return fail(errc::invalid_transition, "job " + id + " was cancelled");
    }
    if (found->state != job_state::active) {
        return fail(errc::lease_lost, "job " + id + " is not active");
    }
    return std::move(*found);
}

result<job> check_move(
    std::optional<job> found, const std::string& id, job_state a, job_state b, const char* moved
) {
    if (!found) {
        return job_not_found(id);
    }
    if (found->state != a && found->state != b) {
        return fail(
            errc::invalid_transition,
            "job " + id + " is " + to_string(found->state) + " and cannot be " + moved
        );
    }
    return std::move(*found);
}

job job_from_spec(const new_job& spec, unix_ms now) {
    job j;
    j.id = new_uuid_v7(now);
    j.type = spec.type;
    j.queue = spec.queue;
    j.priority = spec.priority;
    j.payload = spec.payload;
    j.max_attempts = spec.max_attempts;
    j.run_at = spec.run_at;
    j.timeout_s = spec.timeout_s;
    j.backoff_base_ms = spec.backoff_base_ms;
    j.backoff_cap_ms = spec.backoff_cap_ms;
    j.idempotency_key = spec.idempotency_key;
    j.topics = spec.topics;
    j.created_at = now;
    return j;
}

std::optional<error> idempotency_mismatch(
    const new_job& spec, const std::string& existing_id, const std::string& existing_hash
) {
    if (existing_hash == spec.request_hash) {
        return std::nullopt;
    }
    return fail(
        errc::idempotency_conflict,
        "idempotency key '" + spec.idempotency_key + "' was used by job " + existing_id +
            " with a different request"
    );
}

claim_budget claim_budget::from(
    const claim_request& request,
    const std::map<std::string, std::int64_t>& active_of_type,
    const std::map<std::string, std::int64_t>& active_in_queue
) {
    auto active = [](const std::map<std::string, std::int64_t>& counts, const std::string& key) {
        auto it = counts.find(key);
        return it == counts.end() ? std::int64_t{0} : it->second;
    };
    claim_budget budget;
    for (const auto& [type, limit] : request.type_limits) {
        budget.per_type[type] = limit - active(active_of_type, type);
    }
    for (const auto& [queue, limit] : request.queue_limits) {
        budget.per_queue[queue] = limit - active(active_in_queue, queue);
    }
    return budget;
}

std::int64_t claim_budget::fetch_for(const std::string& type, int max) const {
    std::int64_t fetch = max;
    if (auto it = per_type.find(type); it != per_type.end()) {
        fetch = std::min<std::int64_t>(fetch, it->second);
    }
    if (fetch <= 0) {
        return 0;
    }
    return fetch + (per_queue.empty() ? 0 : queue_limit_slack);
}

bool claims_before(const job& a, const job& b) {
    if (a.priority != b.priority) {
        return a.priority > b.priority;
    }
    if (a.run_at != b.run_at) {
        return a.run_at < b.run_at;
    }
    return a.seq < b.seq;
}

std::vector<job> pick_claims(std::vector<job> candidates, int max, claim_budget& budget) {
    std::sort(candidates.begin(), candidates.end(), claims_before);
    std::vector<job> picked;
    for (auto& j : candidates) {
        if (std::cmp_greater_equal(picked.size(), max)) {
            break;
        }
        auto type_it = budget.per_type.find(j.type);
        if (type_it != budget.per_type.end() && type_it->second <= 0) {
            continue;
        }
        auto queue_it = budget.per_queue.find(j.queue);
        if (queue_it != budget.per_queue.end() && queue_it->second <= 0) {
            continue;
        }
        if (type_it != budget.per_type.end()) {
            --type_it->second;
        }
        if (queue_it != budget.per_queue.end()) {
            --queue_it->second;
        }
        picked.push_back(std::move(j));
    }
    return picked;
}

void start_attempt(job& j, const claim_request& request, std::string token) {
    j.state = job_state::active;
    j.attempts += 1;
    j.lease_owner = request.owner;
    j.lease_token = std::move(token);
    j.lease_expires_at = request.now + request.lease_ms;
    j.started_at = request.now;
    j.lease_ms = request.lease_ms;
    j.cancel_requested = false;
}

std::string queued_data(const job& j, unix_ms now) {
    json::object data{{"type", j.type}, {"queue", j.queue}};
    if (j.run_at > now) {
        data["run_at"] = format_time(j.run_at);
    }
    return json::serialize(data);
}

std::string requeued_data() {
    return json::serialize(json::object{{"reason", "retry"}});
}

std::string started_data(const job& j) {
    return json::serialize(json::object{{"attempt", j.attempts}});
}

std::string progress_data(const job& j, const std::string& progress) {
    return json::serialize(json::object{
        {"attempt", j.attempts}, {"progress", parse_stored(progress)}});
}

std::string succeeded_data(const job& j) {
    return json::serialize(json::object{{"attempt", j.attempts}, {"result", parse_stored(j.result)}}
    );
}

std::string retrying_data(const job& j, unix_ms run_at) {
    return json::serialize(json::object{
        {"attempt", j.attempts}, {"error", parse_stored(j.error)}, {"run_at", format_time(run_at)}}
    );
}

std::string failed_data(const job& j) {
    return json::serialize(json::object{{"attempt", j.attempts}, {"error", parse_stored(j.error)}});
}

std::string cancelled_data(const job& j, bool was_active) {
    return json::serialize(json::object{{"attempt", j.attempts}, {"was_active", was_active}});
}

std::string error_text(const char* code, const std::string& message) {
    return json::serialize(json::object{{"code", code}, {"message", message}});
}

std::string expiry_error(const job& j, unix_ms now) {
    if (j.lease_expires_at < now) {
        return error_text(
            "lease_expired",
            "the worker stopped renewing its lease (lease owner " + j.lease_owner + ")"
        );
    }
    return error_text(
        "timeout", "attempt ran past its timeout of " + std::to_string(j.timeout_s) + " s"
    );
}

std::string restart_error() {
    return error_text("node_restarted", "the node running this attempt restarted");
}

}  // namespace conclave::store
