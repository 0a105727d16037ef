#include "llm/metered_provider.hpp"

#include <chrono>
#include <mutex>
#include <set>

#include "core/metrics.hpp"

namespace conclave::llm {
namespace {

constexpr std::size_t max_models = 100;

class metered_provider final : public provider {
public:
    metered_provider(std::string name, std::shared_ptr<provider> inner)
        : name_(std::move(name)),
          inner_(std::move(inner)),
          duration_(metrics::global().histogram(
              "conclave_llm_call_duration_seconds",
              metrics::duration_buckets(),
              {{"provider", name_}},
              "LLM calls from request to last token (retries included), by provider"
          )) {}

    net::awaitable<result<completion>> stream(chat_request request, delta_sink on_delta) override {
        const auto model = model_label(request.model);
        auto& registry = metrics::global();
        registry
            .counter(
                "conclave_llm_calls_total",
                {{"provider", name_}, {"model", model}},
                "LLM calls, by provider and model"
            )
            .inc();
        const auto started = std::chrono::steady_clock::now();
        result<completion> done = fail(errc::internal, "not called");
        try {
            auto call = inner_->stream(std::move(request), std::move(on_delta));
            done = co_await std::move(call);
        } catch (...) {
            count_error(model, "exception");
            throw;
        }
        duration_.observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
        );
        if (!done) {
            count_error(model, to_string(done.error().code));
            co_return done;
        }
        const auto& used = done->usage;
        tokens(model, "prompt")
            .inc(static_cast<std::uint64_t>(std::max<std::int64_t>(0, used.prompt_tokens)));
        tokens(model, "completion")
            .inc(static_cast<std::uint64_t>(std::max<std::int64_t>(0, used.completion_tokens)));
        if (used.cost && *used.cost > 0) {
            registry
                .counter(
                    "conclave_llm_cost_usd_total",
                    {{"provider", name_}, {"model", model}},
                    "USD the providers reported for LLM calls, by provider and model"
                )
                .add(*used.cost);
        }
        co_return done;
    }

    bool simulated() const override { return inner_->simulated(); }

private:
    std::string model_label(const std::string& model) {
        std::lock_guard lock(mutex_);
        if (models_.contains(model)) {
            return model;
        }
        if (models_.size() >= max_models) {
            return "other";
        }
        models_.insert(model);
        return model;
    }

    metrics::counter& tokens(const std::string& model, const char* kind) {
        return metrics::global().counter(
            "conclave_llm_tokens_total",
            {{"provider", name_}, {"model", model}, {"kind", kind}},
            "LLM tokens used, by provider, model and kind (prompt, completion)"
        );
    }

    void count_error(const std::string& model, const char* code) {
        metrics::global()
            .counter(
                "conclave_llm_errors_total",
                {{"provider", name_}, {"model", model}, {"code", code}},
                "LLM calls that failed, by provider, model and error code"
            )
            .inc();
    }

    std::string name_;
    std::shared_ptr<provider> inner_;
    metrics::histogram& duration_;
    std::mutex mutex_;
    std::set<std::string> models_;
};

}  // namespace

std::shared_ptr<provider> metered(std::string name, std::shared_ptr<provider> inner) {
    return std::make_shared<metered_provider>(std::move(name), std::move(inner));
}

}  // namespace conclave::llm
