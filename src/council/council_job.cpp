#include "council/council_job.hpp"

#include <algorithm>
#include <deque>
#include <memory>
#include <random>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include "core/clock.hpp"
#include "core/wakeup.hpp"
#include "council/ranking.hpp"
#include "jobs/engine.hpp"

namespace conclave::council {
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t max_question = 100'000;
constexpr std::size_t max_members = 16;

using task = std::function<net::awaitable<void>()>;

// Runs `tasks` at once on this coroutine's executor and waits for every one. If the caller is
// cancelled (the job was cancelled or timed out), each task is cancelled and still awaited, so
// none outlives the frames it uses; then the cancellation is rethrown. A task's exception (the
// lease was lost) is rethrown once every task has ended.
net::awaitable<void> run_all(std::vector<task> tasks) {
    struct group {
        std::size_t remaining = 0;
        wakeup done;
        std::deque<net::cancellation_signal> signals;
        std::exception_ptr failure;
    };
    auto g = std::make_shared<group>();
    g->remaining = tasks.size();
    g->signals.resize(tasks.size());
    const auto exec = co_await net::this_coro::executor;
    co_await net::this_coro::throw_if_cancelled(false);
    for (std::size_t idx = 0; idx < tasks.size(); ++idx) {
        auto work = tasks[idx]();
        auto finished = [g](std::exception_ptr e) {
            if (e && !g->failure) {
                g->failure = e;
            }
            --g->remaining;
            g->done.notify_all();
        };
        net::co_spawn(
            exec,
            std::move(work),
            net::bind_cancellation_slot(g->signals[idx].slot(), std::move(finished))
        );
    }
    bool cancelled = false;
    while (g->remaining > 0) {
        const auto seen = g->done.generation();
        auto state = co_await net::this_coro::cancellation_state;
        if (!cancelled && state.cancelled() != net::cancellation_type::none) {
            cancelled = true;
            for (auto& signal : g->signals) {
                signal.emit(net::cancellation_type::terminal);
            }
        }
        if (g->remaining > 0) {
            co_await g->done.wait(seen, 200ms);
        }
    }
    co_await net::this_coro::throw_if_cancelled(true);
    if (cancelled) {
        throw boost::system::system_error(net::error::operation_aborted);
    }
    if (g->failure) {
        std::rethrow_exception(g->failure);
    }
}

json::value usage_json(const llm::usage& u) {
    json::object o{{"prompt_tokens", u.prompt_tokens}, {"completion_tokens", u.completion_tokens}};
    o["cost"] = u.cost ? json::value(*u.cost) : json::value(nullptr);
    return o;
}

std::optional<std::vector<std::string>> string_list(const json::value& v) {
    if (!v.is_array()) {
        return std::nullopt;
    }
    std::vector<std::string> out;
    for (const auto& item : v.get_array()) {
        if (!item.is_string() || item.as_string().empty()) {
            return std::nullopt;
        }
        out.emplace_back(item.as_string());
    }
    return out;
}

struct spec {
    std::string question;
    std::vector<llm::chat_message> history;
    council_settings settings;
    std::string conversation_id;  // empty: a council on its own
    bool make_title = false;      // generate the conversation's title alongside stage 1
};

// Checks a payload against `defaults`; the error names the field.
std::optional<std::string> parse_spec(
    const json::value& payload, const council_settings& defaults, spec* out
) {
    const auto* obj = payload.if_object();
    if (obj == nullptr) {
        return "a council needs {\"question\": string, …}";
    }
    spec s;
    s.settings = defaults;
    const auto* question = obj->if_contains("question");
    if (question == nullptr || !question->is_string() || question->as_string().empty() ||
        question->as_string().size() > max_question) {
        return "'question' must be a non-empty string of at most 100000 characters";
    }
    s.question = std::string(question->as_string());
    if (const auto* history = obj->if_contains("history")) {
        if (!history->is_array()) {
            return "'history' must be an array of {role, content}";
        }
        for (const auto& turn : history->get_array()) {
            const auto* t = turn.if_object();
            const auto* role = t ? t->if_contains("role") : nullptr;
            const auto* content = t ? t->if_contains("content") : nullptr;
            if (role == nullptr || !role->is_string() ||
                (role->as_string() != "user" && role->as_string() != "assistant") ||
                content == nullptr || !content->is_string()) {
                return "each 'history' turn must be {role: user|assistant, content: string}";
            }
            s.history.push_back({std::string(role->as_string()), std::string(content->as_string())}
            );
        }
    }
    if (const auto* members = obj->if_contains("members")) {
        auto list = string_list(*members);
        if (!list || list->empty() || list->size() > max_members) {
            return "'members' must be a list of 1-16 model ids";
        }
        s.settings.members = std::move(*list);
    }
    for (const auto& [key, field] :
         {std::pair{"chairman", &s.settings.chairman},
          std::pair{"chairman_fallback", &s.settings.chairman_fallback}}) {
        if (const auto* v = obj->if_contains(key)) {
            if (!v->is_string()) {
                return std::string("'") + key + "' must be a model id";
            }
            *field = std::string(v->as_string());
        }
    }
    for (const auto& [key, field] :
         {std::pair{"self_ranking", &s.settings.self_ranking}, std::pair{"title", &s.make_title}}) {
        if (const auto* v = obj->if_contains(key)) {
            if (!v->is_bool()) {
                return std::string("'") + key + "' must be a boolean";
            }
            *field = v->as_bool();
        }
    }
    if (const auto* v = obj->if_contains("title_model")) {
        if (!v->is_string() || v->as_string().empty()) {
            return "'title_model' must be a model id";
        }
        s.settings.title_model = std::string(v->as_string());
    }
    if (const auto* v = obj->if_contains("conversation_id")) {
        if (!v->is_string() || v->as_string().empty()) {
            return "'conversation_id' must be a conversation id";
        }
        s.conversation_id = std::string(v->as_string());
    }
    if (s.settings.members.empty() || s.settings.chairman.empty()) {
        return "a council needs members and a chairman";
    }
    if (out != nullptr) {
        *out = std::move(s);
    }
    return std::nullopt;
}

std::string ranking_prompt(
    const std::string& question, const std::vector<std::pair<std::string, std::string>>& shown
) {
    std::string p =
        "You are evaluating different responses to the following question:\n\nQuestion: " +
        question + "\n\nHere are the responses from different models (anonymized):\n\n";
    for (const auto& [label, text] : shown) {
        p += label + ":\n" + text + "\n\n";
    }
    p += "Your task:\n"
         "1. First, evaluate each response individually. For each response, explain what it does "
         "well and what it does poorly.\n"
         "2. Then, at the very end of your response, provide a final ranking.\n\n"
         "IMPORTANT: Your final ranking MUST be formatted EXACTLY as follows:\n"
         "- Start with the line \"FINAL RANKING:\" (all caps, with a colon)\n"
         "- Then list the responses from best to worst as a numbered list\n"
         "- Each line should be: number, period, space, then ONLY the response label (e.g., \"1. "
         "Response A\")\n"
         "- Do not add any other text or explanations in the ranking section\n";
    return p;
}

// One council, run by one attempt of a `council` job.
class council_run {
public:
    council_run(jobs::job_context& ctx, const llm::providers& models, spec s)
        : ctx_(ctx), models_(models), spec_(std::move(s)) {
        const auto n = spec_.settings.members.size();
        answers_.resize(n);
        rankings_.resize(n);
    }

    net::awaitable<std::string> run() {
        const auto& members = spec_.settings.members;
        if (!spec_.conversation_id.empty()) {
            co_await load_history();
        }
        json::array member_list(members.begin(), members.end());
        // Named first: GCC 12 mishandles braced initializers inside a co_await expression.
        const json::object start{{"members", member_list}};
        co_await ctx_.emit("stage1.start", json::serialize(start));
        std::vector<task> stage1;
        for (std::size_t idx = 0; idx < members.size(); ++idx) {
            stage1.push_back([this, idx] { return answer(idx); });
        }
        if (spec_.make_title && !spec_.settings.title_model.empty()) {
            stage1.push_back([this] { return make_title(); });
        }
        co_await run_all(std::move(stage1));
        co_await ctx_.emit("stage1.complete", json::serialize(stage1_data()));

        // Stage 2: label the answers that exist, in an order fixed by the job id.
        for (std::size_t idx = 0; idx < members.size(); ++idx) {
            if (!answers_[idx].error) {
                order_.push_back(idx);
            }
        }
        if (!order_.empty()) {
            std::seed_seq seed(ctx_.job().id.begin(), ctx_.job().id.end());
            std::mt19937 rng(seed);
            std::shuffle(order_.begin(), order_.end(), rng);
            for (std::size_t pos = 0; pos < order_.size(); ++pos) {
                label_to_model_[label_of(pos)] = members[order_[pos]];
            }
            co_await ctx_.emit("stage2.start", "{}");
            std::vector<task> stage2;
            for (std::size_t idx = 0; idx < members.size(); ++idx) {
                stage2.push_back([this, idx] { return rank(idx); });
            }
            co_await run_all(std::move(stage2));
            std::vector<parsed_ranking> parsed;
            for (const auto& r : rankings_) {
                if (!r.error) {
                    parsed.push_back(r.parsed);
                }
            }
            aggregate_ = aggregate_rankings(parsed, label_to_model_);
            auto stage2_done = stage2_metadata();
            stage2_done["results"] = stage2_list();
            co_await ctx_.emit("stage2.complete", json::serialize(stage2_done));
            co_await ctx_.emit("stage3.start", "{}");
            co_await synthesize();
        } else {
            final_.error = "every council member failed in stage 1; nothing to rank or synthesize";
        }
        json::object done{{"model", final_.model}, {"response", final_.text}};
        if (final_.error) {
            done["error"] = *final_.error;
        }
        co_await ctx_.emit("stage3.complete", json::serialize(done));
        co_return json::serialize(result());
    }

private:
    struct outcome {
        std::string model;
        std::string text;
        std::optional<std::string> error;
        llm::usage usage;
        bool simulated = false;
    };
    struct ranking_outcome : outcome {
        parsed_ranking parsed;
    };

    // Streams `model`'s completion of `messages` into `part`; throws with the provider's error.
    net::awaitable<outcome> call(
        const std::string& model,
        std::vector<llm::chat_message> messages,
        std::string part,
        std::string delta_type
    ) {
        auto route = models_.find(model);
        if (!route) {
            throw std::runtime_error(route.error().message);
        }
        llm::chat_request request{.model = route->model, .messages = std::move(messages)};
        // A call held back by its provider's budget says so in the job's events (the job waits
        // instead of failing); the call goes on by itself when the budget has room.
        request.on_budget_wait = [this, part, model](llm::budget_wait w) -> net::awaitable<void> {
            const json::object data{
                {"part", part},
                {"model", model},
                {"provider", w.provider},
                {"budget", w.budget},
                {"until", format_time(w.until_ms)},
                {"needed", w.needed},
                {"available", w.available}};
            co_await ctx_.emit("llm.budget_wait", json::serialize(data));
        };
        auto sink = [this, part, delta_type](std::string text) -> net::awaitable<void> {
            co_await ctx_.delta(part, std::move(text), delta_type);
        };
        auto done = co_await route->target->stream(std::move(request), sink);
        if (!done) {
            throw std::runtime_error(done.error().message);
        }
        co_return outcome{model, std::move(done->text), std::nullopt, done->usage, done->simulated};
    }

    // A step's stored form of an outcome, and back.
    static std::string to_text(const outcome& o) {
        return json::serialize(json::object{
            {"model", o.model},
            {"response", o.text},
            {"usage", usage_json(o.usage)},
            {"simulated", o.simulated}});
    }
    static outcome from_text(const std::string& text) {
        const auto v = json::parse(text).as_object();
        outcome o;
        o.model = std::string(v.at("model").as_string());
        o.text = std::string(v.at("response").as_string());
        const auto& u = v.at("usage").as_object();
        o.usage.prompt_tokens = u.at("prompt_tokens").to_number<std::int64_t>();
        o.usage.completion_tokens = u.at("completion_tokens").to_number<std::int64_t>();
        if (!u.at("cost").is_null()) {
            o.usage.cost = u.at("cost").to_number<double>();
        }
        o.simulated = v.at("simulated").as_bool();
        return o;
    }

    // Runs `model` as the step `key` (recorded once; a retry reuses it), or records the error.
    net::awaitable<outcome> stepped(
        std::string key,
        std::string model,
        std::vector<llm::chat_message> messages,
        std::string part,
        std::string delta_type
    ) {
        std::function<net::awaitable<std::string>()> fn =
            [this, model, messages, part, delta_type]() -> net::awaitable<std::string> {
            auto done = co_await call(model, messages, part, delta_type);
            co_return to_text(done);
        };
        try {
            auto text = co_await ctx_.step(std::move(key), std::move(fn));
            co_return from_text(text);
        } catch (const jobs::handler_error&) {
            throw;  // the lease is gone: this attempt is over
        } catch (const boost::system::system_error& e) {
            if (e.code() == net::error::operation_aborted) {
                throw;
            }
            outcome failed{model, "", e.what(), {}, false};
            co_return failed;
        } catch (const std::exception& e) {
            outcome failed{model, "", e.what(), {}, false};
            co_return failed;
        }
    }

    // The conversation's turns before this job's question: user messages and the answers
    // given (failed turns, with no answer, are left out). A deleted conversation has none.
    net::awaitable<void> load_history() {
        auto messages = co_await ctx_.db().load_messages(spec_.conversation_id);
        if (!messages) {
            co_return;
        }
        std::vector<llm::chat_message> history;
        for (const auto& m : *messages) {
            if (m.job_id == ctx_.job().id && m.role == "user") {
                spec_.history = std::move(history);
                co_return;
            }
            if (!m.content.empty()) {
                history.push_back({m.role, m.content});
            }
        }
    }

    // The title of a new conversation, by the small title model, as a step (paid once). A
    // failure is reported and leaves the title as it was.
    net::awaitable<void> make_title() {
        const auto& model = spec_.settings.title_model;
        std::vector<llm::chat_message> messages{
            {"user",
             "Generate a very short title (3-5 words maximum) that summarizes the following "
             "question. The title should be concise and descriptive. Do not use quotes or "
             "punctuation in the title.\n\nQuestion: " +
                 spec_.question}};
        auto got = co_await stepped("title", model, std::move(messages), "title", "title.delta");
        if (got.error) {
            errors_.push_back({"title", model, *got.error});
            co_return;
        }
        title_ = clean_title(got.text);
        title_usage_ = got;
        if (!spec_.conversation_id.empty()) {
            co_await ctx_.db().set_conversation_title(spec_.conversation_id, title_, ctx_.now());
        }
        const json::object data{{"title", title_}, {"model", model}};
        co_await ctx_.emit("title", json::serialize(data));
    }

    // Models like to quote and punctuate titles anyway; at most 80 characters of one line.
    static std::string clean_title(std::string text) {
        auto strip = [](char c) {
            return c == '"' || c == '\'' || c == ' ' || c == '\n' || c == '\r' || c == '.' ||
                   c == '*' || c == '#';
        };
        const auto nl = text.find('\n', text.find_first_not_of(" \n\r\"'*#"));
        if (nl != std::string::npos) {
            text.resize(nl);
        }
        while (!text.empty() && strip(text.back())) {
            text.pop_back();
        }
        std::size_t start = 0;
        while (start < text.size() && strip(text[start])) {
            ++start;
        }
        text = text.substr(start);
        if (text.size() > 80) {
            std::size_t cut = 80;
            while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
                --cut;  // not inside a UTF-8 sequence
            }
            text.resize(cut);
        }
        return text.empty() ? "New Conversation" : text;
    }

    json::object stage1_data() const {
        json::array results;
        for (const auto& a : answers_) {
            json::object item{{"model", a.model}, {"response", a.text}};
            if (a.error) {
                item["error"] = *a.error;
            }
            results.push_back(std::move(item));
        }
        return json::object{{"results", std::move(results)}};
    }

    json::array stage2_list() const {
        json::array stage2;
        for (const auto& r : rankings_) {
            if (r.model.empty()) {
                continue;  // stage 2 did not run
            }
            json::array labels(r.parsed.labels.begin(), r.parsed.labels.end());
            json::object item{{"model", r.model}, {"ranking", r.text}, {"parsed_ranking", labels}};
            if (r.error) {
                item["error"] = *r.error;
            }
            stage2.push_back(std::move(item));
        }
        return stage2;
    }

    net::awaitable<void> answer(std::size_t idx) {
        const auto& model = spec_.settings.members[idx];
        auto messages = spec_.history;
        messages.push_back({"user", spec_.question});
        answers_[idx] = co_await stepped(
            "stage1/" + model, model, std::move(messages), "stage1/" + model, "stage1.delta"
        );
        json::object done{{"model", model}};
        if (answers_[idx].error) {
            done["error"] = *answers_[idx].error;
        }
        co_await ctx_.emit("stage1.model_complete", json::serialize(done));
    }

    net::awaitable<void> rank(std::size_t idx) {
        const auto& members = spec_.settings.members;
        const auto& model = members[idx];
        std::vector<std::pair<std::string, std::string>> shown;
        std::string own;
        for (std::size_t pos = 0; pos < order_.size(); ++pos) {
            if (order_[pos] == idx) {
                own = label_of(pos);
                if (!spec_.settings.self_ranking) {
                    continue;
                }
            }
            shown.emplace_back(label_of(pos), answers_[order_[pos]].text);
        }
        std::vector<llm::chat_message> messages{{"user", ranking_prompt(spec_.question, shown)}};
        auto got = co_await stepped(
            "stage2/" + model, model, std::move(messages), "stage2/" + model, "stage2.delta"
        );
        ranking_outcome r;
        static_cast<outcome&>(r) = std::move(got);
        if (!r.error) {
            r.parsed = parse_ranking(r.text, order_.size());
            if (!spec_.settings.self_ranking && !own.empty()) {
                std::erase(r.parsed.labels, own);
            }
        }
        json::object done{{"model", model}};
        if (r.error) {
            done["error"] = *r.error;
        }
        rankings_[idx] = std::move(r);
        co_await ctx_.emit("stage2.model_complete", json::serialize(done));
    }

    net::awaitable<void> synthesize() {
        std::string p =
            "You are the Chairman of an LLM Council. Multiple AI models have provided responses "
            "to a user's question, and then ranked each other's responses.\n\nOriginal Question: " +
            spec_.question + "\n\nSTAGE 1 - Individual Responses:\n\n";
        for (const auto& a : answers_) {
            if (!a.error) {
                p += "Model: " + a.model + "\nResponse: " + a.text + "\n\n";
            }
        }
        p += "STAGE 2 - Peer Rankings:\n\n";
        for (const auto& r : rankings_) {
            if (!r.error) {
                p += "Model: " + r.model + "\nRanking: " + r.text + "\n\n";
            }
        }
        p += "Your task as Chairman is to synthesize all of this information into a single, "
             "comprehensive, accurate answer to the user's original question. Consider the "
             "individual responses and their insights, the peer rankings and what they reveal "
             "about response quality, and any patterns of agreement or disagreement.\n\n"
             "Provide a clear, well-reasoned final answer that represents the council's "
             "collective wisdom:";
        std::vector<std::string> chairs{spec_.settings.chairman};
        if (!spec_.settings.chairman_fallback.empty() &&
            spec_.settings.chairman_fallback != spec_.settings.chairman) {
            chairs.push_back(spec_.settings.chairman_fallback);
        }
        std::string errors;
        for (const auto& chair : chairs) {
            std::vector<llm::chat_message> messages{{"user", p}};
            auto got = co_await stepped(
                "stage3/" + chair, chair, std::move(messages), "stage3/" + chair, "stage3.delta"
            );
            if (!got.error) {
                final_ = std::move(got);
                co_return;
            }
            errors_.push_back({"stage3", chair, *got.error});
            errors += (errors.empty() ? "" : "; ") + chair + ": " + *got.error;
        }
        final_.model = chairs.back();
        final_.error = "the chairman failed (" + errors + ")";
    }

    json::object stage2_metadata() const {
        json::object labels;
        for (const auto& [label, model] : label_to_model_) {
            labels[label] = model;
        }
        json::array agg;
        for (const auto& a : aggregate_) {
            agg.push_back(json::object{
                {"model", a.model},
                {"average_rank", std::round(a.average_rank * 100) / 100},
                {"rankings_count", a.rankings_count}});
        }
        return json::object{
            {"label_to_model", std::move(labels)}, {"aggregate_rankings", std::move(agg)}};
    }

    json::object result() {
        json::array stage1;
        llm::usage total;
        bool simulated = false;
        auto count = [&](const outcome& o) {
            total.prompt_tokens += o.usage.prompt_tokens;
            total.completion_tokens += o.usage.completion_tokens;
            if (o.usage.cost) {
                total.cost = total.cost.value_or(0) + *o.usage.cost;
            }
            simulated = simulated || o.simulated;
        };
        for (const auto& a : answers_) {
            json::object item{{"model", a.model}, {"response", a.text}};
            if (a.error) {
                item["error"] = *a.error;
                errors_.push_back({"stage1", a.model, *a.error});
            } else {
                item["usage"] = usage_json(a.usage);
                count(a);
            }
            stage1.push_back(std::move(item));
        }
        for (const auto& r : rankings_) {
            if (r.model.empty()) {
                continue;
            }
            if (r.error) {
                errors_.push_back({"stage2", r.model, *r.error});
            } else {
                count(r);
            }
        }
        json::array stage2 = stage2_list();
        if (title_usage_) {
            count(*title_usage_);
        }
        json::object stage3{{"model", final_.model}, {"response", final_.text}};
        if (final_.error) {
            stage3["error"] = *final_.error;
        } else {
            count(final_);
        }
        auto metadata = stage2_metadata();
        json::array errors;
        for (const auto& e : errors_) {
            errors.push_back(json::object{
                {"stage", e.stage}, {"model", e.model}, {"message", e.message}});
        }
        metadata["errors"] = std::move(errors);
        metadata["usage"] = usage_json(total);
        metadata["simulated"] = simulated;
        if (!title_.empty()) {
            metadata["title"] = title_;
        }
        return json::object{
            {"stage1", std::move(stage1)},
            {"stage2", std::move(stage2)},
            {"stage3", std::move(stage3)},
            {"metadata", std::move(metadata)}};
    }

    struct member_error {
        std::string stage, model, message;
    };

    jobs::job_context& ctx_;
    const llm::providers& models_;
    spec spec_;
    std::vector<outcome> answers_;
    std::vector<ranking_outcome> rankings_;
    std::vector<std::size_t> order_;  // label position → member index
    std::map<std::string, std::string> label_to_model_;
    std::vector<aggregate_entry> aggregate_;
    outcome final_;
    std::vector<member_error> errors_;
    std::string title_;
    std::optional<outcome> title_usage_;
};

}  // namespace

council_settings simulated_council() {
    return council_settings{
        .members = {"sim:alpha", "sim:beta", "sim:gamma", "sim:delta"},
        .chairman = "sim:chair",
        .chairman_fallback = "sim:alpha",
        .title_model = "sim:title",
        .self_ranking = true,
    };
}

void add_council_type(
    jobs::registry& types, const llm::providers& models, const council_settings& defaults
) {
    types.add(jobs::type_config{
        .name = "council",
        .exec = jobs::executor::in_process,
        .run = [&models, &defaults](jobs::job_context& ctx) -> net::awaitable<std::string> {
            spec s;
            if (auto bad = parse_spec(json::parse(ctx.job().payload), defaults, &s)) {
                throw jobs::handler_error("bad_request", *bad, false);
            }
            council_run run(ctx, models, std::move(s));
            co_return co_await run.run();
        },
        .validate = [&defaults](const json::value& payload) -> std::optional<std::string> {
            return parse_spec(payload, defaults, nullptr);
        },
        .max_attempts = 3,
        .timeout_s = 1800,
    });
}

}  // namespace conclave::council
