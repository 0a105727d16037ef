// app/serve.hpp: `conclave serve` — the composition root, the only place that names a backend.
#pragma once

#include "app/config.hpp"

namespace conclave::app {

// Runs the server until SIGINT or SIGTERM. Prints "conclave listening on http://HOST:PORT" on
// stdout once it accepts requests. Returns the process exit code.
int serve(const app_config& config);

}  // namespace conclave::app
