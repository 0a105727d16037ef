#include "llm/sim_provider.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <random>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

namespace conclave::llm {

namespace {

constexpr std::array<std::string_view, 24> words{
    "the",        "answer",  "depends",   "on",      "context", "and",   "evidence", "suggests",
    "that",       "careful", "reasoning", "matters", "because", "each",  "approach", "has",
    "trade-offs", "worth",   "weighing",  "against", "clear",   "goals", "in",       "practice"};

std::uint64_t fnv1a(std::string_view text) {
    std::uint64_t h = 1469598103934665603ULL;
    for (const char c : text) {
        h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    }
    return h;
}

}  // namespace

std::string sim_provider::text_for(const chat_request& request) const {
    const std::string prompt = request.messages.empty() ? "" : request.messages.back().content;
    std::mt19937_64 rng(fnv1a(request.model + "\n" + prompt));
    if (prompt.starts_with("You are evaluating") &&
        prompt.find("FINAL RANKING") != std::string::npos) {
        // The ranking prompt: rank every "Response X" it shows, in a seeded order.
        std::vector<std::string> labels;
        for (char letter = 'A'; letter <= 'Z'; ++letter) {
            const std::string label = std::string("Response ") + letter;
            if (prompt.find(label + ":") != std::string::npos ||
                prompt.find(label + "\n") != std::string::npos) {
                labels.push_back(label);
            }
        }
        std::shuffle(labels.begin(), labels.end(), rng);
        std::string text =
            "Each response has merits; weighing accuracy and clarity (simulated "
            "evaluation by " +
            request.model + ").\n\nFINAL RANKING:\n";
        for (std::size_t idx = 0; idx < labels.size(); ++idx) {
            text += std::to_string(idx + 1) + ". " + labels[idx] + "\n";
        }
        return text;
    }
    if (prompt.starts_with("Generate a very short title")) {
        // The first words of the question, as a small model would pick.
        const auto at = prompt.rfind("Question: ");
        std::string title;
        std::size_t taken = 0;
        for (std::size_t pos = at == std::string::npos ? prompt.size() : at + 10;
             pos < prompt.size() && taken < 4;
             ++pos) {
            const char c = prompt[pos];
            if (c == ' ' || c == '\n') {
                taken += title.empty() || title.back() == ' ' ? 0 : 1;
                title += taken < 4 && !title.empty() && title.back() != ' ' ? " " : "";
            } else if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-') {
                title += c;
            }
        }
        while (!title.empty() && title.back() == ' ') {
            title.pop_back();
        }
        return title.empty() ? "Simulated conversation" : title;
    }
    std::string text = "[simulated " + request.model + "] ";
    for (int idx = 0; idx < options_.answer_words; ++idx) {
        text += words[rng() % words.size()];
        text += (idx + 1) % 12 == 0 ? ".\n" : " ";
    }
    return text;
}

net::awaitable<result<completion>> sim_provider::stream(chat_request request, delta_sink on_delta) {
    const auto text = text_for(request);
    net::steady_timer timer(co_await net::this_coro::executor);
    const auto pause =
        options_.tokens_per_s > 0
            ? std::chrono::microseconds(static_cast<std::int64_t>(1'000'000 / options_.tokens_per_s)
              )
            : std::chrono::microseconds(0);
    std::int64_t tokens = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        // A "token" is a word with its trailing space or newline.
        auto end = text.find_first_of(" \n", pos);
        end = end == std::string::npos ? text.size() : end + 1;
        std::string piece = text.substr(pos, end - pos);
        pos = end;
        ++tokens;
        if (pause.count() > 0) {
            timer.expires_after(pause);
            co_await timer.async_wait(net::use_awaitable);
        }
        co_await on_delta(std::move(piece));
    }
    std::int64_t prompt_chars = 0;
    for (const auto& m : request.messages) {
        prompt_chars += static_cast<std::int64_t>(m.content.size());
    }
    completion out;
    out.text = text;
    out.finish_reason = "stop";
    out.usage.prompt_tokens = prompt_chars / 4;
    out.usage.completion_tokens = tokens;
    out.usage.cost = 0.0;
    out.simulated = true;
    co_return out;
}

}  // namespace conclave::llm
