// web/routes.hpp: serving the embedded browser UI (web/assets.hpp).
#pragma once

#include "http/router.hpp"

namespace conclave::web {

// Makes the UI the router's fallback, so every API route wins over it:
// - GET|HEAD / and /index.html → index.html, `Cache-Control: no-cache`;
// - GET|HEAD /assets/NAME → the file (vite puts a content hash in these names), cached for a
//   year as immutable; other top-level files of web/dist (favicon.svg…) with `no-cache`;
// - every file with its ETag; a matching If-None-Match → 304;
// - client-side routes (/jobs, /jobs/ID, /c/ID…): a GET|HEAD whose Accept names text/html,
//   outside /assets, /v1, /api, /healthz, /readyz and /metrics → index.html;
// - anything else (an unknown /assets/… file, a `.` or `..` segment) → the usual JSON 404.
void add_web_routes(http::router& routes);

}  // namespace conclave::web
