#!/usr/bin/env python3
"""Seeds a running exchanger server, loads it with wrk, and reports against the targets.

Started by bench/run.sh once PostgreSQL, Redis and the release server are up (the
environment carries DATABASE_*_URL and REDIS_URL for the `exchanger rates set` CLI call).
Standard library only. Writes bench/results/<UTC timestamp>.md and .json and exits 1 when a
check fails (a missed target or any error).

Settings: BENCH_DURATION (seconds per measurement, default 10) and BENCH_WARMUP (seconds of
the discarded warm-up run before each, default 2).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA_DIR = ROOT / "bench" / "lua"
RESULTS_DIR = ROOT / "bench" / "results"
COMMAND = " ".join([*(f"{name}={os.environ[name]}" for name in ("BENCH_DURATION", "BENCH_WARMUP")
                      if name in os.environ), "bash bench/run.sh"])

DURATION_S = int(os.environ.get("BENCH_DURATION", "10"))
WARMUP_S = int(os.environ.get("BENCH_WARMUP", "2"))
WRK_THREADS = 2
READ_CONNECTIONS = 64  # me, exchangeRate, myOrders, createOrder and the /healthz ceiling
LOGIN_CONNECTIONS = 8
STARVATION_CONNECTIONS = 16  # exchangeRate, idle and while login is hammered
STARVATION_S = max(DURATION_S - 2, 3)
ORDERS = 200
ARGON2_SECONDS = 3

# Seeded accounts: BENCH_USER for me / createOrder / login, ORDERS_USER holds exactly
# ORDERS orders for myOrders (createOrder must not add to them).
BENCH_USER = ("bench@example.com", "bench-password-1")
ORDERS_USER = ("orders@example.com", "bench-password-2")

# Targets (issue 5): throughput as a ratio to the same run's /healthz req/s.
RATIO_TARGETS = {"me": 0.25, "exchangeRate": 0.28, "myOrders(first: 20)": 0.10, "createOrder": 0.04}
P99_LIMIT_MS = {"me": 8.0, "exchangeRate": 8.0}
LOGIN_FACTOR = 0.9  # login >= 0.9 x hashing threads x single-core argon2id verify rate


def hashing_threads(cores: int) -> int:
    """The server's password-hashing threads: one for every two cores, at least one."""
    return max(1, cores // 2)
STARVATION_FACTOR = 2.0  # exchangeRate p99 under login load <= 2 x idle p99


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- seeding through the API and the CLI ----------------------------------------------


class GraphQLError(RuntimeError):
    pass


def graphql(url: str, query: str, variables: dict | None = None, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as err:
        raise GraphQLError(f"HTTP {err.code}: {err.read()[:500]!r}") from err
    if payload.get("errors"):
        raise GraphQLError(json.dumps(payload["errors"])[:500])
    return payload["data"]


def register(url: str, email: str, password: str) -> str:
    data = graphql(
        url,
        "mutation($input: RegisterInput!) { register(input: $input) { token } }",
        {"input": {"email": email, "password": password}},
    )
    return data["register"]["token"]


def create_order(url: str, token: str) -> None:
    graphql(
        url,
        "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }",
        {"input": {"fromCurrency": "USD", "toCurrency": "UAH", "amount": "10"}},
        token,
    )


def seed(url: str, exchanger: Path) -> dict[str, str]:
    """Sets the USD/UAH rate (CLI), registers both users, gives ORDERS_USER its orders."""
    log("seeding: exchanger rates set USD UAH 41.25")
    subprocess.run([str(exchanger), "rates", "set", "USD", "UAH", "41.25"], check=True,
                   stdout=subprocess.DEVNULL, timeout=60)
    log("seeding: registering the bench users")
    bench_token = register(url, *BENCH_USER)
    orders_token = register(url, *ORDERS_USER)
    log(f"seeding: {ORDERS} orders through createOrder")
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(create_order, url, orders_token) for _ in range(ORDERS)]:
            future.result()
    page = graphql(url, "{ myOrders(first: 20) { edges { node { id } } pageInfo { hasNextPage } } }",
                   token=orders_token)["myOrders"]
    if len(page["edges"]) != 20 or not page["pageInfo"]["hasNextPage"]:
        raise SystemExit(f"seeding: unexpected first page of myOrders: {page}")
    return {"bench": bench_token, "orders": orders_token}


# --- measuring --------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table."""

    operation: str
    connections: str
    rps: float | None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int | None = None
    first_error: str = ""
    targets: list[str] = field(default_factory=list)  # filled in by evaluate()
    result: str = "—"
    ratio: float | None = None
    detail: dict = field(default_factory=dict)


def wrk_command(script: str, connections: int, seconds: int, url: str) -> list[str]:
    return ["wrk", f"-t{min(WRK_THREADS, connections)}", f"-c{connections}", f"-d{seconds}s",
            "--timeout", "10s", "--latency", "-s", str(LUA_DIR / script), url]


def parse_wrk(output: str, operation: str, connections: int) -> Row:
    lines = [line for line in output.splitlines() if line.startswith("BENCH_JSON ")]
    if not lines:
        raise SystemExit(f"{operation}: no BENCH_JSON line in wrk's output:\n{output}")
    data = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    errors = data["errors"]
    return Row(operation=operation, connections=str(connections), rps=data["rps"],
               p50_ms=data["latency_us"]["p50"] / 1000, p99_ms=data["latency_us"]["p99"] / 1000,
               errors=sum(errors.values()), first_error=data["first_error"], detail=data)


def run_wrk(script: str, operation: str, connections: int, url: str, env: dict,
            seconds: int = DURATION_S, warmup: bool = True) -> Row:
    if warmup and WARMUP_S > 0:
        subprocess.run(wrk_command(script, connections, WARMUP_S, url), env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=WARMUP_S + 30)
    log(f"{operation}: wrk -c{connections} for {seconds}s")
    done = subprocess.run(wrk_command(script, connections, seconds, url), env=env, check=True,
                          capture_output=True, text=True, timeout=seconds + 30)
    return parse_wrk(done.stdout, operation, connections)


def run_wrk_under_login(url: str, env: dict) -> tuple[Row, Row]:
    """exchangeRate load while a second wrk hammers login (started first, ended last)."""
    lead_s = 2
    log(f"starvation: login -c{LOGIN_CONNECTIONS} and exchangeRate -c{STARVATION_CONNECTIONS} together")
    login = subprocess.Popen(
        wrk_command("login.lua", LOGIN_CONNECTIONS, STARVATION_S + 2 * lead_s, url),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(lead_s)
        rate = run_wrk("exchange_rate.lua", "exchangeRate, during login load",
                       STARVATION_CONNECTIONS, url, env, seconds=STARVATION_S, warmup=False)
        out, err = login.communicate(timeout=STARVATION_S + 2 * lead_s + 30)
    finally:
        if login.poll() is None:
            login.kill()
            login.wait()
    if login.returncode != 0:
        raise SystemExit(f"login wrk failed ({login.returncode}): {err}")
    return rate, parse_wrk(out, "login, during the check above", LOGIN_CONNECTIONS)


def run_redis_benchmark(port: int) -> Row:
    log("redis-benchmark GET -c64")
    done = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "get", "-n", "200000",
         "-c", str(READ_CONNECTIONS), "-P", "1", "--csv"],
        check=True, capture_output=True, text=True, timeout=120)
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",...
    lines = [line.replace('"', "").split(",") for line in done.stdout.strip().splitlines()]
    header, values = lines[0], next(v for v in lines[1:] if v[0] == "GET")
    row = dict(zip(header, values))
    return Row(operation="redis-benchmark GET (ceiling)", connections=str(READ_CONNECTIONS),
               rps=float(row["rps"]), p50_ms=float(row["p50_latency_ms"]),
               p99_ms=float(row["p99_latency_ms"]), detail=row)


def run_argon2(binary: Path) -> float:
    log(f"argon2id single-core verify rate ({ARGON2_SECONDS}s)")
    done = subprocess.run([str(binary), str(ARGON2_SECONDS)], check=True, capture_output=True,
                          text=True, timeout=ARGON2_SECONDS + 60)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["verifies_per_sec"])


# --- targets and report -----------------------------------------------------------------


@dataclass
class Check:
    name: str
    target: str
    measured: str
    passed: bool
    row: str | None = None  # key of the table row it belongs to


def evaluate(rows: dict[str, Row], verify_rate: float, cores: int) -> list[Check]:
    """Fills in each row's ratio, targets and result; returns every check."""
    healthz = rows["healthz"].rps
    checks: list[Check] = []
    for key, row in rows.items():
        if row.rps is not None and healthz and key != "argon2":
            row.ratio = row.rps / healthz
    for key in ("healthz", "redis", "argon2"):
        rows[key].targets.append("ceiling")
    rows["rate_idle"].targets.append("baseline of the starvation check")

    def add(key: str, name: str, target: str, measured: str, passed: bool) -> None:
        rows[key].targets.append(target)
        checks.append(Check(name, target, measured, passed, key))

    for key, minimum in RATIO_TARGETS.items():
        row = rows[key]
        add(key, f"{key} throughput", f"≥ {minimum:.2f} × healthz",
            f"{row.ratio:.3f} × ({row.rps:,.0f} req/s)", row.ratio >= minimum)
    for key, limit in P99_LIMIT_MS.items():
        row = rows[key]
        add(key, f"{key} p99 at {row.connections} connections", f"p99 ≤ {limit:g} ms",
            f"{row.p99_ms:.2f} ms", row.p99_ms <= limit)
    threads = hashing_threads(cores)
    login_min = LOGIN_FACTOR * threads * verify_rate
    add("login", "login throughput",
        f"≥ {LOGIN_FACTOR} × {threads} hashing thread{'s' if threads > 1 else ''} ({cores} cores) "
        f"× {verify_rate:.1f}/s = {login_min:.1f} req/s",
        f"{rows['login'].rps:.1f} req/s", rows["login"].rps >= login_min)
    idle, loaded = rows["rate_idle"], rows["rate_loaded"]
    add("rate_loaded", f"exchangeRate p99 ({STARVATION_CONNECTIONS} connections) while login is "
        f"hammered ({LOGIN_CONNECTIONS} connections)",
        f"p99 ≤ {STARVATION_FACTOR:g} × its idle p99 ({STARVATION_FACTOR * idle.p99_ms:.2f} ms)",
        f"{loaded.p99_ms:.2f} ms = {loaded.p99_ms / idle.p99_ms:.2f} × idle {idle.p99_ms:.2f} ms",
        loaded.p99_ms <= STARVATION_FACTOR * idle.p99_ms)

    failed_runs = [row for row in rows.values() if row.errors]
    checks.append(Check(
        "errors", "0 in every run",
        ", ".join(f"{r.operation}: {r.errors}" for r in failed_runs) or "0", not failed_runs))

    for key, row in rows.items():
        own = [c for c in checks if c.row == key]
        if row.errors:
            row.result = "FAIL"
        elif own:
            row.result = "PASS" if all(c.passed for c in own) else "FAIL"
    return checks


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def fmt_ratio(value: float | None) -> str:
    return fmt(value, ".4f" if value is not None and value < 0.01 else ".3f")


def markdown(meta: dict, rows: list[Row], checks: list[Check]) -> str:
    out = [
        f"# exchanger benchmark, {meta['date']}",
        "",
        f"`{meta['command']}` · commit `{meta['commit']}`{' (dirty tree)' if meta['dirty'] else ''}"
        f" · {meta['nproc']} cores ({meta['cpu']}) · {meta['duration_s']} s per measurement after"
        f" a {meta['warmup_s']} s warm-up · wrk -t{WRK_THREADS}",
        "",
        "| operation | connections | req/s | × healthz | p50 ms | p99 ms | errors | target | result |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r.operation} | {r.connections} | {fmt(r.rps, ',.1f')} | {fmt_ratio(r.ratio)} "
            f"| {fmt(r.p50_ms, '.2f')} | {fmt(r.p99_ms, '.2f')} | {fmt(r.errors, 'd')} "
            f"| {'; '.join(r.targets) or '—'} | {r.result} |")
    out += ["", "| check | target | measured | result |", "|---|---|---|---|"]
    for c in checks:
        out.append(f"| {c.name} | {c.target} | {c.measured} | {'PASS' if c.passed else 'FAIL'} |")
    samples = [r for r in rows if r.first_error]
    if samples:
        out += ["", "First error of each run that had errors:", ""]
        out += [f"- {r.operation}: `{r.first_error}`" for r in samples]
    passed = all(c.passed for c in checks)
    out += ["", f"**Overall: {'PASS' if passed else 'FAIL'}** "
                f"({sum(c.passed for c in checks)}/{len(checks)} checks hold)", ""]
    return "\n".join(out)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    # run.sh stops us with SIGTERM: exit through the exception path, which makes
    # subprocess.run kill the wrk it is waiting for.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--redis-port", type=int, required=True)
    parser.add_argument("--exchanger", type=Path, required=True, help="the release binary")
    parser.add_argument("--argon2-rate", type=Path, required=True, help="the argon2_rate example")
    args = parser.parse_args()

    started = datetime.datetime.now(datetime.timezone.utc)
    cores = os.cpu_count() or 1
    verify_rate = run_argon2(args.argon2_rate)  # first, while the server is idle
    tokens = seed(args.url, args.exchanger)

    env = dict(os.environ, BENCH_EMAIL=BENCH_USER[0], BENCH_PASSWORD=BENCH_USER[1],
               BENCH_TOKEN=tokens["bench"])
    orders_env = dict(env, BENCH_TOKEN=tokens["orders"])
    url = args.url
    rows: dict[str, Row] = {}
    rows["healthz"] = run_wrk("healthz.lua", "GET /healthz (ceiling)", READ_CONNECTIONS, url, env)
    rows["redis"] = run_redis_benchmark(args.redis_port)
    rows["argon2"] = Row(operation="argon2id verify, 1 core (ceiling)", connections="1 thread",
                         rps=verify_rate)
    rows["me"] = run_wrk("me.lua", "me", READ_CONNECTIONS, url, env)
    rows["exchangeRate"] = run_wrk("exchange_rate.lua", "exchangeRate", READ_CONNECTIONS, url, env)
    rows["myOrders(first: 20)"] = run_wrk("my_orders.lua", "myOrders(first: 20)",
                                          READ_CONNECTIONS, url, orders_env)
    rows["createOrder"] = run_wrk("create_order.lua", "createOrder", READ_CONNECTIONS, url, env)
    rows["login"] = run_wrk("login.lua", "login", LOGIN_CONNECTIONS, url, env)
    rows["rate_idle"] = run_wrk("exchange_rate.lua", "exchangeRate, idle (starvation baseline)",
                                STARVATION_CONNECTIONS, url, env, seconds=STARVATION_S)
    rows["rate_loaded"], rows["login_loaded"] = run_wrk_under_login(url, env)

    checks = evaluate(rows, verify_rate, cores)
    meta = {
        "date": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "nproc": cores,
        "cpu": cpu_model(),
        "command": COMMAND,
        "duration_s": DURATION_S,
        "warmup_s": WARMUP_S,
        "wrk_threads": WRK_THREADS,
        "argon2_verifies_per_sec_single_core": verify_rate,
    }
    report = markdown(meta, list(rows.values()), checks)
    print(report)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = RESULTS_DIR / started.strftime("%Y%m%dT%H%M%SZ")
    stem.with_suffix(".md").write_text(report)
    stem.with_suffix(".json").write_text(json.dumps({
        **meta,
        "rows": [{"key": key, **vars(row)} for key, row in rows.items()],
        "checks": [vars(c) for c in checks],
        "passed": all(c.passed for c in checks),
    }, indent=2, ensure_ascii=False) + "\n")
    log(f"written {stem.with_suffix('.md').relative_to(ROOT)} and .json")
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
