#!/usr/bin/env bash
# scripts/with-postgres.sh CMD…: runs CMD with a throwaway PostgreSQL and
# CONCLAVE_TEST_PG_URL=postgresql://postgres@127.0.0.1:PORT/conclave_test pointing at it.
#
# The server is Debian's (the newest /usr/lib/postgresql/*/bin), initialised in a temp dir with
# its socket in that dir, listening on 127.0.0.1 only, on a free port, trust auth for local
# connections only, fsync on (the store's throughput is measured durable), max_connections 300.
# Run as root, the server runs as the `postgres` user; CMD runs as the caller. The server is a
# child of this script (not daemonised), so when CMD ends, fails or is interrupted it is stopped
# and reaped and the dir removed: nothing is left running. Exits with CMD's status.
set -euo pipefail

if [ $# -eq 0 ]; then
    echo "usage: $0 CMD [ARG…]" >&2
    exit 2
fi

bindir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null |
    sort -V | tail -n 1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/postgres" ]; then
    echo "with-postgres.sh: no PostgreSQL server under /usr/lib/postgresql" \
        "(scripts/install-deps.sh installs Debian's postgresql)" >&2
    exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/conclave-pg-XXXXXX")
data="$tmp/data"
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$tmp"
    as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi
# The server's tools run from inside the temp dir: as `postgres` the caller's dir may be closed.
pg() { (cd "$tmp" && exec "${as_pg[@]}" "$@"); }

server_pid=""
stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -INT "$server_pid" 2>/dev/null || true  # fast shutdown
    for _ in $(seq 1 300); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -QUIT "$server_pid" 2>/dev/null || true  # immediate shutdown, if still there
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    stop_server
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

pg "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    --no-sync >"$tmp/initdb.log" 2>&1 || {
    cat "$tmp/initdb.log" >&2
    exit 1
}
# initdb's --auth=trust writes pg_hba.conf lines for the socket and loopback only.

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for attempt in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    if port_in_use "$port"; then
        continue
    fi
    # exec: $! is the postmaster itself, which stop_server signals and reaps.
    (cd "$tmp" && exec "${as_pg[@]}" "$bindir/postgres" -D "$data" -p "$port" -k "$tmp" \
        -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on \
        >"$tmp/server.log" 2>&1) &
    server_pid=$!
    for _ in $(seq 1 600); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid" 2>/dev/null || true
            server_pid=""
            break
        fi
        if pg "$bindir/pg_isready" -q -h "$tmp" -p "$port" -U postgres -d postgres; then
            break
        fi
        sleep 0.1
    done
    if [ -n "$server_pid" ]; then
        break
    fi
    if ! grep -q "could not bind\|could not create any TCP/IP sockets" "$tmp/server.log"; then
        cat "$tmp/server.log" >&2
        echo "with-postgres.sh: the server did not start (attempt $attempt)" >&2
        exit 1
    fi
done
if [ -z "$server_pid" ]; then
    echo "with-postgres.sh: found no free port in 20 tries" >&2
    exit 1
fi

pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$tmp" -p "$port" -U postgres -d postgres \
    -c "CREATE DATABASE conclave_test" >/dev/null

export CONCLAVE_TEST_PG_URL="postgresql://postgres@127.0.0.1:$port/conclave_test"
echo "with-postgres.sh: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on" \
    "127.0.0.1:$port ($tmp)" >&2

set +e
"$@"
status=$?
set -e
exit "$status"
