// http/guard.hpp: the router's access guard built on an authenticator, and the route that
// issues subscribe tokens.
#pragma once

#include "http/auth.hpp"
#include "http/router.hpp"

namespace conclave::http {

// Checks every matched route: the caller's key and scope (401, 403), its rate (429 with
// Retry-After), and for a subscribe token the topics the request reads.
route_guard access_guard(authenticator& auth);

// POST /v1/tokens/subscribe {topics: [..], ttl_s?} → 201 {token, topics, expires_at}.
void add_token_route(router& routes, authenticator& auth);

}  // namespace conclave::http
