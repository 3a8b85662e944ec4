#!/usr/bin/env bash
# The whole test suite: unit tests and the API tests on the embedded default, the node tests
# (scripts/node-tests.sh: GraphQL-over-HTTP audit, introspection against schema.graphql,
# GraphiQL in headless Chromium) against the binary those tests built, then the API tests
# again on real PostgreSQL + Redis, started here on free loopback ports in throwaway
# directories and removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/exchanger-test.XXXXXX)
chmod 755 "$work"
pg_pid_file="$work/pg/postmaster.pid"
redis_pid_file="$work/redis.pid"

pg_bin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
# initdb refuses to run as root: the cluster runs as an unprivileged user.
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); else as_pg=(); fi

cleanup() {
    bash scripts/redis-cluster.sh "$work/cluster" stop >/dev/null 2>&1 || true
    if [ -f "$pg_pid_file" ]; then "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true; fi
    if [ -f "$redis_pid_file" ]; then
        redis_pid=$(cat "$redis_pid_file")
        kill "$redis_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

echo "== unit tests and API tests on the embedded default"
TEST_BACKEND=embedded cargo nextest run --workspace --no-fail-fast

echo "== docker-compose.yml validates (without a Docker engine)"
bash scripts/compose-check.sh

echo "== node tests against the server those tests built"
EXCHANGER_BIN="${CARGO_TARGET_DIR:-target}/debug/exchanger" bash scripts/node-tests.sh

echo "== starting PostgreSQL and Redis in $work"
pg_port=$(free_port)
mkdir -p "$work/pg" "$work/sock" "$work/redis"
[ ${#as_pg[@]} -gt 0 ] && chown postgres "$work/pg" "$work/sock"
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/sock/pg.log" -w start -o \
    "-p $pg_port -k $work/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" >/dev/null

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/redis" \
    --daemonize yes --pidfile "$redis_pid_file" --logfile "$work/redis/redis.log"
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "== API tests on PostgreSQL + Redis"
TEST_BACKEND=postgres \
TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres" \
TEST_REDIS_URL="redis://127.0.0.1:$redis_port" \
    cargo nextest run --test api --no-fail-fast

echo "== API tests on PostgreSQL + a 3-master Redis Cluster"
cluster_nodes=$(bash scripts/redis-cluster.sh "$work/cluster")
TEST_BACKEND=postgres \
TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres" \
TEST_REDIS_CLUSTER_NODES="$cluster_nodes" \
    cargo nextest run --test api --no-fail-fast
