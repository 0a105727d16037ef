// app/keys.hpp: API keys in the TOML configuration — reading them (`[[keys]]` tables with the
// key's SHA-256, never the key) and the `conclave keys create|list|revoke` commands, which edit
// the configuration file in place (appending or removing one `[[keys]]` table, leaving the rest
// of the file as written). A running server notices the change within seconds.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "core/error.hpp"
#include "http/auth.hpp"

namespace conclave::app {

// The [[keys]] of a parsed configuration. Errors: bad_request naming the key and field.
result<std::vector<http::api_key>> parse_keys(const toml::table& root);
// The [auth] table (token secret, default rate). Errors: bad_request.
std::optional<error> parse_auth(const toml::table& root, http::auth_options& out);

// Reads only the keys of `file` (for reloading). Errors: bad_request.
result<std::vector<http::api_key>> load_keys(const std::string& file);

int cmd_keys_create(
    const std::string& file, const std::string& name, const std::string& scopes, double rate_per_s
);
int cmd_keys_list(const std::string& file);
int cmd_keys_revoke(const std::string& file, const std::string& name);

}  // namespace conclave::app
