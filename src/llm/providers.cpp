#include "llm/provider.hpp"

namespace conclave::llm {

void providers::add(std::string name, std::shared_ptr<provider> p) {
    by_name_[std::move(name)] = std::move(p);
}

result<providers::route> providers::find(const std::string& model_id) const {
    const auto colon = model_id.find(':');
    if (colon != std::string::npos) {
        auto it = by_name_.find(model_id.substr(0, colon));
        if (it != by_name_.end()) {
            return route{it->second.get(), model_id.substr(colon + 1)};
        }
    }
    auto it = by_name_.find(default_);
    if (it == by_name_.end()) {
        std::string known;
        for (const auto& [name, p] : by_name_) {
            known += (known.empty() ? "" : ", ") + name;
        }
        return fail(
            errc::bad_request,
            "model '" + model_id + "' names no configured provider (known: " + known + ")"
        );
    }
    return route{it->second.get(), model_id};
}

}  // namespace conclave::llm
