#!/usr/bin/env python3
"""Measures sign-in on a running exchanger server: logins under a read flood, the memory
1,000 sign-ups leave, and whether requestPasswordReset's timing tells known emails apart.

Run by bench/run.sh after bench/bench.py and bench/edge.py (it passes --pid and --append),
or alone against any server on this machine's loopback that allows 1,001 sign-ups from one
address (SIGNUP_MAX_PER_IP ≥ 1001; run.sh starts its server with 100000):

    python3 bench/signin.py --url http://127.0.0.1:8080            # PID found from the port
    python3 bench/signin.py --url http://127.0.0.1:8080 --pid 1234 --append bench/results/X.md

It registers its own account (signin-<UTC stamp>@example.com), then:

(a) Login under a read flood: 3 warm-up logins, then 40 sequential logins with the correct
    password on one kept-alive connection (one client), each timed from send to the last
    byte of its answer: p50, max and logins/s, idle. Then the same 40 while an anonymous
    (no bearer) `exchangeRate` flood runs: `wrk -t2 -c32 -s bench/lua/exchange_rate.lua`,
    started 2 s before the first login and stopped (SIGINT, by PID) after the last.
    The pair needs a rate for the flood to read the cache (bench.py sets one; alone:
    `exchanger rates set USD UAH 41.25`): a missing rate is not cached, so the flood would
    read PostgreSQL; the flood's line says so when the pair has none.
    Targets: p50 under the flood ≤ 4 × the idle p50; max under the flood ≤ 1 s. Every login
    must answer a token (RATE_LIMITED would mean the failure limits or the hashing queue
    interfere: run.sh raises LOGIN_MAX_FAILURES_*).
(b) Reads while logins are hammered: measured by bench/bench.py (its starvation check:
    exchangeRate p99 at 16 connections while login runs at 8 ≤ 2 × its idle p99); with
    --append its figure is restated here from the report's .json.
(c) Memory after 1,000 sign-ups: the server's VmRSS (/proc/<pid>/status) before and after
    1,000 sequential `register` mutations with unique emails. Target: ≤ 150 MB after; the
    growth is reported in MB per 100 sign-ups, and VmRSS after every 100 in the .json.
(d) No timing oracle in requestPasswordReset: 30 requests for known emails (30 distinct
    accounts from (c), so each one's mail really is issued: the limit of 3 reset mails per
    address per hour is not reached) and 30 for unknown ones, interleaved in pairs whose
    order is drawn at random, 100 ms apart (so the work each one starts after its answer is
    done before the next), on one kept-alive connection, each timed from send to answer.
    Target: the medians differ by ≤ 10 % of the smaller one, or by ≤ 1 ms absolute when
    both are under 10 ms (loopback answers take about a millisecond, where 10 % is below
    the scheduling noise).

The report gives the machine's 1-minute load average at the start and the end: other work
on the same cores moves every figure. Standard library only; loopback only; every wait is
bounded; the wrk it starts is stopped by PID. Exit status 0 when every check holds, 1 when one fails, 2 when the measurement
itself could not run.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True  # importing edge.py leaves no bench/__pycache__ behind
from edge import Check, append_report, arguments, check_rows, loopback_server, rss_kb  # noqa: E402 (same directory)

LUA_DIR = Path(__file__).resolve().parent / "lua"

PASSWORD = "signin-bench-password"
REQUEST_TIMEOUT_S = 10.0

LOGIN_WARMUP = 3
LOGINS = 40
LOGIN_FLOOD_DEADLINE_S = 60.0  # the 40 logins under the flood; later ones are not sent
FLOOD_CONNECTIONS = 32
FLOOD_THREADS = 2
FLOOD_LEAD_S = 2.0
FLOOD_MAX_S = 90  # wrk's own -d: the flood ends by then even if this script is killed
FLOOD_P50_FACTOR = 4.0
FLOOD_MAX_MS = 1000.0

SIGNUPS = 1_000
SIGNUP_DEADLINE_S = 300.0
RSS_LIMIT_KB = 150 * 1024

RESETS = 30  # of each kind
RESET_WARMUP = 4
RESET_GAP_S = 0.1
RESET_REL = 0.10
RESET_ABS_MS = 1.0
RESET_TINY_MS = 10.0

LOGIN = "mutation($input: LoginInput!) { login(input: $input) { token } }"
REGISTER = "mutation($input: RegisterInput!) { register(input: $input) { token } }"
RESET = "mutation($email: String!) { requestPasswordReset(email: $email) }"


def log(message: str) -> None:
    print(f"[signin {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Unmeasurable(RuntimeError):
    """The measurement itself cannot go on (exit status 2)."""


# --- one kept-alive client ----------------------------------------------------------------


@dataclass
class Answer:
    ms: float
    ok: bool
    code: str  # "" when ok; the first error's extensions.code, or HTTP/transport trouble
    data: dict | None


class Client:
    """One kept-alive HTTP/1.1 connection that POSTs GraphQL and times each answer."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn: http.client.HTTPConnection | None = None

    def post(self, query: str, variables: dict) -> Answer:
        body = json.dumps({"query": query, "variables": variables}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
            try:
                self.conn.connect()  # not inside the timed part
            except OSError as err:
                self.close()
                return Answer(0.0, False, f"transport: connect: {err}", None)
        started = time.perf_counter()
        try:
            self.conn.request("POST", "/graphql", body=body, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as err:
            ms = (time.perf_counter() - started) * 1000
            self.close()
            return Answer(ms, False, f"transport: {err.__class__.__name__}: {err}", None)
        ms = (time.perf_counter() - started) * 1000
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            payload = json.loads(raw)
        except ValueError:
            return Answer(ms, False, f"HTTP {response.status}: not JSON {raw[:120]!r}", None)
        errors = payload.get("errors") if isinstance(payload, dict) else None
        if response.status != 200 or errors:
            try:
                code = errors[0]["extensions"]["code"]
            except (TypeError, KeyError, IndexError):
                code = f"HTTP {response.status}"
            return Answer(ms, False, code, payload)
        return Answer(ms, True, "", payload.get("data"))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def count_codes(answers: list[Answer]) -> dict[str, int]:
    codes: dict[str, int] = {}
    for a in answers:
        if not a.ok:
            codes[a.code] = codes.get(a.code, 0) + 1
    return codes


def describe_errors(codes: dict[str, int]) -> str:
    return ", ".join(f"{n} {code}" for code, n in sorted(codes.items())) or "0"


# --- (a) login, idle and under a read flood -----------------------------------------------


@dataclass
class LoginRun:
    times_ms: list[float]
    sent: int
    errors: dict[str, int]
    wall_s: float

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.times_ms) if self.times_ms else float("nan")

    @property
    def max_ms(self) -> float:
        return max(self.times_ms) if self.times_ms else float("nan")

    @property
    def per_s(self) -> float:
        return self.sent / self.wall_s if self.wall_s > 0 else 0.0


def logins(client: Client, email: str, count: int, deadline_s: float | None = None) -> LoginRun:
    variables = {"input": {"email": email, "password": PASSWORD}}
    answers: list[Answer] = []
    started = time.perf_counter()
    for _ in range(count):
        if deadline_s is not None and time.perf_counter() - started > deadline_s:
            break
        answer = client.post(LOGIN, variables)
        if answer.ok and not (answer.data or {}).get("login", {}).get("token"):
            answer = Answer(answer.ms, False, "no token in the answer", answer.data)
        answers.append(answer)
    wall = time.perf_counter() - started
    return LoginRun([a.ms for a in answers], len(answers), count_codes(answers), wall)


RATE_PROBE = '{ exchangeRate(from: "USD", to: "UAH") { rate validFrom } }'  # exchange_rate.lua's


@dataclass
class Flood:
    cached: bool | None = None  # whether the pair has a rate (else every read goes to PostgreSQL)
    rps: float | None = None
    p99_ms: float | None = None
    requests: int | None = None
    errors: dict = field(default_factory=dict)
    first_error: str = ""
    failure: str = ""


def start_flood(url: str, env: dict) -> subprocess.Popen:
    command = ["wrk", f"-t{FLOOD_THREADS}", f"-c{FLOOD_CONNECTIONS}", f"-d{FLOOD_MAX_S}s",
               "--timeout", "10s", "--latency", "-s", str(LUA_DIR / "exchange_rate.lua"), url]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def stop_flood(wrk: subprocess.Popen) -> Flood:
    """Stops wrk by its PID with SIGINT (it then prints its figures) and parses them."""
    if wrk.poll() is not None:
        failure = f"wrk ended before the logins did (status {wrk.returncode})"
    else:
        failure = ""
        wrk.send_signal(signal.SIGINT)
    try:
        out, err = wrk.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        wrk.kill()
        out, err = wrk.communicate()
        return Flood(failure=failure or "wrk did not stop on SIGINT")
    lines = [line for line in out.splitlines() if line.startswith("BENCH_JSON ")]
    if not lines:
        return Flood(failure=failure or f"no BENCH_JSON from wrk: {(out + err)[-300:]!r}")
    data = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    return Flood(rps=data["rps"], p99_ms=data["latency_us"]["p99"] / 1000,
                 requests=data["requests"], errors={k: v for k, v in data["errors"].items() if v},
                 first_error=data["first_error"], failure=failure)


def run_logins(client: Client, email: str, url: str) -> tuple[LoginRun, LoginRun, Flood]:
    probe = client.post(RATE_PROBE, {})
    has_rate = probe.ok and bool((probe.data or {}).get("exchangeRate"))
    if not has_rate:
        log("exchangeRate(USD, UAH) has no rate on this server: the flood reads PostgreSQL, "
            "not the cache (`exchanger rates set USD UAH 41.25` first to flood the cache)")
    log(f"login: {LOGIN_WARMUP} warm-up, then {LOGINS} sequential logins, idle")
    logins(client, email, LOGIN_WARMUP)
    idle = logins(client, email, LOGINS)
    log(f"login: idle p50 {idle.p50_ms:.1f} ms, max {idle.max_ms:.1f} ms; now under an "
        f"anonymous exchangeRate flood (wrk -c{FLOOD_CONNECTIONS})")
    env = {k: v for k, v in os.environ.items() if k != "BENCH_TOKEN"}  # anonymous
    wrk = start_flood(url, env)
    try:
        time.sleep(FLOOD_LEAD_S)
        if wrk.poll() is not None:
            raise Unmeasurable(f"the flood (wrk) exited at once: {wrk.communicate()[1][-300:]}")
        flooded = logins(client, email, LOGINS, LOGIN_FLOOD_DEADLINE_S)
    finally:
        flood = stop_flood(wrk)
    flood.cached = has_rate
    log(f"login: under the flood p50 {flooded.p50_ms:.1f} ms, max {flooded.max_ms:.1f} ms; "
        f"flood {flood.rps or 0:,.0f} req/s")
    return idle, flooded, flood


# --- (c) memory after 1,000 sign-ups ------------------------------------------------------


@dataclass
class Signups:
    done: int
    errors: dict[str, int]
    first_error: str
    rss_before_kb: int | None
    rss_after_kb: int | None
    rss_every_100_kb: list[int | None]
    wall_s: float
    p50_ms: float
    max_ms: float
    emails: list[str] = field(repr=False, default_factory=list)


def run_signups(client: Client, pid: int | None, stamp: str) -> Signups:
    log(f"sign-ups: {SIGNUPS} sequential register mutations")
    rss_before = rss_kb(pid)
    every: list[int | None] = []
    answers: list[Answer] = []
    emails: list[str] = []
    first_error = ""
    started = time.perf_counter()
    for i in range(SIGNUPS):
        if time.perf_counter() - started > SIGNUP_DEADLINE_S:
            first_error = first_error or f"deadline of {SIGNUP_DEADLINE_S:g} s reached after {i}"
            break
        email = f"signup-{stamp}-{i:04d}@example.com"
        answer = client.post(REGISTER, {"input": {"email": email, "password": PASSWORD}})
        answers.append(answer)
        if answer.ok:
            emails.append(email)
        elif not first_error:
            first_error = f"{answer.code}: {json.dumps(answer.data)[:200]}"
            if answer.code == "RATE_LIMITED":
                first_error += " (SIGNUP_MAX_PER_IP is too low for this measurement)"
        if (i + 1) % 100 == 0:
            every.append(rss_kb(pid))
            log(f"sign-ups: {i + 1}, RSS {every[-1] / 1024 if every[-1] else 0:.1f} MB")
    wall = time.perf_counter() - started
    times = [a.ms for a in answers] or [float("nan")]
    return Signups(len(emails), count_codes(answers), first_error, rss_before, rss_kb(pid),
                   every, wall, statistics.median(times), max(times), emails)


# --- (d) requestPasswordReset timing ------------------------------------------------------


@dataclass
class Resets:
    known_ms: list[float]
    unknown_ms: list[float]
    errors: dict[str, int]
    first_error: str
    distinct_known: int

    @property
    def known_median(self) -> float:
        return statistics.median(self.known_ms) if self.known_ms else float("nan")

    @property
    def unknown_median(self) -> float:
        return statistics.median(self.unknown_ms) if self.unknown_ms else float("nan")


def run_resets(client: Client, known: list[str], stamp: str, seed: int) -> Resets:
    """`known`: existing accounts, distinct ones when there are enough (else reused)."""
    log(f"requestPasswordReset: {RESETS} known and {RESETS} unknown emails, interleaved, "
        f"{RESET_GAP_S * 1000:g} ms apart")
    rng = random.Random(seed)
    # Distinct known accounts spread over the sign-ups: each one's mail is really issued.
    wanted = RESETS + RESET_WARMUP // 2
    step = max(len(known) // wanted, 1)
    picked = [known[(i * step) % len(known)] for i in range(wanted)]
    plan: list[tuple[str, str]] = []
    for i in range(RESETS + RESET_WARMUP // 2):
        pair = [("known", picked[i]), ("unknown", f"nobody-{stamp}-{i:02d}@example.com")]
        rng.shuffle(pair)
        plan += pair
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    answers: list[Answer] = []
    first_error = ""
    for n, (kind, email) in enumerate(plan):
        time.sleep(RESET_GAP_S)
        answer = client.post(RESET, {"email": email})
        if answer.ok and (answer.data or {}).get("requestPasswordReset") is not True:
            answer = Answer(answer.ms, False, "answer is not true", answer.data)
        if not answer.ok and not first_error:
            first_error = f"{kind}: {answer.code}: {json.dumps(answer.data)[:200]}"
        if n >= RESET_WARMUP:
            answers.append(answer)
            times[kind].append(answer.ms)
    return Resets(times["known"], times["unknown"], count_codes(answers), first_error,
                  len(set(picked[RESET_WARMUP // 2:])))


# --- report -------------------------------------------------------------------------------


def load_average() -> float | None:
    """This machine's 1-minute load average: other work on the same cores moves every figure."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def mb(kb: int | None) -> str:
    return "—" if kb is None else f"{kb / 1024:,.1f} MB"


def starvation_from(report: Path | None) -> Check:
    """bench.py's starvation check, restated from the report's .json when there is one."""
    name = "reads while logins are hammered (bench.py's starvation check)"
    target = "exchangeRate p99 (16 connections) while login runs at 8 ≤ 2 × its idle p99"
    json_path = report.with_suffix(".json") if report else None
    if json_path is None or not json_path.exists():
        return Check(name, target, "not measured here: bench/bench.py measures it", None)
    data = json.loads(json_path.read_text())
    for check in data.get("checks", []):
        if check.get("row") == "rate_loaded":
            return Check(name, check["target"], f"{check['measured']} (see the table above)",
                         check["passed"])
    return Check(name, target, "not found in the report's .json", False)


def evaluate(idle: LoginRun, flooded: LoginRun, flood: Flood, signups: Signups, resets: Resets,
             starvation: Check, pid: int | None) -> list[Check]:
    checks: list[Check] = []
    login_errors = {k: idle.errors.get(k, 0) + flooded.errors.get(k, 0)
                    for k in {*idle.errors, *flooded.errors}}
    checks.append(Check(
        "logins answered with a token", f"all {2 * LOGINS} ({LOGINS} idle + {LOGINS} under the flood)",
        f"{idle.sent + flooded.sent - sum(login_errors.values())}/{2 * LOGINS}; errors: "
        f"{describe_errors(login_errors)}"
        + (" (RATE_LIMITED: failure limits or the hashing queue interfere)"
           if "RATE_LIMITED" in login_errors else ""),
        not login_errors and idle.sent == LOGINS and flooded.sent == LOGINS))
    checks.append(Check(
        "login idle (1 client, sequential)", "reported: the baseline",
        f"p50 {idle.p50_ms:.1f} ms, max {idle.max_ms:.1f} ms, {idle.per_s:.1f} logins/s", None))
    flood_text = ("failed: " + flood.failure) if flood.failure or flood.rps is None else (
        f"{flood.rps:,.0f} req/s, p99 {flood.p99_ms:.2f} ms, errors: "
        f"{describe_errors(flood.errors)}" + (f" (first: `{flood.first_error}`)" if flood.first_error else "")
        + ("" if flood.cached else "; USD/UAH has no rate here, so every read went to PostgreSQL "
           "(a miss is not cached), not the cache"))
    checks.append(Check(
        f"the flood: anonymous exchangeRate, wrk -t{FLOOD_THREADS} -c{FLOOD_CONNECTIONS}",
        "runs for every login, without errors", flood_text,
        not flood.failure and flood.rps is not None and not flood.errors))
    checks.append(Check(
        "login p50 under the flood", f"≤ {FLOOD_P50_FACTOR:g} × idle p50 "
        f"({FLOOD_P50_FACTOR * idle.p50_ms:.1f} ms)",
        f"{flooded.p50_ms:.1f} ms = {flooded.p50_ms / idle.p50_ms:.2f} × idle; "
        f"{flooded.per_s:.1f} logins/s", flooded.p50_ms <= FLOOD_P50_FACTOR * idle.p50_ms))
    checks.append(Check(
        "login max under the flood", f"≤ {FLOOD_MAX_MS:g} ms", f"{flooded.max_ms:.1f} ms",
        flooded.max_ms <= FLOOD_MAX_MS))
    checks.append(starvation)

    checks.append(Check(
        f"{SIGNUPS:,} sequential sign-ups answered", f"all {SIGNUPS:,}",
        f"{signups.done:,}; errors: {describe_errors(signups.errors)}"
        + (f" (first: `{signups.first_error}`)" if signups.first_error else "")
        + f"; {signups.done / signups.wall_s if signups.wall_s else 0:.1f} sign-ups/s, "
          f"p50 {signups.p50_ms:.1f} ms, max {signups.max_ms:.1f} ms",
        signups.done == SIGNUPS))
    if signups.rss_before_kb is None or signups.rss_after_kb is None:
        checks.append(Check(f"server RSS after {SIGNUPS:,} sign-ups", f"≤ {RSS_LIMIT_KB // 1024} MB",
                            "not measured (no server PID: pass --pid)", False))
    else:
        grown = signups.rss_after_kb - signups.rss_before_kb
        per_100 = grown / 1024 / max(signups.done / 100, 1e-9)
        checks.append(Check(
            f"server RSS after {SIGNUPS:,} sign-ups", f"≤ {RSS_LIMIT_KB // 1024} MB",
            f"{mb(signups.rss_after_kb)} ({mb(signups.rss_before_kb)} before; "
            f"{grown / 1024:+.1f} MB = {per_100:+.2f} MB per 100 sign-ups)",
            signups.rss_after_kb <= RSS_LIMIT_KB))

    k, u = resets.known_median, resets.unknown_median
    delta = abs(k - u)
    small, large = min(k, u), max(k, u)
    tiny = large < RESET_TINY_MS
    passed = delta <= RESET_REL * small or (tiny and delta <= RESET_ABS_MS)
    why = (f"within {RESET_REL * 100:g} %" if delta <= RESET_REL * small else
           f"within {RESET_ABS_MS:g} ms, both under {RESET_TINY_MS:g} ms" if passed else
           f"neither within {RESET_REL * 100:g} % nor {RESET_ABS_MS:g} ms")
    checks.append(Check(
        "requestPasswordReset answers", f"all {2 * RESETS} `true`",
        f"{len(resets.known_ms) + len(resets.unknown_ms) - sum(resets.errors.values())}"
        f"/{2 * RESETS}; errors: {describe_errors(resets.errors)}"
        + (f" (first: `{resets.first_error}`)" if resets.first_error else ""),
        not resets.errors and len(resets.known_ms) == len(resets.unknown_ms) == RESETS))
    checks.append(Check(
        f"requestPasswordReset timing, {RESETS} known vs {RESETS} unknown emails",
        f"medians differ by ≤ {RESET_REL * 100:g} % of the smaller, or by ≤ {RESET_ABS_MS:g} ms "
        f"absolute when both are under {RESET_TINY_MS:g} ms",
        f"known {k:.2f} ms, unknown {u:.2f} ms: Δ {delta:.2f} ms = {delta / small * 100:.1f} % ({why})"
        + ("" if resets.distinct_known == RESETS else
           f"; only {resets.distinct_known} distinct known accounts (too few sign-ups)"),
        passed))
    return checks


def fmt_load(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f}"


def markdown(url: str, checks: list[Check], load: tuple[float | None, float | None]) -> str:
    out = [
        f"## Sign-in: logins under a read flood, memory after sign-ups, reset timing "
        f"(`bench/signin.py`, {url})",
        "",
        f"Logins: {LOGINS} sequential with the correct password on one kept-alive connection, "
        f"idle, then again while `wrk -t{FLOOD_THREADS} -c{FLOOD_CONNECTIONS}` floods anonymous "
        f"`exchangeRate` (started {FLOOD_LEAD_S:g} s before). Sign-ups: {SIGNUPS:,} sequential "
        f"`register`s, VmRSS before and after. Resets: {RESETS} known (distinct accounts) and "
        f"{RESETS} unknown emails in randomly ordered pairs, {RESET_GAP_S * 1000:g} ms apart, "
        f"timed from send to answer. Load average (1 min) of this {os.cpu_count()}-core machine: "
        f"{fmt_load(load[0])} at the start, {fmt_load(load[1])} at the end.",
        "",
        "| check | target | measured | result |",
        "|---|---|---|---|",
    ]
    out += check_rows(checks, "Sign-in")
    return "\n".join(out)


def main() -> int:
    # run.sh stops us with SIGTERM: exit through the exception path, whose `finally` stops
    # the flood's wrk.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = arguments(__doc__.splitlines()[0]).parse_args()
    server = loopback_server("signin", args, log)
    if server is None:
        return 2
    host, port, pid = server
    url = f"http://{host if ipaddress.ip_address(host).version == 4 else f'[{host}]'}:{port}"

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dt%H%M%S")
    seed = int(time.time())
    email = f"signin-{stamp}@example.com"
    client = Client(host, port)
    load_start = load_average()
    try:
        answer = client.post(REGISTER, {"input": {"email": email, "password": PASSWORD}})
        if not answer.ok:
            raise Unmeasurable(f"registering {email}: {answer.code} {json.dumps(answer.data)[:300]}")
        idle, flooded, flood = run_logins(client, email, url)
        signups = run_signups(client, pid, stamp)
        resets = run_resets(client, signups.emails or [email], stamp, seed)
    except (Unmeasurable, OSError) as err:
        print(f"signin: the measurement broke: {err}", file=sys.stderr)
        return 2
    finally:
        client.close()
    load = (load_start, load_average())
    checks = evaluate(idle, flooded, flood, signups, resets, starvation_from(args.append), pid)
    report = markdown(args.url, checks, load)
    print(report)
    if args.append:
        append_report(args.append, report, checks, {
            "pid": pid,
            "seed": seed,
            "load_average_1min": {"start": load[0], "end": load[1]},
            "login_idle": vars(idle) | {"p50_ms": idle.p50_ms, "max_ms": idle.max_ms, "per_s": idle.per_s},
            "login_flooded": vars(flooded) | {"p50_ms": flooded.p50_ms, "max_ms": flooded.max_ms,
                                              "per_s": flooded.per_s},
            "flood": vars(flood),
            "signups": {k: v for k, v in vars(signups).items() if k != "emails"},
            "resets": vars(resets) | {"known_median_ms": resets.known_median,
                                      "unknown_median_ms": resets.unknown_median},
        }, section="signin")
    return 0 if all(c.passed for c in checks if c.passed is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
