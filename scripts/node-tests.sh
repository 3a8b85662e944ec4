#!/usr/bin/env bash
# Node tests against one running server: starts the server on the embedded default (a
# throwaway DATA_DIR, a free loopback port, no other configuration), then runs, in order,
# against it (BASE_URL):
#
#   tests/node/audit.mjs          graphql-http's GraphQL-over-HTTP server audit, every audit ok
#   tests/node/introspection.mjs  the introspected schema is the committed schema.graphql
#   tests/node/graphiql.mjs       GraphiQL in headless Chromium (Debian's /usr/bin/chromium)
#
# and stops the server. Fails if any of them fails (all three run regardless).
#
# Needs node/npm, and chromium for graphiql.mjs (`apt-get install -y chromium`). Builds
# target/debug/exchanger with cargo unless EXCHANGER_BIN names a binary to test instead.
set -euo pipefail
if [ -n "${EXCHANGER_BIN:-}" ]; then EXCHANGER_BIN=$(realpath "$EXCHANGER_BIN"); fi
cd "$(dirname "$0")/.."
root=$PWD

# Node dependencies, exactly as locked; skipped when already installed from this lock file.
stamp=tests/node/node_modules/.installed-from-lock
lock_sum=$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
    (cd tests/node && timeout 300 npm ci --ignore-scripts --no-audit --no-fund)
    echo "$lock_sum" >"$stamp"
fi

if [ -z "${EXCHANGER_BIN:-}" ]; then
    cargo build --bin exchanger
    EXCHANGER_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/exchanger"
fi

work=$(mktemp -d /tmp/exchanger-node.XXXXXX)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base_url="http://127.0.0.1:$port"

# A clean environment and a working directory without a .env: the embedded default.
(cd "$work" && exec env -i PATH="$PATH" HOME="$work" BIND_ADDR="127.0.0.1:$port" DATA_DIR="$work/data" \
    "$EXCHANGER_BIN" serve >"$work/server.log" 2>&1) &
server_pid=$!

for _ in $(seq 300); do
    curl -fsS "$base_url/healthz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { echo "FAIL: the server exited:" >&2; cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
curl -fsS "$base_url/healthz" >/dev/null || { echo "FAIL: no /healthz after 30 s:" >&2; cat "$work/server.log" >&2; exit 1; }

failed=()
run() { # name, time limit in seconds, script
    echo "== $1 against $base_url"
    if ! BASE_URL="$base_url" timeout "$2" node "tests/node/$3"; then
        failed+=("$3")
    fi
}
run "GraphQL-over-HTTP audit" 120 audit.mjs
run "introspection against schema.graphql" 60 introspection.mjs
if [ -x /usr/bin/chromium ]; then
    run "GraphiQL in Chromium" 180 graphiql.mjs
else
    echo "FAIL: /usr/bin/chromium is missing (apt-get install -y chromium)" >&2
    failed+=(graphiql.mjs)
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "== server log" >&2
    tail -n 50 "$work/server.log" >&2
    echo "FAIL: ${failed[*]}" >&2
    exit 1
fi
echo "PASS: audit.mjs, introspection.mjs, graphiql.mjs"
