// tools/fake-llm: a real OpenAI-compatible chat-completions server for tests and benchmarks.
//
// POST /v1/chat/completions streams (SSE chunks, chunked transfer encoding) a scripted answer:
// the council's ranking prompt ("You are evaluating …") gets a FINAL RANKING of the labels it
// shows, anything else "Answer from MODEL: …". Per model, a JSON script (--script FILE) sets
// the pace and the failures:
//   {"default": {"tokens": 20, "token_ms": 5, "first_token_ms": 0},
//    "models": {"m500": {"status": 500, "fail_times": 1000000},
//               "m429": {"status": 429, "retry_after_s": 0.2, "fail_times": 1},
//               "mcut": {"disconnect_after": 3},
//               "slow": {"tokens": 300, "token_ms": 20, "ranking": {"token_ms": 50}}}}
// (a model, or the default, may set "answer", "ranking", "synthesis" or "title" calls apart.)
// GET /stats → {"calls": {MODEL: {"answer": n, "ranking": n, …}}}: what it served.
// Prints "fake-llm listening on http://HOST:PORT" once ready (--listen 127.0.0.1:0 picks a port).
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <CLI/CLI.hpp>

#include "core/logging.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace {

using namespace conclave;
namespace json = boost::json;
namespace beast = boost::beast;
using http::bhttp::verb;

struct behaviour {
    int tokens = 20;
    int token_ms = 5;
    int first_token_ms = 0;
    int status = 200;    // != 200: fail with it
    int fail_times = 0;  // how many calls fail before it answers
    double retry_after_s = -1;
    int disconnect_after = -1;  // tokens before dropping the connection
    bool stamp = false;         // each token ends with "@<unix µs>" of its sending (benchmarks)
};

behaviour read_behaviour(const json::object& o, behaviour b) {
    auto num = [&](const char* key, auto& field) {
        if (const auto* v = o.if_contains(key)) {
            field = static_cast<std::remove_reference_t<decltype(field)>>(v->to_number<double>());
        }
    };
    num("tokens", b.tokens);
    num("token_ms", b.token_ms);
    num("first_token_ms", b.first_token_ms);
    num("status", b.status);
    num("fail_times", b.fail_times);
    num("retry_after_s", b.retry_after_s);
    num("disconnect_after", b.disconnect_after);
    if (const auto* v = o.if_contains("stamp")) {
        b.stamp = v->is_bool() && v->as_bool();
    }
    return b;
}

class script {
public:
    explicit script(const json::object& root) {
        json::object defaults;
        if (const auto* d = root.if_contains("default")) {
            defaults = d->as_object();
            default_ = read_behaviour(defaults, default_);
            read_kinds(defaults, default_, default_kinds_);
        }
        if (const auto* models = root.if_contains("models")) {
            for (const auto& [name, v] : models->as_object()) {
                // A model's own settings apply to every kind of call; the default's per-kind
                // settings on top of them; the model's per-kind settings last.
                const std::string model(name);
                models_[model] = read_behaviour(v.as_object(), default_);
                read_kinds(defaults, models_[model], kinds_[model]);
                for (auto& [kind, b] : kinds_[model]) {
                    b = read_behaviour(v.as_object(), b);
                }
                read_kinds(v.as_object(), models_[model], kinds_[model]);
            }
        }
    }

    // The behaviour for this call of `model`, counting the call under `kind` ("answer",
    // "ranking", "synthesis", "title"; a script may set any of them apart, e.g. "ranking": {…}).
    std::pair<behaviour, int> call(const std::string& model, const std::string& kind) {
        std::lock_guard lock(mutex_);
        auto it = models_.find(model);
        const auto& kinds = it != models_.end() ? kinds_[model] : default_kinds_;
        auto k = kinds.find(kind);
        const auto b = k != kinds.end() ? k->second : it != models_.end() ? it->second : default_;
        ++calls_[model][kind];
        return {b, ++totals_[model]};
    }

    json::object stats() {
        std::lock_guard lock(mutex_);
        json::object calls;
        for (const auto& [model, kinds] : calls_) {
            json::object k;
            for (const auto& [kind, n] : kinds) {
                k[kind] = n;
            }
            calls[model] = std::move(k);
        }
        return json::object{{"calls", std::move(calls)}};
    }

private:
    static void read_kinds(
        const json::object& o, const behaviour& base, std::map<std::string, behaviour>& out
    ) {
        for (const char* kind : {"answer", "ranking", "synthesis", "title"}) {
            if (const auto* v = o.if_contains(kind); v != nullptr && v->is_object()) {
                out[kind] = read_behaviour(v->as_object(), base);
            }
        }
    }

    behaviour default_;
    std::map<std::string, behaviour> default_kinds_;
    std::map<std::string, behaviour> models_;
    std::map<std::string, std::map<std::string, behaviour>> kinds_;
    std::mutex mutex_;
    std::map<std::string, std::map<std::string, int>> calls_;
    std::map<std::string, int> totals_;
};

std::string answer_text(const std::string& model, const std::string& prompt, int tokens) {
    if (prompt.starts_with("You are evaluating")) {
        std::vector<std::string> labels;
        for (char letter = 'A'; letter <= 'Z'; ++letter) {
            const std::string label = std::string("Response ") + letter;
            if (prompt.find(label + ":\n") != std::string::npos) {
                labels.push_back(label);
            }
        }
        // A fixed preference: the reverse of the order shown.
        std::string text = "Evaluation by " + model + ". FINAL RANKING:\n";
        for (std::size_t idx = 0; idx < labels.size(); ++idx) {
            text += std::to_string(idx + 1) + ". " + labels[labels.size() - 1 - idx] + "\n";
        }
        return text;
    }
    if (prompt.starts_with("Generate a very short title")) {
        return "\"Fake Title From " + model + "\"";  // quoted, as real models often do
    }
    std::string text = "Answer from " + model + ":";
    for (int idx = 0; idx < tokens; ++idx) {
        text += " t" + std::to_string(idx);
    }
    return text;
}

std::string sse_chunk(const json::object& o) {
    const auto data = "data: " + json::serialize(o) + "\n\n";
    std::ostringstream framed;
    framed << std::hex << data.size() << "\r\n" << data << "\r\n";
    return framed.str();
}

net::awaitable<void> pause(int ms) {
    if (ms <= 0) {
        co_return;
    }
    net::steady_timer timer(co_await net::this_coro::executor, std::chrono::milliseconds(ms));
    co_await timer.async_wait(net::as_tuple(net::use_awaitable));
}

// Streams `text` as chat.completion.chunk events, one per word.
net::awaitable<void> stream_answer(
    beast::tcp_stream& stream, std::string model, std::string text, behaviour b, int prompt_chars
) {
    const std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n";
    auto write = [&](const std::string& bytes) -> net::awaitable<bool> {
        auto [ec, n] = co_await net::async_write(
            stream, net::buffer(bytes), net::as_tuple(net::use_awaitable)
        );
        co_return !ec;
    };
    if (!co_await write(head)) {
        co_return;
    }
    co_await pause(b.first_token_ms);
    int sent = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto end = text.find(' ', pos + 1);
        end = end == std::string::npos ? text.size() : end;
        std::string piece = text.substr(pos, end - pos);
        pos = end;
        if (b.disconnect_after >= 0 && sent >= b.disconnect_after) {
            boost::system::error_code ignored;
            stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
            stream.socket().close(ignored);
            co_return;  // mid-stream, no terminal chunk
        }
        if (b.stamp) {
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now().time_since_epoch()
            );
            piece += "@" + std::to_string(us.count());
        }
        const json::object delta{{"content", piece}};
        const json::object choice{{"index", 0}, {"delta", delta}, {"finish_reason", nullptr}};
        const json::object chunk{
            {"id", "fake"},
            {"object", "chat.completion.chunk"},
            {"model", model},
            {"choices", json::array{choice}}};
        const auto framed = sse_chunk(chunk);  // named: GCC 12 and temporaries in co_await
        if (!co_await write(framed)) {
            co_return;
        }
        ++sent;
        if (pos < text.size()) {
            co_await pause(b.token_ms);
        }
    }
    const json::object last_choice{
        {"index", 0}, {"delta", json::object{}}, {"finish_reason", "stop"}};
    const json::object usage{
        {"prompt_tokens", prompt_chars / 4}, {"completion_tokens", sent}, {"cost", 0.0001 * sent}};
    const json::object last{
        {"id", "fake"},
        {"object", "chat.completion.chunk"},
        {"model", model},
        {"choices", json::array{last_choice}},
        {"usage", usage}};
    const std::string done = "data: [DONE]\n\n";
    std::ostringstream framed;
    framed << sse_chunk(last) << std::hex << done.size() << "\r\n" << done << "\r\n0\r\n\r\n";
    const auto tail = framed.str();
    co_await write(tail);
    boost::system::error_code ignored;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"fake-llm: a scripted OpenAI-compatible server"};
    std::string listen = "127.0.0.1:0";
    std::string script_file;
    cli.add_option("--listen", listen, "HOST:PORT (port 0: any free port)");
    cli.add_option("--script", script_file, "a JSON script of per-model behaviour");
    CLI11_PARSE(cli, argc, argv);
    conclave::init_logging("warn");  // no access line per request: a test server, many requests

    json::object root;
    if (!script_file.empty()) {
        std::ifstream in(script_file);
        std::stringstream text;
        text << in.rdbuf();
        boost::system::error_code ec;
        auto parsed = json::parse(text.str(), ec);
        if (ec || !parsed.is_object()) {
            std::cerr << "fake-llm: " << script_file << " is not a JSON object\n";
            return 2;
        }
        root = parsed.as_object();
    }
    script s(root);
    const auto colon = listen.rfind(':');
    net::io_context ioc(2);
    http::router routes;
    routes.add(verb::get, "/stats", [&s](http::request_context&) -> net::awaitable<http::response> {
        co_return http::json_response(http::bhttp::status::ok, s.stats());
    });
    routes.add(
        verb::post,
        "/v1/chat/completions",
        [&s](http::request_context& ctx) -> net::awaitable<http::response> {
            boost::system::error_code ec;
            auto body = json::parse(ctx.req.body(), ec);
            const auto* obj = ec ? nullptr : body.if_object();
            const auto* model = obj ? obj->if_contains("model") : nullptr;
            const auto* messages = obj ? obj->if_contains("messages") : nullptr;
            if (model == nullptr || !model->is_string() || messages == nullptr ||
                !messages->is_array() || messages->as_array().empty()) {
                co_return http::json_response(
                    http::bhttp::status::bad_request,
                    json::object{
                        {"error", json::object{{"message", "model and messages required"}}}}
                );
            }
            const std::string name(model->as_string());
            std::string prompt;
            int prompt_chars = 0;
            for (const auto& m : messages->as_array()) {
                const auto& content = m.at("content").as_string();
                prompt = std::string(content);
                prompt_chars += static_cast<int>(content.size());
            }
            const std::string kind = prompt.starts_with("You are evaluating")     ? "ranking"
                                     : prompt.starts_with("You are the Chairman") ? "synthesis"
                                     : prompt.starts_with("Generate a very short title") ? "title"
                                                                                         : "answer";
            auto [b, n] = s.call(name, kind);
            if (b.status != 200 && n <= b.fail_times) {
                auto res = http::json_response(
                    static_cast<http::bhttp::status>(b.status),
                    json::object{
                        {"error",
                         json::object{
                             {"message",
                              "fake failure " + std::to_string(b.status) + " for " + name}}}}
                );
                if (b.retry_after_s >= 0) {
                    res.set(http::bhttp::field::retry_after, std::to_string(b.retry_after_s));
                }
                co_return res;
            }
            std::string text = answer_text(name, prompt, b.tokens);
            ctx.stream =
                [name, text, b, prompt_chars](beast::tcp_stream& stream, beast::flat_buffer&)
                -> net::awaitable<void> {
                co_await stream_answer(stream, name, text, b, prompt_chars);
            };
            co_return http::response{};
        }
    );
    http::server server(
        ioc,
        routes,
        {.host = listen.substr(0, colon),
         .port = static_cast<std::uint16_t>(std::stoi(listen.substr(colon + 1)))}
    );
    const auto bound = server.listen();
    server.start();
    std::cout << "fake-llm listening on http://" << bound.address().to_string() << ":"
              << bound.port() << std::endl;
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code, int) { ioc.stop(); });
    std::thread other([&ioc] { ioc.run(); });
    ioc.run();
    other.join();
    return 0;
}
