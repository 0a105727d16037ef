#include "app/cli_commands.hpp"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <unistd.h>

#include "app/config.hpp"
#include "http/client.hpp"
#include "http/sse_client.hpp"
#include "store/postgres/pg_store.hpp"
#include "store/sqlite/migrations.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/topic.hpp"

namespace conclave::app {
namespace json = boost::json;
namespace {

void pretty(std::ostream& out, const json::value& v, int indent = 0) {
    const std::string pad(static_cast<std::size_t>(indent) * 2, ' ');
    if (v.is_object() && !v.get_object().empty()) {
        out << "{\n";
        bool first = true;
        for (const auto& kv : v.get_object()) {
            out << (first ? "" : ",\n") << pad << "  " << json::serialize(json::string(kv.key()))
                << ": ";
            pretty(out, kv.value(), indent + 1);
            first = false;
        }
        out << "\n" << pad << "}";
    } else if (v.is_array() && !v.get_array().empty()) {
        out << "[\n";
        bool first = true;
        for (const auto& item : v.get_array()) {
            out << (first ? "" : ",\n") << pad << "  ";
            pretty(out, item, indent + 1);
            first = false;
        }
        out << "\n" << pad << "]";
    } else {
        out << json::serialize(v);
    }
}

std::string encode(const std::string& s) {
    return boost::urls::encode(s, boost::urls::unreserved_chars);
}

// Prints the server's error and returns 1, or returns 0 for a 2xx.
int check(const http::client_response& res) {
    if (res.status >= 200 && res.status < 300) {
        return 0;
    }
    boost::system::error_code ec;
    auto body = json::parse(res.body, ec);
    const auto* err = !ec && body.is_object() ? body.get_object().if_contains("error") : nullptr;
    if (err && err->is_object()) {
        std::cerr << "error (" << res.status << " " << json::value_to<std::string>(err->at("code"))
                  << "): " << json::value_to<std::string>(err->at("message")) << "\n";
    } else {
        std::cerr << "error: HTTP " << res.status << ": " << res.body << "\n";
    }
    return 1;
}

// Runs `fn` with a client, turning an unreachable server into a message and exit code 2.
template <class F>
int with_client(const std::string& server, F fn) {
    try {
        http::client c(server);
        return fn(c);
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 2;
    }
}

int print_job(const http::client_response& res) {
    if (int rc = check(res)) {
        return rc;
    }
    pretty(std::cout, json::parse(res.body));
    std::cout << "\n";
    return 0;
}

std::string brief(const json::value& data) {
    std::string text = json::serialize(data);
    constexpr std::size_t max_width = 100;
    if (text.size() > max_width) {
        text = text.substr(0, max_width - 3) + "...";
    }
    return text;
}

// Prints one streamed event: time, topic@offset, type and a short form of its data.
void print_event(const json::value& e, bool tty) {
    const auto type = json::value_to<std::string>(e.at("type"));
    const char* mark = "·";
    if (type == "job.succeeded") {
        mark = "✔";
    } else if (type == "job.failed" || type == "job.cancelled") {
        mark = "✘";
    }
    std::cout << "  " << (tty ? mark : "-") << " "
              << json::value_to<std::string>(e.at("time")).substr(11, 12) << "  "
              << json::value_to<std::string>(e.at("topic")) << "@" << e.at("offset").as_int64()
              << "  " << type << "  " << brief(e.at("data")) << std::endl;
}

// Streams the SSE route `path` from after offset `after`, printing every event once; when the
// connection drops (a restart, a network blip) it reconnects and resumes from the last id.
// For a job's topic it returns when the job ends: 0 if it succeeded, 1 otherwise. Other topics
// stream until interrupted.
int watch_events(const std::string& server, const std::string& path, std::int64_t after) {
    constexpr int max_failed_connects = 30;
    const bool tty = isatty(STDOUT_FILENO) != 0;
    std::string last_id = after > 0 ? std::to_string(after) : "";
    std::string end_state;
    int failed_connects = 0;
    for (;;) {
        http::sse_request req;
        req.target = path;
        req.last_event_id = last_id;
        req.timeout = std::chrono::hours(24 * 365);
        req.on_event = [&](const http::sse_event& e) {
            if (e.type == "end") {
                end_state = json::value_to<std::string>(json::parse(e.data).at("state"));
                return false;
            }
            print_event(json::parse(e.data), tty);
            last_id = e.id;
            return true;
        };
        http::sse_result result;
        try {
            result = http::read_sse(server, req);
            failed_connects = 0;
        } catch (const std::exception& e) {
            if (++failed_connects > max_failed_connects) {
                std::cerr << "error: " << e.what() << "\n";
                return 2;
            }
            std::cerr << "  (connection lost; reconnecting from offset "
                      << (last_id.empty() ? "0" : last_id) << ")\n";
            std::this_thread::sleep_for(std::chrono::seconds(1));
            continue;
        }
        if (!end_state.empty()) {
            return end_state == "succeeded" ? 0 : 1;
        }
        if (result.status == 204) {
            // Already past the end: the job's state decides.
            http::client c(server);
            auto job = c.get("/v1/jobs/" + path.substr(path.find("job:") + 4, 36));
            return job.status == 200 && json::parse(job.body).at("state").as_string() == "succeeded"
                       ? 0
                       : 1;
        }
        if (result.status != 200) {
            http::client c(server);
            return check(c.get(path)) == 0 ? 1 : (result.status == 404 ? 1 : 2);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // dropped: resume
    }
}

int simple_post(const std::string& server, const std::string& target) {
    return with_client(server, [&](http::client& c) {
        auto res = c.post(target, "{}");
        if (int rc = check(res)) {
            return rc;
        }
        auto job = json::parse(res.body);
        std::cout << json::value_to<std::string>(job.at("id")) << " "
                  << json::value_to<std::string>(job.at("state")) << "\n";
        return 0;
    });
}

}  // namespace

int cmd_submit(const std::string& server, const submit_args& args) {
    json::object body{{"type", args.type}};
    boost::system::error_code ec;
    auto payload = json::parse(args.payload, ec);
    if (ec) {
        std::cerr << "error: --payload is not valid JSON: " << ec.message() << "\n";
        return 2;
    }
    body["payload"] = std::move(payload);
    if (args.queue) {
        body["queue"] = *args.queue;
    }
    if (args.priority) {
        body["priority"] = *args.priority;
    }
    if (args.delay_s) {
        body["delay_s"] = *args.delay_s;
    }
    if (args.max_attempts) {
        body["max_attempts"] = *args.max_attempts;
    }
    if (args.timeout_s) {
        body["timeout_s"] = *args.timeout_s;
    }
    if (args.idempotency_key) {
        body["idempotency_key"] = *args.idempotency_key;
    }
    return with_client(server, [&](http::client& c) {
        auto res = c.post("/v1/jobs", json::serialize(body));
        if (int rc = check(res)) {
            return rc;
        }
        auto job = json::parse(res.body);
        const auto id = json::value_to<std::string>(job.at("id"));
        if (!args.wait) {
            std::cout << id << "\n";
            return 0;
        }
        std::cout << "job " << id << " (" << args.type << ")"
                  << (res.status == 200 ? " already existed" : " submitted")
                  << "; waiting for it to finish\n";
        const int rc = watch_events(server, "/v1/topics/job:" + id + "/events", 0);
        return print_job(c.get("/v1/jobs/" + id)) == 0 ? rc : 1;
    });
}

int cmd_jobs(const std::string& server, const list_args& args) {
    std::string target = "/v1/jobs?limit=" + std::to_string(args.limit);
    if (args.state) {
        target += "&state=" + encode(*args.state);
    }
    if (args.type) {
        target += "&type=" + encode(*args.type);
    }
    if (args.queue) {
        target += "&queue=" + encode(*args.queue);
    }
    return with_client(server, [&](http::client& c) {
        auto res = c.get(target);
        if (int rc = check(res)) {
            return rc;
        }
        auto page = json::parse(res.body);
        std::printf(
            "%-36s  %-12s  %-10s  %-8s  %s\n", "ID", "TYPE", "STATE", "ATTEMPTS", "CREATED"
        );
        for (const auto& j : page.at("jobs").as_array()) {
            const auto attempts = std::to_string(j.at("attempts").as_int64()) + "/" +
                                  std::to_string(j.at("max_attempts").as_int64());
            std::printf(
                "%-36s  %-12s  %-10s  %-8s  %s\n",
                json::value_to<std::string>(j.at("id")).c_str(),
                json::value_to<std::string>(j.at("type")).c_str(),
                json::value_to<std::string>(j.at("state")).c_str(),
                attempts.c_str(),
                json::value_to<std::string>(j.at("created_at")).c_str()
            );
        }
        if (page.at("next_cursor").is_string()) {
            std::printf(
                "(more: GET /v1/jobs?cursor=%s)\n", page.at("next_cursor").as_string().c_str()
            );
        }
        return 0;
    });
}

int cmd_job(const std::string& server, const std::string& id) {
    return with_client(server, [&](http::client& c) {
        return print_job(c.get("/v1/jobs/" + encode(id)));
    });
}

int cmd_cancel(const std::string& server, const std::string& id) {
    return simple_post(server, "/v1/jobs/" + encode(id) + "/cancel");
}

int cmd_retry(const std::string& server, const std::string& id) {
    return simple_post(server, "/v1/jobs/" + encode(id) + "/retry");
}

int cmd_watch(const std::string& server, const std::string& topic, std::int64_t after) {
    if (!store::is_valid_topic(topic)) {
        std::cerr << "error: '" << topic
                  << "' is not a topic name (segments of [A-Za-z0-9_.-] joined by ':')\n";
        return 2;
    }
    return watch_events(server, "/v1/topics/" + topic + "/events", after);
}

int cmd_migrate(const std::string& db_url) {
    auto url = parse_store_url(db_url);
    if (!url) {
        std::cerr << "error: " << url.error().message << "\n";
        return 2;
    }
    try {
        if (url->kind == store_url::postgres) {
            const int applied = store::postgres::migrate_postgres({.url = url->target});
            std::cout << "applied " << applied << " migration(s) to the PostgreSQL database\n";
            return 0;
        }
        const int applied = store::sqlite::migrate_sqlite(url->target);
        std::cout << "applied " << applied << " migration(s); " << url->target
                  << " is at schema version " << store::sqlite::latest_schema_version() << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace conclave::app
