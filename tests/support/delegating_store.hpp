// A store that hands every call to another one: a test derives from it to change one call
// (make it fail, count it) and keeps the real store's behaviour for the rest.
#pragma once

#include "store/store.hpp"

namespace conclave::test {

class delegating_store : public conclave::store::store {
public:
    explicit delegating_store(conclave::store::store& inner) : inner_(inner) {}

    net::awaitable<result<std::vector<conclave::store::submitted>>> create_jobs(
        std::vector<conclave::store::new_job> specs, unix_ms now
    ) override {
        return inner_.create_jobs(std::move(specs), now);
    }
    net::awaitable<result<conclave::store::job>> find_job(std::string id) override {
        return inner_.find_job(std::move(id));
    }
    net::awaitable<conclave::store::job_page> list_jobs(conclave::store::job_filter filter
    ) override {
        return inner_.list_jobs(std::move(filter));
    }
    net::awaitable<conclave::store::job_counts> count_jobs() override {
        return inner_.count_jobs();
    }
    net::awaitable<std::vector<conclave::store::job_group_counts>> count_jobs_by_queue_and_type(
    ) override {
        return inner_.count_jobs_by_queue_and_type();
    }
    net::awaitable<std::vector<conclave::store::claimed_job>> claim_jobs(
        conclave::store::claim_request request
    ) override {
        return inner_.claim_jobs(std::move(request));
    }
    net::awaitable<result<conclave::store::lease_info>> heartbeat(
        std::string id, std::string token, unix_ms now, unix_ms lease_ms, std::string progress
    ) override {
        return inner_.heartbeat(
            std::move(id), std::move(token), now, lease_ms, std::move(progress)
        );
    }
    net::awaitable<void> renew_leases(
        std::string owner, std::vector<std::string> ids, unix_ms until
    ) override {
        return inner_.renew_leases(std::move(owner), std::move(ids), until);
    }
    net::awaitable<result<conclave::store::job>> complete_job(
        std::string id, std::string token, std::string result_text, unix_ms now
    ) override {
        return inner_.complete_job(std::move(id), std::move(token), std::move(result_text), now);
    }
    net::awaitable<result<conclave::store::job>> fail_job(
        std::string id,
        std::string token,
        std::string error,
        bool retryable,
        conclave::store::retry_policy policy,
        unix_ms now
    ) override {
        return inner_.fail_job(
            std::move(id), std::move(token), std::move(error), retryable, policy, now
        );
    }
    net::awaitable<result<conclave::store::job>> cancel_job(std::string id, unix_ms now) override {
        return inner_.cancel_job(std::move(id), now);
    }
    net::awaitable<result<conclave::store::job>> retry_job(std::string id, unix_ms now) override {
        return inner_.retry_job(std::move(id), now);
    }
    net::awaitable<std::vector<conclave::store::job>> expire_leases(
        unix_ms now, unix_ms timeout_grace_ms, conclave::store::retry_policy policy
    ) override {
        return inner_.expire_leases(now, timeout_grace_ms, policy);
    }
    net::awaitable<std::vector<conclave::store::job>> release_owner(
        std::string owner, unix_ms now, conclave::store::retry_policy policy
    ) override {
        return inner_.release_owner(std::move(owner), now, policy);
    }
    net::awaitable<result<std::vector<conclave::store::event>>> append_job_events(
        std::string id,
        std::string token,
        std::vector<conclave::store::event_spec> events,
        unix_ms now
    ) override {
        return inner_.append_job_events(std::move(id), std::move(token), std::move(events), now);
    }
    net::awaitable<std::vector<conclave::store::event>> append_events(
        std::string topic, std::vector<conclave::store::event_spec> events, unix_ms now
    ) override {
        return inner_.append_events(std::move(topic), std::move(events), now);
    }
    net::awaitable<result<conclave::store::step>> save_step(
        std::string id, std::string token, std::string key, std::string result_text, unix_ms now
    ) override {
        return inner_.save_step(
            std::move(id), std::move(token), std::move(key), std::move(result_text), now
        );
    }
    net::awaitable<result<std::vector<conclave::store::step>>> load_steps(std::string id) override {
        return inner_.load_steps(std::move(id));
    }
    net::awaitable<std::int64_t> last_offset(std::string topic) override {
        return inner_.last_offset(std::move(topic));
    }
    net::awaitable<result<std::vector<conclave::store::event>>> read_events(
        std::string topic, std::int64_t after, std::size_t limit
    ) override {
        return inner_.read_events(std::move(topic), after, limit);
    }
    net::awaitable<std::size_t> prune_events(
        std::string prefix, unix_ms older_than, std::int64_t keep, std::size_t limit
    ) override {
        return inner_.prune_events(std::move(prefix), older_than, keep, limit);
    }
    net::awaitable<conclave::store::conversation> create_conversation(
        std::string title, std::string council, unix_ms now
    ) override {
        return inner_.create_conversation(std::move(title), std::move(council), now);
    }
    net::awaitable<conclave::store::conversation_page> list_conversations(
        std::size_t limit, std::int64_t before_seq
    ) override {
        return inner_.list_conversations(limit, before_seq);
    }
    net::awaitable<result<conclave::store::conversation>> find_conversation(std::string id
    ) override {
        return inner_.find_conversation(std::move(id));
    }
    net::awaitable<result<std::vector<conclave::store::message>>> load_messages(std::string id
    ) override {
        return inner_.load_messages(std::move(id));
    }
    net::awaitable<result<void>> delete_conversation(std::string id, unix_ms now) override {
        return inner_.delete_conversation(std::move(id), now);
    }
    net::awaitable<result<conclave::store::turn>> start_turn(
        conclave::store::new_turn t, unix_ms now
    ) override {
        return inner_.start_turn(std::move(t), now);
    }
    net::awaitable<result<void>> set_conversation_title(
        std::string id, std::string title, unix_ms now
    ) override {
        return inner_.set_conversation_title(std::move(id), std::move(title), now);
    }
    void set_commit_listener(commit_listener listener) override {
        inner_.set_commit_listener(std::move(listener));
    }
    void set_cluster_listener(cluster_listener listener) override {
        inner_.set_cluster_listener(std::move(listener));
    }
    bool reachable() const override { return inner_.reachable(); }

private:
    conclave::store::store& inner_;
};

}  // namespace conclave::test
