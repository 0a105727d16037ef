# Conclave — the two commands: `make run` and `make test`.
SHELL := /bin/bash
ARGS ?=

.PHONY: all deps build run test bench format clean

all: build

deps:
	@scripts/install-deps.sh

# The release server at build/bin/conclave (build/bin links into the release preset's tree),
# with the web UI (web/dist, built by npm + Vite) embedded.
build: deps
	@scripts/build-web.sh
	@cmake --preset release >/dev/null
	@cmake --build build/release -j $$(nproc)
	@ln -sfn release/bin build/bin

# Starts the server on SQLite (./data/conclave.db) at http://127.0.0.1:8080. ARGS="--listen …" to change.
run: build
	build/bin/conclave serve $(ARGS)

test:
	@scripts/install-deps.sh --test
	@scripts/test.sh

bench: build
	@bench/run.sh

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf build
