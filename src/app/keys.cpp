#include "app/keys.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "app/toml_integer.hpp"

namespace conclave::app {
namespace {

// Long enough for any use, short enough that now + ttl never overflows.
constexpr std::int64_t max_token_ttl_limit_s = 10LL * 365 * 24 * 3600;

error bad(std::string message) {
    return fail(errc::bad_request, std::move(message));
}

bool valid_name(const std::string& name) {
    if (name.empty() || name.size() > 64) {
        return false;
    }
    for (const char c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
            return false;
        }
    }
    return true;
}

std::string read_file(const std::string& file) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

result<std::vector<http::api_key>> parse_keys(const toml::table& root) {
    std::vector<http::api_key> keys;
    const auto* node = root.get("keys");
    if (node == nullptr) {
        return keys;
    }
    const auto* list = node->as_array();
    if (list == nullptr) {
        return bad("config: 'keys' must be an array of tables ([[keys]])");
    }
    std::set<std::string> names;
    for (const auto& item : *list) {
        const auto* t = item.as_table();
        if (t == nullptr) {
            return bad("config: 'keys' must be an array of tables ([[keys]])");
        }
        for (const auto& [k, v] : *t) {
            const std::string field(k.str());
            if (field != "name" && field != "sha256" && field != "scopes" &&
                field != "rate_per_s" && field != "created") {
                return bad("config: unknown key 'keys." + field + "'");
            }
        }
        http::api_key key;
        key.name = t->get("name") ? t->get("name")->value_or(std::string()) : std::string();
        if (!valid_name(key.name) || !names.insert(key.name).second) {
            return bad(
                "config: each [[keys]] needs a unique 'name' of letters, digits, '-', '_' or '.'"
            );
        }
        key.sha256 = t->get("sha256") ? t->get("sha256")->value_or(std::string()) : std::string();
        if (key.sha256.size() != 64 ||
            key.sha256.find_first_not_of("0123456789abcdef") != std::string::npos) {
            return bad(
                "config: keys." + key.name +
                ".sha256 must be the key's SHA-256 in lowercase hex (conclave keys create writes "
                "it)"
            );
        }
        const auto* scopes = t->get_as<toml::array>("scopes");
        if (scopes == nullptr || scopes->empty()) {
            return bad(
                "config: keys." + key.name + ".scopes must list read, submit, worker or admin"
            );
        }
        std::string joined;
        for (const auto& s : *scopes) {
            joined += (joined.empty() ? "" : ",") + s.value_or(std::string("?"));
        }
        auto bits = http::parse_scopes(joined);
        if (!bits) {
            return bad("config: keys." + key.name + ": " + bits.error().message);
        }
        key.scopes = *bits;
        if (const auto* rate = t->get("rate_per_s")) {
            auto value = rate->value<double>();
            // isfinite: NaN passes a `< 0` test, and toml reads `nan` and `inf`.
            if (!value || !std::isfinite(*value) || *value < 0) {
                return bad("config: keys." + key.name + ".rate_per_s must be a number >= 0");
            }
            key.rate_per_s = *value;
        }
        keys.push_back(std::move(key));
    }
    return keys;
}

std::optional<error> parse_auth(const toml::table& root, http::auth_options& out) {
    const auto* auth = root["auth"].as_table();
    if (auth == nullptr) {
        return std::nullopt;
    }
    for (const auto& [k, v] : *auth) {
        const std::string field(k.str());
        if (field == "token_secret") {
            auto secret = v.value<std::string>();
            if (!secret || secret->size() < 32) {
                return bad("config: 'auth.token_secret' must be a string of at least 32 characters"
                );
            }
            out.token_secret = *secret;
        } else if (field == "rate_per_s" || field == "burst_s") {
            auto value = v.value<double>();
            if (!value || !std::isfinite(*value) || *value < 0) {
                return bad("config: 'auth." + field + "' must be a number >= 0");
            }
            (field == "rate_per_s" ? out.rate_per_s : out.burst_s) = *value;
        } else if (field == "max_token_ttl_s") {
            auto value = toml_integer(v);
            if (!value || *value < 1 || *value > max_token_ttl_limit_s) {
                return bad(
                    "config: 'auth.max_token_ttl_s' must be an integer from 1 to " +
                    std::to_string(max_token_ttl_limit_s) + " (ten years)"
                );
            }
            out.max_token_ttl_s = *value;
        } else {
            return bad("config: unknown key 'auth." + field + "'");
        }
    }
    return std::nullopt;
}

result<std::vector<http::api_key>> load_keys(const std::string& file) {
    try {
        return parse_keys(toml::parse_file(file));
    } catch (const toml::parse_error& e) {
        return bad("config " + file + ": " + std::string(e.description()));
    }
}

int cmd_keys_create(
    const std::string& file, const std::string& name, const std::string& scopes, double rate_per_s
) {
    if (!valid_name(name)) {
        std::cerr << "error: a key name is 1-64 letters, digits, '-', '_' or '.'\n";
        return 2;
    }
    auto bits = http::parse_scopes(scopes);
    if (!bits || *bits == 0) {
        std::cerr << "error: " << (bits ? "no scopes given" : bits.error().message) << "\n";
        return 2;
    }
    if (std::filesystem::exists(file)) {
        auto existing = load_keys(file);
        if (!existing) {
            std::cerr << "error: " << existing.error().message << "\n";
            return 1;
        }
        for (const auto& k : *existing) {
            if (k.name == name) {
                std::cerr << "error: a key named '" << name << "' exists; revoke it first\n";
                return 1;
            }
        }
    }
    const auto [key, hash] = http::new_api_key();
    std::string list;
    for (const auto& s : {"read", "submit", "worker", "admin"}) {
        if (http::scopes_text(*bits).find(s) != std::string::npos) {
            list += std::string(list.empty() ? "" : ", ") + "\"" + s + "\"";
        }
    }
    std::ostringstream block;
    block << "\n[[keys]]\nname = \"" << name << "\"\nsha256 = \"" << hash << "\"\nscopes = ["
          << list << "]\n";
    if (rate_per_s > 0) {
        block << "rate_per_s = " << rate_per_s << "\n";
    }
    std::ofstream out(file, std::ios::app);
    out << block.str();
    out.close();
    if (!out) {
        std::cerr << "error: cannot write " << file << "\n";
        return 1;
    }
    std::cerr << "added key '" << name << "' (" << http::scopes_text(*bits) << ") to " << file
              << "; it is shown once, keep it:\n";
    std::cout << key << "\n";
    return 0;
}

int cmd_keys_list(const std::string& file) {
    auto keys = load_keys(file);
    if (!keys) {
        std::cerr << "error: " << keys.error().message << "\n";
        return 1;
    }
    if (keys->empty()) {
        std::cout << "no keys in " << file << " (the server is open, on loopback only)\n";
        return 0;
    }
    for (const auto& k : *keys) {
        std::cout << k.name << "  " << http::scopes_text(k.scopes)
                  << "  sha256:" << k.sha256.substr(0, 12) << "…";
        if (k.rate_per_s > 0) {
            std::cout << "  " << k.rate_per_s << "/s";
        }
        std::cout << "\n";
    }
    return 0;
}

int cmd_keys_revoke(const std::string& file, const std::string& name) {
    // Removes the [[keys]] table whose name is `name`: from its header to the next table header.
    std::istringstream in(read_file(file));
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    auto is_header = [](const std::string& line) {
        const auto first = line.find_first_not_of(" \t");
        return first != std::string::npos && line[first] == '[';
    };
    std::vector<std::string> kept;
    bool removed = false;
    for (std::size_t idx = 0; idx < lines.size();) {
        const auto first = lines[idx].find_first_not_of(" \t");
        if (first != std::string::npos && lines[idx].compare(first, 8, "[[keys]]") == 0) {
            std::size_t end = idx + 1;
            while (end < lines.size() && !is_header(lines[end])) {
                ++end;
            }
            bool match = false;
            for (std::size_t k = idx + 1; k < end; ++k) {
                try {
                    auto t = toml::parse(lines[k]);
                    if (auto n = t["name"].value<std::string>(); n && *n == name) {
                        match = true;
                    }
                } catch (const toml::parse_error&) {
                }
            }
            if (match) {
                removed = true;
                while (!kept.empty() && kept.back().empty()) {
                    kept.pop_back();  // the blank line written before the table
                }
                idx = end;
                continue;
            }
        }
        kept.push_back(lines[idx]);
        ++idx;
    }
    if (!removed) {
        std::cerr << "error: no key named '" << name << "' in " << file << "\n";
        return 1;
    }
    const auto tmp = file + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        for (const auto& line : kept) {
            out << line << "\n";
        }
        if (!out) {
            std::cerr << "error: cannot write " << tmp << "\n";
            return 1;
        }
    }
    std::filesystem::rename(tmp, file);
    std::cerr << "revoked key '" << name << "' in " << file
              << " (a running server stops accepting it within seconds)\n";
    return 0;
}

}  // namespace conclave::app
