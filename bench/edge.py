#!/usr/bin/env python3
"""Measures the edge of a running exchanger server: fragment-bomb refusals and idle connections.

Run by bench/run.sh after bench/bench.py (which passes --pid and --append), or alone against
any server on this machine's loopback:

    python3 bench/edge.py --url http://127.0.0.1:8080            # PID found from the port
    python3 bench/edge.py --url http://127.0.0.1:8080 --pid 1234 --append bench/results/X.md

(a) Fragment bomb: `fragment F0 on Query { __typename }` and 9 more levels, each spreading
    the previous one 10 times (10^9 fields once expanded, ~700 bytes), POSTed on one
    kept-alive connection: 5 warm-up requests, then 50 timed ones (send to last byte of the
    answer). Each must be refused (HTTP 400, GRAPHQL_VALIDATION_FAILED). Targets: median and
    max ≤ 5 ms; the server's VmRSS after the 50 timed requests at most 2 MB above the one
    before them (read after the warm-up, so a fresh server's first allocations don't count).
(b) Idle connections: 5,000 sockets (non-blocking, opened 100 at a time) each send one
    `GET /healthz` with keep-alive, read the answer, then stay silent (idle keep-alive: the
    server keeps them for HTTP_IDLE_TIMEOUT_SECS, 60 s by default; a connection that never
    sends a request would be closed after HTTP_HEADER_TIMEOUT_SECS). With all of them held:
    the server's VmRSS (MB, and KB per connection over the figure before), whether every one
    is still open, and whether a fresh `GET /healthz` answers (within 1 s). Then all are
    closed. The server's cap is MAX_CONNECTIONS (10,000 by default), lowered to its
    open-files limit less 112 for its pools; this script raises its own RLIMIT_NOFILE.

Standard library only; loopback only; every wait is bounded. Exit status 0 when every check
holds, 1 when one fails, 2 when the measurement itself could not run.
"""

from __future__ import annotations

import argparse
import errno
import http.client
import ipaddress
import json
import os
import resource
import selectors
import socket
import statistics
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

BOMB_LEVELS = 9
BOMB_FAN_OUT = 10
BOMB_WARMUP = 5
BOMB_REQUESTS = 50
BOMB_LIMIT_MS = 5.0
RSS_GROWTH_LIMIT_KB = 2 * 1024

IDLE_CONNECTIONS = 5_000
# Connections opened at once: below the server's listen backlog (128, tokio's default), so
# that a burst does not overflow its accept queue and wait out a 1 s SYN retransmit.
IDLE_BATCH = 100
IDLE_OPEN_TIMEOUT_S = 40.0  # all of them open and answered; well inside the 60 s idle timeout
IDLE_SETTLE_S = 1.0
HEALTHZ_LIMIT_S = 1.0
SERVER_FILES_RESERVE = 112  # 64 + 2 x DATABASE_MAX_CONNECTIONS + REDIS_POOL_SIZE at defaults


def log(message: str) -> None:
    print(f"[edge {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fragment_bomb(levels: int, fan_out: int) -> str:
    """`fan_out ** levels` copies of `__typename` once its fragments are expanded."""
    lines = [f"query {{ ...F{levels} }}", "fragment F0 on Query { __typename }"]
    for i in range(1, levels + 1):
        lines.append(f"fragment F{i} on Query {{{f' ...F{i - 1}' * fan_out} }}")
    return "\n".join(lines) + "\n"


# --- the server process -------------------------------------------------------------------


def rss_kb(pid: int | None) -> int | None:
    """The process's resident set (VmRSS), in KB."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def open_files_limit(pid: int | None) -> int | None:
    """The process's soft limit of open files (from /proc/<pid>/limits)."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft = line.split()[3]
                return None if soft == "unlimited" else int(soft)
    except OSError:
        return None
    return None


def pid_listening_on(port: int) -> int | None:
    """The process holding a listening TCP socket on `port` (loopback or any address)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(entry.name)
        except OSError:
            continue
    return None


# --- (a) the fragment bomb ----------------------------------------------------------------


@dataclass
class BombResult:
    median_ms: float
    max_ms: float
    rss_before_kb: int | None
    rss_after_kb: int | None
    refused: int
    sample: str


def run_bomb(host: str, port: int, pid: int | None) -> BombResult:
    body = json.dumps({"query": fragment_bomb(BOMB_LEVELS, BOMB_FAN_OUT)}).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/graphql-response+json"}
    log(f"fragment bomb: {BOMB_FAN_OUT}^{BOMB_LEVELS} fields in {len(body)} bytes, "
        f"{BOMB_WARMUP} warm-up + {BOMB_REQUESTS} timed requests")
    rss_before = None
    conn = http.client.HTTPConnection(host, port, timeout=10)
    times_ms: list[float] = []
    refused = 0
    sample = ""
    try:
        for i in range(BOMB_WARMUP + BOMB_REQUESTS):
            if i == BOMB_WARMUP:
                rss_before = rss_kb(pid)  # after the warm-up: growth is the timed requests'
            started = time.perf_counter()
            conn.request("POST", "/graphql", body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            elapsed_ms = (time.perf_counter() - started) * 1000
            try:
                error = json.loads(answer)["errors"][0]
                code = error["extensions"]["code"]
            except (ValueError, KeyError, IndexError, TypeError):
                code = None
            if response.status == 400 and code == "GRAPHQL_VALIDATION_FAILED":
                refused += i >= BOMB_WARMUP
            elif not sample:
                sample = f"HTTP {response.status}: {answer[:300]!r}"
            if i >= BOMB_WARMUP:
                times_ms.append(elapsed_ms)
    finally:
        conn.close()
    return BombResult(statistics.median(times_ms), max(times_ms), rss_before, rss_kb(pid),
                      refused, sample)


# --- (b) idle connections -----------------------------------------------------------------


def raise_own_files_limit(needed: int) -> int:
    """Raises this process's RLIMIT_NOFILE to at least `needed` if it can; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed or soft == resource.RLIM_INFINITY:
        return soft if soft != resource.RLIM_INFINITY else needed
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:  # raising the hard limit needs CAP_SYS_RESOURCE (root has it)
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed


@dataclass
class IdleResult:
    requested: int
    held: int
    rss_before_kb: int | None
    rss_held_kb: int | None
    healthz_ok: bool
    healthz_ms: float | None
    healthz_detail: str
    server_files: int | None
    failure: str = ""


def open_batch(host: str, port: int, count: int, deadline: float) -> tuple[list[socket.socket], str]:
    """Opens `count` connections, each sends one kept-alive GET /healthz and reads its answer.

    Returns the sockets that got a complete `200` answer (now idle) and a description of the
    first failure, if any; sockets that failed are closed.
    """
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    pending: dict[socket.socket, bytearray] = {}
    done: list[socket.socket] = []
    failure = ""
    for _ in range(count):
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            failure = failure or f"connect: {os.strerror(err)}"
            continue
        pending[sock] = bytearray()
        sel.register(sock, selectors.EVENT_WRITE)
    sent: set[socket.socket] = set()
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(0.0, min(1.0, deadline - time.monotonic()))):
            sock = key.fileobj
            buf = pending[sock]
            try:
                if sock not in sent:
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, os.strerror(err))
                    sock.sendall(request)  # 40-odd bytes: fits the empty send buffer
                    sent.add(sock)
                    sel.modify(sock, selectors.EVENT_READ)
                    continue
                chunk = sock.recv(4096)
                if not chunk:
                    raise OSError("closed by the server before its answer")
                buf += chunk
            except OSError as err:
                failure = failure or f"{err}"
                sel.unregister(sock)
                del pending[sock]
                sock.close()
                continue
            head, sep, rest = bytes(buf).partition(b"\r\n\r\n")
            if not sep:
                continue
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if len(rest) < length:
                continue
            sel.unregister(sock)
            del pending[sock]
            if head.startswith(b"HTTP/1.1 200"):
                done.append(sock)
            else:
                failure = failure or f"answer: {head.splitlines()[0]!r}"
                sock.close()
    for sock in pending:
        sel.unregister(sock)
        sock.close()
    if pending:
        failure = failure or f"{len(pending)} connections unanswered at the deadline"
    sel.close()
    return done, failure


def still_open(socks: list[socket.socket]) -> int:
    """How many of these idle sockets the server has not closed (a closed one reads EOF)."""
    sel = selectors.DefaultSelector()
    for sock in socks:
        sel.register(sock, selectors.EVENT_READ)
    readable = {key.fileobj for key, _ in sel.select(timeout=0)}
    sel.close()
    closed = 0
    for sock in readable:
        try:
            if sock.recv(1, socket.MSG_PEEK) == b"":
                closed += 1
        except OSError:
            closed += 1
    return len(socks) - closed


def healthz(host: str, port: int) -> tuple[bool, float | None, str]:
    started = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(host, port, timeout=HEALTHZ_LIMIT_S)
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        conn.close()
    except OSError as err:
        return False, None, f"no answer: {err}"
    elapsed_ms = (time.perf_counter() - started) * 1000
    ok = response.status == 200 and elapsed_ms <= HEALTHZ_LIMIT_S * 1000
    return ok, elapsed_ms, f"HTTP {response.status}"


def run_idle(host: str, port: int, pid: int | None, count: int) -> IdleResult:
    own = raise_own_files_limit(count + 256)
    server_files = open_files_limit(pid)
    log(f"idle connections: opening {count} (this script may hold {own} files; "
        f"the server {server_files if server_files is not None else 'unknown'})")
    if own < count + 64:
        return IdleResult(count, 0, None, None, False, None, "", server_files,
                          f"this script may open only {own} files")
    rss_before = rss_kb(pid)
    held: list[socket.socket] = []
    failure = ""
    deadline = time.monotonic() + IDLE_OPEN_TIMEOUT_S
    try:
        while len(held) < count and time.monotonic() < deadline:
            done, batch_failure = open_batch(host, port, min(IDLE_BATCH, count - len(held)), deadline)
            held += done
            if batch_failure:
                failure = batch_failure
                break
        log(f"idle connections: {len(held)} open and idle; settling {IDLE_SETTLE_S:g} s")
        time.sleep(IDLE_SETTLE_S)
        rss_held = rss_kb(pid)
        ok, ms, detail = healthz(host, port)
        open_now = still_open(held)
        if open_now < len(held) and not failure:
            failure = f"{len(held) - open_now} of them were closed by the server"
    finally:
        for sock in held:
            sock.close()
    return IdleResult(count, open_now, rss_before, rss_held, ok, ms, detail, server_files, failure)


# --- report -------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    target: str
    measured: str
    passed: bool | None  # None: reported, no target


def mb(kb: int | None) -> str:
    return "—" if kb is None else f"{kb / 1024:,.1f} MB"


def evaluate(bomb: BombResult, idle: IdleResult, pid: int | None) -> list[Check]:
    no_pid = "not measured (no server PID: pass --pid)"
    checks = [
        Check("fragment bomb (10^9 fields) refused", f"{BOMB_REQUESTS}/{BOMB_REQUESTS} HTTP 400 "
              "GRAPHQL_VALIDATION_FAILED", f"{bomb.refused}/{BOMB_REQUESTS}"
              + (f"; first other answer {bomb.sample}" if bomb.sample else ""),
              bomb.refused == BOMB_REQUESTS),
        Check("fragment bomb refusal time, median", f"≤ {BOMB_LIMIT_MS:g} ms",
              f"{bomb.median_ms:.2f} ms", bomb.median_ms <= BOMB_LIMIT_MS),
        Check("fragment bomb refusal time, max", f"≤ {BOMB_LIMIT_MS:g} ms",
              f"{bomb.max_ms:.2f} ms", bomb.max_ms <= BOMB_LIMIT_MS),
    ]
    if bomb.rss_before_kb is None or bomb.rss_after_kb is None:
        checks.append(Check("server RSS growth over the bomb requests",
                            f"≤ {RSS_GROWTH_LIMIT_KB // 1024} MB", no_pid, False))
    else:
        growth = bomb.rss_after_kb - bomb.rss_before_kb
        checks.append(Check(
            "server RSS growth over the bomb requests", f"≤ {RSS_GROWTH_LIMIT_KB // 1024} MB",
            f"{growth / 1024:+.2f} MB ({mb(bomb.rss_before_kb)} → {mb(bomb.rss_after_kb)})",
            growth <= RSS_GROWTH_LIMIT_KB))
    checks.append(Check(
        f"{idle.requested:,} idle keep-alive connections held", f"all {idle.requested:,} open",
        f"{idle.held:,}" + (f" ({idle.failure})" if idle.failure else "")
        + ("" if idle.server_files is None else f"; server open-files limit {idle.server_files:,}"),
        idle.held == idle.requested and not idle.failure))
    if idle.rss_before_kb is None or idle.rss_held_kb is None:
        checks.append(Check(f"server RSS with {idle.requested:,} idle connections", "reported",
                            no_pid, None if pid is not None else False))
    else:
        grown = idle.rss_held_kb - idle.rss_before_kb
        per = grown / max(idle.held, 1)
        checks.append(Check(
            f"server RSS with {idle.held:,} idle connections", "reported (no target)",
            f"{mb(idle.rss_held_kb)}; +{grown / 1024:,.1f} MB over {mb(idle.rss_before_kb)} "
            f"before = {per:.1f} KB per connection", None))
    checks.append(Check(
        "fresh GET /healthz while they are held", f"HTTP 200 within {HEALTHZ_LIMIT_S * 1000:g} ms",
        f"{idle.healthz_detail}" + ("" if idle.healthz_ms is None else f" in {idle.healthz_ms:.1f} ms"),
        idle.healthz_ok))
    return checks


def markdown(url: str, checks: list[Check]) -> str:
    out = [
        f"## Edge: fragment bomb and idle connections (`bench/edge.py`, {url})",
        "",
        f"Fragment bomb: {BOMB_FAN_OUT}^{BOMB_LEVELS} `__typename`s once expanded, "
        f"{BOMB_WARMUP} warm-up then {BOMB_REQUESTS} timed POSTs on one kept-alive connection "
        f"(RSS growth: over the timed ones). "
        f"Idle connections: each sent one kept-alive `GET /healthz`, then stayed silent; "
        f"VmRSS read {IDLE_SETTLE_S:g} s after the last one opened.",
        "",
        "| check | target | measured | result |",
        "|---|---|---|---|",
    ]
    out += check_rows(checks, "Edge")
    return "\n".join(out)


def check_rows(checks: list[Check], title: str) -> list[str]:
    """The rows of a check table and its verdict line (shared with signin.py)."""
    out = []
    for c in checks:
        result = "—" if c.passed is None else ("PASS" if c.passed else "FAIL")
        out.append(f"| {c.name} | {c.target} | {c.measured} | {result} |")
    judged = [c for c in checks if c.passed is not None]
    passed = all(c.passed for c in judged)
    out += ["", f"**{title}: {'PASS' if passed else 'FAIL'}** "
                f"({sum(bool(c.passed) for c in judged)}/{len(judged)} checks hold)", ""]
    return out


def append_report(path: Path, report: str, checks: list[Check], measured: dict,
                  section: str = "edge") -> None:
    """Appends `report` to the run's .md, and the figures under `section` to its .json."""
    with path.open("a") as f:
        f.write("\n" + report)
    json_path = path.with_suffix(".json")
    if json_path.exists():
        data = json.loads(json_path.read_text())
        data[section] = {
            **measured,
            "checks": [vars(c) for c in checks],
            "passed": all(c.passed for c in checks if c.passed is not None),
        }
        json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    log(f"appended to {path} (and {json_path.name} if present)")


def arguments(description: str) -> argparse.ArgumentParser:
    """The options every measurement script takes: --url, --pid and --append."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", required=True, help="server base URL on loopback, e.g. http://127.0.0.1:8080")
    parser.add_argument("--pid", type=int, help="the server's PID (default: the process listening on the URL's port)")
    parser.add_argument("--append", type=Path, help="a bench/results/*.md report to append to (and its .json)")
    return parser


def loopback_server(name: str, args: argparse.Namespace, say=log) -> tuple[str, int, int | None] | None:
    """The server `args` name: its loopback address, port and PID (None when not found: RSS is
    then not measured). None, said on stderr under `name`, when it cannot be measured."""
    parsed = urllib.parse.urlsplit(args.url)
    host, port = parsed.hostname or "", parsed.port or 80
    try:
        address = ipaddress.ip_address(socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)[0][4][0])
    except (OSError, ValueError) as err:
        print(f"{name}: cannot resolve {host}: {err}", file=sys.stderr)
        return None
    if parsed.scheme != "http" or not address.is_loopback:
        print(f"{name}: only http:// servers on loopback are measured, not {args.url}", file=sys.stderr)
        return None
    pid = args.pid if args.pid is not None else pid_listening_on(port)
    if pid is None:
        say("no PID for the server: RSS is not measured")
    elif rss_kb(pid) is None:
        print(f"{name}: cannot read /proc/{pid}/status", file=sys.stderr)
        return None
    return str(address), port, pid


def main() -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=IDLE_CONNECTIONS, help="idle connections to hold")
    args = parser.parse_args()
    server = loopback_server("edge", args)
    if server is None:
        return 2
    host, port, pid = server

    try:
        bomb = run_bomb(host, port, pid)
        idle = run_idle(host, port, pid, args.connections)
    except OSError as err:
        print(f"edge: the measurement broke: {err}", file=sys.stderr)
        return 2
    checks = evaluate(bomb, idle, pid)
    report = markdown(args.url, checks)
    print(report)
    if args.append:
        append_report(args.append, report, checks, {"bomb": vars(bomb), "idle": vars(idle), "pid": pid})
    return 0 if all(c.passed for c in checks if c.passed is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
