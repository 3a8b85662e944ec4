#!/usr/bin/env bash
# Throwaway N-master Redis Cluster on 127.0.0.1 (default N=3, no replicas).
#
#   redis-cluster.sh DIR          start; prints "redis://127.0.0.1:p1,redis://127.0.0.1:p2,..." on stdout
#   redis-cluster.sh DIR stop     kill only the redis-server PIDs recorded in DIR/*.pid
#
# Or source it and call redis_cluster_start DIR / redis_cluster_stop DIR.
# Env: REDIS_CLUSTER_SIZE (default 3), REDIS_CLUSTER_TIMEOUT (default 20 s),
#      REDIS_CLUSTER_NODE_TIMEOUT (cluster-node-timeout ms, default 15000).
# Diagnostics go to stderr; node logs are in DIR/node-PORT.log.

_rc_log() { echo "redis-cluster: $*" >&2; }

# 0 if 127.0.0.1:$1 (TCP) can be bound now.
_rc_port_free() {
  python3 -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

# Pick a port p such that p and p+10000 (cluster bus) are free and not already chosen.
_rc_pick_port() {
  local p i
  for i in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 30000 ))          # 20000..49999, bus port <= 59999
    case " ${_RC_CHOSEN:-} " in *" $p "*) continue ;; esac
    if _rc_port_free "$p" && _rc_port_free $((p + 10000)); then
      echo "$p"; return 0
    fi
  done
  return 1
}

# Is $1 a live redis-server process? (guards against PID reuse)
_rc_is_redis_pid() {
  [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'redis-server'
}

redis_cluster_stop() {
  local dir=${1:?usage: redis_cluster_stop DIR} f pid pids=() i
  for f in "$dir"/node-*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null)
    if _rc_is_redis_pid "$pid"; then
      kill -CONT "$pid" 2>/dev/null   # in case a test left it SIGSTOPped
      kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    fi
  done
  for i in $(seq 1 50); do               # up to 5 s for a clean exit
    local alive=()
    for pid in "${pids[@]}"; do _rc_is_redis_pid "$pid" && alive+=("$pid"); done
    pids=("${alive[@]}")
    [ ${#pids[@]} -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do _rc_log "pid $pid did not exit, SIGKILL"; kill -KILL "$pid" 2>/dev/null; done
  rm -f "$dir"/node-*.pid
  return 0
}

redis_cluster_start() {
  local dir=${1:?usage: redis_cluster_start DIR}
  local n=${REDIS_CLUSTER_SIZE:-3} budget=${REDIS_CLUSTER_TIMEOUT:-20}
  local node_timeout=${REDIS_CLUSTER_NODE_TIMEOUT:-15000}
  local deadline=$(( SECONDS + budget )) ports=() addrs=() urls=() p i ok left
  mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
  _RC_CHOSEN=""

  _rc_fail() { _rc_log "$*"; redis_cluster_stop "$dir"; return 1; }

  for i in $(seq 1 "$n"); do
    p=$(_rc_pick_port) || { _rc_fail "no free port"; return 1; }
    _RC_CHOSEN="$_RC_CHOSEN $p"
    ports+=("$p")
    timeout 5 redis-server \
      --port "$p" --bind 127.0.0.1 --protected-mode no \
      --cluster-enabled yes --cluster-config-file "nodes-$p.conf" \
      --cluster-node-timeout "$node_timeout" \
      --dir "$dir" --save '' --appendonly no \
      --daemonize yes --pidfile "$dir/node-$p.pid" --logfile "$dir/node-$p.log" \
      || { _rc_fail "redis-server on port $p failed"; return 1; }
  done

  # wait until every node answers PING and wrote its pidfile
  for p in "${ports[@]}"; do
    until [ -s "$dir/node-$p.pid" ] && [ "$(timeout 1 redis-cli -h 127.0.0.1 -p "$p" ping 2>/dev/null)" = PONG ]; do
      [ $SECONDS -ge $deadline ] && { _rc_fail "node $p did not come up (see $dir/node-$p.log)"; return 1; }
      sleep 0.1
    done
    addrs+=("127.0.0.1:$p")
    urls+=("redis://127.0.0.1:$p")
  done

  left=$(( deadline - SECONDS )); [ $left -lt 1 ] && left=1
  timeout "$left" redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 \
    || { _rc_fail "cluster create failed (see $dir/create.log)"; return 1; }

  # wait for cluster_state:ok on every node
  while :; do
    ok=1
    for p in "${ports[@]}"; do
      timeout 1 redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || { ok=0; break; }
    done
    [ $ok = 1 ] && break
    [ $SECONDS -ge $deadline ] && { _rc_fail "cluster_state not ok after ${budget}s"; return 1; }
    sleep 0.1
  done

  (IFS=,; echo "${urls[*]}")
}

# Executed (not sourced)?
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -u
  case "${2:-start}" in
    start) redis_cluster_start "${1:?usage: $0 DIR [start|stop]}" ;;
    stop)  redis_cluster_stop  "${1:?usage: $0 DIR [start|stop]}" ;;
    *) echo "usage: $0 DIR [start|stop]" >&2; exit 2 ;;
  esac
fi
