#!/usr/bin/env bash
# Builds the web UI into web/dist (which CMake embeds into the conclave binary): installs the
# npm packages from the lockfile when they changed, then type-checks and bundles with Vite.
# Skips the bundle when web/dist is newer than every source. Needs Node.js >= 20.19
# (scripts/install-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/../web"

if ! command -v node >/dev/null || ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
    echo "build-web: Node.js >= 20.19 is needed to build the UI (found: $(node --version 2>/dev/null || echo none))." >&2
    echo "build-web: install it (e.g. Debian's nodejs from bookworm-backports or NodeSource), then run make again." >&2
    exit 1
fi

# npm ci when node_modules is missing or older than the lockfile. (package.json pins rollup
# with an override: the registry this project can reach lacks the platform packages of the
# newest rollup releases, and a lockfile missing them makes npm ci refuse.)
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi

if [ -f dist/index.html ] && [ -z "$(find src public index.html package-lock.json vite.config.ts tsconfig.json -newer dist/index.html -print -quit)" ]; then
    exit 0  # up to date
fi
npm run --silent build
