#include "events/hub.hpp"

#include <algorithm>

#include <boost/json.hpp>

#include "store/records_json.hpp"

namespace conclave::events {

namespace {

frame_ptr build_frame(const store::event& e, std::int64_t first_offset) {
    auto f = std::make_shared<frame>();
    f->topic = e.topic;
    f->offset = e.offset;
    f->first_offset = first_offset;
    f->type = e.type;
    f->time = e.time;
    auto body = store::to_json(e);
    if (first_offset != e.offset) {
        body["first_offset"] = first_offset;
    }
    const auto text = boost::json::serialize(body);  // {"topic":…}
    f->sse_body = "event: " + e.type + "\ndata: " + text + "\n\n";
    f->ws_body = R"({"op":"event",)" + text.substr(1);
    if (store::is_delta_type(e.type)) {
        f->delta = store::parse_delta(body.at("data"));  // parsed once, by to_json
    }
    return f;
}

}  // namespace

frame_ptr make_frame(const store::event& e) {
    return build_frame(e, e.offset);
}

frame_ptr merge_deltas(const frame& a, const frame& b) {
    if (!a.delta || !b.delta || a.topic != b.topic || a.type != b.type ||
        a.offset + 1 != b.first_offset || a.delta->part != b.delta->part ||
        a.delta->attempt != b.delta->attempt ||
        a.delta->at + store::utf16_length(a.delta->text) != b.delta->at) {
        return nullptr;
    }
    store::delta merged = *a.delta;
    merged.text += b.delta->text;
    const store::event e{
        .topic = b.topic,
        .offset = b.offset,
        .type = b.type,
        .data = store::delta_json(merged),
        .time = b.time,
    };
    return build_frame(e, a.first_offset);
}

hub::hub(hub_options options) : options_(options) {}

const frame_ptr& hub::slot::framed() {
    if (!frame) {
        frame = make_frame(event.value());  // a slot holds one or the other (value() checks)
        event.reset();
    }
    return frame;
}

void hub::publish(const std::vector<store::event>& events) {
    // Serialize outside the lock the events of topics followed now; deliver inside it, so that
    // subscribe() sees each event either in the ring or live, never neither. A topic followed
    // between the two steps has its events framed under the lock.
    std::vector<frame_ptr> frames(events.size());
    {
        std::vector<bool> followed(events.size());
        {
            std::lock_guard lock(mutex_);
            for (std::size_t idx = 0; subscriber_count_ > 0 && idx < events.size(); ++idx) {
                auto it = topics_.find(events[idx].topic);
                followed[idx] = it != topics_.end() && !it->second.subscribers.empty();
            }
        }
        for (std::size_t idx = 0; idx < events.size(); ++idx) {
            if (followed[idx]) {
                frames[idx] = make_frame(events[idx]);
            }
        }
    }
    std::lock_guard lock(mutex_);
    for (std::size_t idx = 0; idx < events.size(); ++idx) {
        const auto& e = events[idx];
        auto [it, inserted] = topics_.try_emplace(e.topic);
        auto& state = it->second;
        if (inserted) {
            mark_idle(it->first, state);
        } else if (state.idle) {
            idle_.splice(idle_.end(), idle_, state.idle_pos);  // most recently active
        }
        if (!state.ring.empty() && state.ring.back().offset + 1 != e.offset) {
            state.ring.clear();  // not consecutive (the hub missed events): start over
        }
        slot added{e.offset, std::move(frames[idx]), std::nullopt};
        if (!added.frame) {
            added.event = e;
        }
        if (!state.subscribers.empty()) {
            const auto& f = added.framed();  // built here if followed since the first step
            for (const auto& weak : state.subscribers) {
                if (auto sub = weak.lock()) {
                    sub->deliver(f);
                }
            }
        }
        state.ring.push_back(std::move(added));
        if (state.ring.size() > options_.ring_events) {
            state.ring.pop_front();
        }
    }
    while (idle_.size() > options_.idle_topics) {
        topics_.erase(idle_.front());
        idle_.pop_front();
    }
}

hub::joined hub::subscribe(
    const std::string& topic, std::int64_t after, const std::shared_ptr<subscriber>& sub
) {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = topics_.try_emplace(topic);
    auto& state = it->second;
    mark_busy(state);
    state.subscribers.push_back(sub);
    ++subscriber_count_;
    joined out;
    auto& ring = state.ring;
    out.covered = !ring.empty() && ring.front().offset <= after + 1;
    for (auto& entry : ring) {
        if (entry.offset > after) {
            out.backlog.push_back(entry.framed());
        }
    }
    return out;
}

void hub::unsubscribe(const std::string& topic, const subscriber* sub) {
    std::lock_guard lock(mutex_);
    auto it = topics_.find(topic);
    if (it == topics_.end()) {
        return;
    }
    auto& subs = it->second.subscribers;
    const auto before = subs.size();
    std::erase_if(subs, [sub](const std::weak_ptr<subscriber>& weak) {
        auto locked = weak.lock();
        return !locked || locked.get() == sub;
    });
    subscriber_count_ -= std::min(subscriber_count_, before - subs.size());
    if (subs.empty()) {
        mark_idle(it->first, it->second);
    }
}

std::size_t hub::subscriber_count() const {
    std::lock_guard lock(mutex_);
    return subscriber_count_;
}

void hub::mark_idle(const std::string& topic, topic_state& state) {
    if (!state.idle && state.subscribers.empty()) {
        state.idle_pos = idle_.insert(idle_.end(), topic);
        state.idle = true;
    }
}

void hub::mark_busy(topic_state& state) {
    if (state.idle) {
        idle_.erase(state.idle_pos);
        state.idle = false;
    }
}

std::optional<std::int64_t> hub::followed_offset(const std::string& topic) const {
    std::lock_guard lock(mutex_);
    auto it = topics_.find(topic);
    if (it == topics_.end() || it->second.subscribers.empty()) {
        return std::nullopt;
    }
    const auto& ring = it->second.ring;
    return ring.empty() ? 0 : ring.back().offset;
}

std::vector<std::pair<std::string, std::int64_t>> hub::followed() const {
    std::lock_guard lock(mutex_);
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (const auto& [topic, state] : topics_) {
        if (!state.subscribers.empty()) {
            out.emplace_back(topic, state.ring.empty() ? 0 : state.ring.back().offset);
        }
    }
    return out;
}

}  // namespace conclave::events
