// `conclave ask`: runs a council and shows it live — a line per member with its progress in
// stages 1 and 2, the aggregate ranking as a table, then the chairman's answer as it streams.
// Follows the job's SSE stream and resumes it after a dropped connection (Last-Event-ID).
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include <boost/json.hpp>

#include <unistd.h>

#include "app/cli_commands.hpp"
#include "http/client.hpp"
#include "http/sse_client.hpp"

namespace conclave::app {
namespace json = boost::json;
namespace {

std::string text_of(const json::value& v, const char* key) {
    const auto* obj = v.if_object();
    const auto* field = obj != nullptr ? obj->if_contains(key) : nullptr;
    return field != nullptr && field->is_string() ? std::string(field->as_string()) : "";
}

// The members' lines of one stage. On a terminal they are redrawn in place; otherwise a line is
// printed when a member finishes.
class progress_block {
public:
    progress_block(std::vector<std::string> models, bool tty, std::string verb)
        : tty_(tty), verb_(std::move(verb)) {
        for (auto& m : models) {
            width_ = std::max(width_, m.size());
            rows_.push_back({std::move(m), 0, "waiting", ""});
        }
        if (tty_) {
            draw(true);
        }
    }

    void add_text(const std::string& model, std::size_t chars) {
        if (auto* r = find(model)) {
            r->chars += chars;
            r->state = verb_;
        }
        const auto now = std::chrono::steady_clock::now();
        if (tty_ && now - last_draw_ > std::chrono::milliseconds(100)) {
            draw(false);
        }
    }

    void done(const std::string& model, const std::string& error) {
        auto* r = find(model);
        if (r == nullptr) {
            return;
        }
        r->state = error.empty() ? "done" : "failed";
        r->error = error;
        if (tty_) {
            draw(false);
        } else {
            std::cout << line(*r) << "\n";
        }
    }

private:
    struct row {
        std::string model;
        std::size_t chars;
        std::string state;
        std::string error;
    };

    row* find(const std::string& model) {
        for (auto& r : rows_) {
            if (r.model == model) {
                return &r;
            }
        }
        return nullptr;
    }

    std::string line(const row& r) const {
        std::ostringstream out;
        const char* mark = r.state == "done" ? "✓" : r.state == "failed" ? "✗" : "…";
        out << "  " << mark << " " << std::left << std::setw(static_cast<int>(width_)) << r.model
            << "  " << r.state;
        if (r.chars > 0) {
            out << " (" << r.chars << " chars)";
        }
        if (!r.error.empty()) {
            out << ": " << r.error.substr(0, 200);
        }
        return out.str();
    }

    void draw(bool first) {
        if (!first) {
            std::cout << "\033[" << rows_.size() << "A";
        }
        for (const auto& r : rows_) {
            std::cout << "\033[2K" << line(r) << "\n";
        }
        std::cout.flush();
        last_draw_ = std::chrono::steady_clock::now();
    }

    bool tty_;
    std::string verb_;
    std::size_t width_ = 0;
    std::vector<row> rows_;
    std::chrono::steady_clock::time_point last_draw_{};
};

// Shows one council job's events as they come.
class council_view {
public:
    explicit council_view(bool tty) : tty_(tty) {}

    // false once the job ended; `ok` then tells how.
    bool on_event(const std::string& type, const json::value& data) {
        if (type == "stage1.start") {
            std::vector<std::string> members;
            for (const auto& m : data.at("members").as_array()) {
                members.emplace_back(m.as_string());
            }
            members_ = members;
            if (std::any_of(members.begin(), members.end(), [](const std::string& m) {
                    return m.starts_with("sim:");
                })) {
                std::cout << "(simulated models: no API key is configured, the text is made up)\n";
            }
            std::cout << "Stage 1 — answers\n";
            block_ = std::make_unique<progress_block>(members, tty_, "answering");
        } else if (type == "stage2.start") {
            std::cout << "Stage 2 — peer rankings\n";
            block_ = std::make_unique<progress_block>(members_, tty_, "ranking");
        } else if ((type == "stage1.delta" || type == "stage2.delta") && block_) {
            const auto part = text_of(data, "part");
            block_->add_text(part.substr(part.find('/') + 1), text_of(data, "text").size());
        } else if ((type == "stage1.model_complete" || type == "stage2.model_complete") && block_) {
            block_->done(text_of(data, "model"), text_of(data, "error"));
        } else if (type == "stage2.complete") {
            print_rankings(data);
        } else if (type == "stage3.start") {
            std::cout << "\nStage 3 — the chairman's answer\n\n";
        } else if (type == "stage3.delta") {
            std::cout << text_of(data, "text") << std::flush;
            streamed_ = true;
        } else if (type == "stage3.complete") {
            const auto error = text_of(data, "error");
            if (!error.empty()) {
                std::cout << "(no answer: " << error << ")";
            } else if (!streamed_) {
                std::cout << text_of(data, "response");
            }
            std::cout << "\n\n— " << text_of(data, "model") << "\n";
        } else if (type == "title") {
            title_ = text_of(data, "title");
        } else if (type == "job.retrying") {
            std::cout << "\n(attempt failed: " << text_of(data.at("error"), "message")
                      << "; retrying)\n";
        } else if (type == "job.succeeded") {
            print_usage(data.at("result"));
            ok_ = true;
            return false;
        } else if (type == "job.failed" || type == "job.cancelled") {
            std::cout << "\nThe council " << (type == "job.failed" ? "failed" : "was cancelled");
            if (type == "job.failed") {
                std::cout << ": " << text_of(data.at("error"), "message");
            }
            std::cout << "\n";
            return false;
        }
        return true;
    }

    bool ok() const { return ok_; }
    const std::string& title() const { return title_; }

private:
    static void print_rankings(const json::value& data) {
        std::cout << "\n  rank  model" << std::string(30, ' ') << "avg rank  votes\n";
        int rank = 0;
        for (const auto& a : data.at("aggregate_rankings").as_array()) {
            std::ostringstream row;
            row << "  " << std::left << std::setw(6) << ++rank << std::setw(35)
                << text_of(a, "model") << std::setw(10) << std::fixed << std::setprecision(2)
                << a.at("average_rank").to_number<double>() << a.at("rankings_count").as_int64();
            std::cout << row.str() << "\n";
        }
    }

    static void print_usage(const json::value& result) {
        const auto& usage = result.at("metadata").at("usage");
        std::cout << "usage: " << usage.at("prompt_tokens").as_int64() << " prompt + "
                  << usage.at("completion_tokens").as_int64() << " completion tokens";
        if (!usage.at("cost").is_null()) {
            std::cout << std::fixed << std::setprecision(4) << ", $"
                      << usage.at("cost").to_number<double>();
        }
        std::cout << "\n";
    }

    bool tty_;
    std::vector<std::string> members_;
    std::unique_ptr<progress_block> block_;
    bool streamed_ = false;
    bool ok_ = false;
    std::string title_;
};

int refused(const http::client_response& res) {
    std::string message = res.body;
    try {
        message = json::value_to<std::string>(json::parse(res.body).at("error").at("message"));
    } catch (const std::exception&) {
    }
    std::cerr << "error: " << message << " (HTTP " << res.status << ")\n";
    return 1;
}

}  // namespace

int cmd_ask(const std::string& server, const std::string& question, std::string conversation) {
    try {
        http::client c(server);
        if (conversation.empty()) {
            auto created = c.post("/v1/conversations", "{}");
            if (created.status != 201) {
                return refused(created);
            }
            conversation = json::value_to<std::string>(json::parse(created.body).at("id"));
        }
        const auto body = json::serialize(json::object{{"content", question}});
        auto asked = c.post("/v1/conversations/" + conversation + "/messages", body);
        if (asked.status != 202) {
            return refused(asked);
        }
        const auto accepted = json::parse(asked.body);
        const auto stream_url = json::value_to<std::string>(accepted.at("stream_url"));
        std::cout << "conversation " << conversation << " · job "
                  << json::value_to<std::string>(accepted.at("job_id")) << "\n";
        council_view view(isatty(STDOUT_FILENO) != 0);
        std::string last_id;
        bool over = false;
        for (int failures = 0; !over;) {
            http::sse_request req;
            req.target = stream_url;
            req.last_event_id = last_id;
            req.timeout = std::chrono::hours(24);
            req.on_event = [&](const http::sse_event& e) {
                if (e.type == "end") {
                    return false;
                }
                last_id = e.id;
                const auto event = json::parse(e.data);
                over = !view.on_event(e.type, event.at("data"));
                return !over;
            };
            try {
                auto result = http::read_sse(server, req);
                failures = 0;
                if (result.status == 204) {
                    break;  // already over
                }
            } catch (const std::exception& e) {
                if (++failures > 30) {
                    std::cerr << "error: " << e.what() << "\n";
                    return 2;
                }
            }
            if (!over) {
                std::cerr << "  (connection lost; resuming)\n";
                std::this_thread::sleep_for(std::chrono::seconds(1));
            }
        }
        if (!view.title().empty()) {
            std::cout << "title: " << view.title() << "\n";
        }
        std::cout << "continue with: conclave ask --conversation " << conversation << " \"…\"\n";
        return view.ok() ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << "\n";
        return 2;
    }
}

}  // namespace conclave::app
