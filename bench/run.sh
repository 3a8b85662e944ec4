#!/usr/bin/env bash
# The benchmark in one command: builds the release server, starts the production setup on free
# loopback ports in a throwaway directory (PostgreSQL 15 with its normal durability settings,
# Redis with docker/redis/redis.conf, `exchanger serve`), then hands over to bench/bench.py,
# which seeds through the API/CLI, loads with wrk and writes bench/results/<UTC>.{md,json},
# then to bench/edge.py (fragment-bomb refusals, 5,000 idle connections) and bench/signin.py
# (logins under a read flood, RSS after 1,000 sign-ups, requestPasswordReset timing), which
# append their tables to that report. Everything started here is stopped by PID on exit. Exit
# status 1 when a check fails.
#
#   bash bench/run.sh                       # ~3 minutes after the build
#   BENCH_DURATION=3 bash bench/run.sh      # quick smoke run (seconds per measurement)
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in wrk redis-server redis-benchmark redis-cli curl python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done

echo "== cargo build --release (server) and the argon2_rate example" >&2
cargo build --release
cargo build --release --example argon2_rate
target_dir=${CARGO_TARGET_DIR:-target}
exchanger="$target_dir/release/exchanger"
argon2_rate="$target_dir/release/examples/argon2_rate"

work=$(mktemp -d /tmp/exchanger-bench.XXXXXX)
chmod 755 "$work"
pg_started=""
redis_pid_file="$work/redis/redis.pid"
server_pid=""
bench_pid=""

# The directory of the real binaries (initdb on PATH may be a symlink): createdb is there too.
pg_bin=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")")
# initdb refuses to run as root: the cluster runs as an unprivileged user.
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); else as_pg=(); fi

stop_pid() { # pid: TERM, up to 10 s for a graceful exit, then KILL
    kill "$1" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
}

cleanup() {
    status=$?
    trap - EXIT INT TERM
    [ -n "$bench_pid" ] && stop_pid "$bench_pid"
    [ -n "$server_pid" ] && stop_pid "$server_pid"
    if [ "$status" -ne 0 ] && [ -s "$work/server.log" ]; then
        echo "== last lines of the server log (RUST_LOG=warn)" >&2
        tail -n 20 "$work/server.log" >&2
    fi
    [ -n "$pg_started" ] && { "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null 2>&1 || true; }
    [ -f "$redis_pid_file" ] && stop_pid "$(cat "$redis_pid_file")"
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

echo "== PostgreSQL, Redis and the server in $work" >&2
pg_port=$(free_port)
mkdir -p "$work/pg" "$work/sock" "$work/redis"
[ ${#as_pg[@]} -gt 0 ] && chown postgres "$work/pg" "$work/sock"
# --no-sync only skips initdb's own final sync; the server keeps fsync, synchronous_commit
# and full_page_writes at their (production) defaults.
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
pg_started=1
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/sock/pg.log" -w start \
    -o "-p $pg_port -k $work/sock -c listen_addresses=127.0.0.1" >/dev/null
for db in exchanger_identity exchanger_web; do
    "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres "$db"
done

redis_port=$(free_port)
redis-server docker/redis/redis.conf --port "$redis_port" --bind 127.0.0.1 --protected-mode yes \
    --dir "$work/redis" --daemonize yes --pidfile "$redis_pid_file" --logfile "$work/redis/redis.log"
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

# bench/edge.py holds 5,000 idle connections. The server raises its soft open-files limit to
# the hard one and lowers MAX_CONNECTIONS (10,000) to that limit less 112 for its pools: start
# it (and edge.py) under a hard limit that keeps the default cap.
need_files=10240
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$need_files" ]; then
    ulimit -Hn "$need_files" 2>/dev/null ||
        echo "bench: open-files hard limit $(ulimit -Hn) < $need_files (edge.py will report it)" >&2
fi
ulimit -Sn "$(ulimit -Hn)"

server_port=$(free_port)
export DATABASE_IDENTITY_URL="postgres://postgres@127.0.0.1:$pg_port/exchanger_identity"
export DATABASE_WEB_URL="postgres://postgres@127.0.0.1:$pg_port/exchanger_web"
export REDIS_URL="redis://127.0.0.1:$redis_port"
export BIND_ADDR="127.0.0.1:$server_port" COOKIE_SECURE=false LOG_FORMAT=json RUST_LOG=warn
# A throwaway key for this run's throwaway databases.
SECRET_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export SECRET_KEY
export LOGIN_MAX_FAILURES_PER_ACCOUNT=1000000 LOGIN_MAX_FAILURES_PER_IP=1000000
# bench/signin.py signs up 1,001 accounts and asks for 60 resets from this one address.
export SIGNUP_MAX_PER_IP=100000 PASSWORD_RESET_MAX_PER_IP=100000
"$exchanger" serve >"$work/server.log" 2>&1 &
server_pid=$!
url="http://127.0.0.1:$server_port"
for _ in $(seq 600); do
    curl -fsS "$url/readyz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { echo "bench: the server exited" >&2; exit 3; }
    sleep 0.1
done
curl -fsS "$url/readyz" >/dev/null || { echo "bench: the server is not ready after 60 s" >&2; exit 3; }

echo "== benchmark against $url" >&2
touch "$work/started"
# In the background and waited for, so that an interrupt reaches the trap at once.
python3 bench/bench.py --url "$url" --redis-port "$redis_port" \
    --exchanger "$exchanger" --argon2-rate "$argon2_rate" &
bench_pid=$!
bench_status=0
wait "$bench_pid" || bench_status=$?
bench_pid=""
[ "$bench_status" -le 1 ] || exit "$bench_status" # the harness broke: no report to add to

echo "== edge: fragment bomb and idle connections against $url" >&2
report=$(find bench/results -maxdepth 1 -name '*.md' -newer "$work/started" | sort | tail -n 1)
[ -n "$report" ] || { echo "bench: bench.py wrote no report" >&2; exit 3; }
python3 bench/edge.py --url "$url" --pid "$server_pid" --append "$report" &
bench_pid=$!
edge_status=0
wait "$bench_pid" || edge_status=$?
bench_pid=""
[ "$edge_status" -le 1 ] || exit "$edge_status"

echo "== sign-in: logins under a read flood, 1,000 sign-ups, reset timing against $url" >&2
python3 bench/signin.py --url "$url" --pid "$server_pid" --append "$report" &
bench_pid=$!
signin_status=0
wait "$bench_pid" || signin_status=$?
bench_pid=""
[ "$signin_status" -le 1 ] || exit "$signin_status"
echo "== report: $report" >&2
exit $((bench_status | edge_status | signin_status))
