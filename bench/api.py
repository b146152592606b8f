"""`POST /api/v1/mastery/query` through gunicorn as configured, beside a bare Django view.

gunicorn runs `gunicorn.conf.py` (its workers, threads and worker class) with production
settings (`bench/settings.py`: DEBUG off, every secret set, HTTPS behind a proxy) in this
run's bench database; only the rate limit is lifted, for the bench alone. `wrk` (a C load
generator: 2 threads, 32 connections) posts `{student_id}` naming one of the seeded
students at random, first to the bare view (`bench/bare.py`: the same rows, no
authentication, audit or validation), then to the API, alternately `runs` times for a
fixed time each. Figures: requests/s, p50, p95, p99; the ratio is ours ÷ bare in
requests/s. A run with any non-2xx answer or socket error is reported as failed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "wrk.lua"
CONNECTIONS = 32
STUDENTS = 1_000
TOPICS_PER_STUDENT = 8
SECONDS = {"small": 5, "default": 15, "large": 30}
STUDENT_PREFIX = "api-"
PASSWORD = secrets.token_urlsafe(16)
USERNAME = "bench-api"


def find_wrk() -> str | None:
    """wrk from PATH; as root, Debian's package is installed when missing."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": False}
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, **quiet)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, **quiet)
    return shutil.which("wrk")


def seed() -> None:
    """Students with records in several topics, and an admin login (sees every student)."""
    from django.db import connection

    from mastery.services import account_create_or_update

    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO mastery_topic (slug) SELECT 'api.topic-' || n
               FROM generate_series(1, %s) AS n""",
            [TOPICS_PER_STUDENT],
        )
        cursor.execute(
            """WITH made AS (
                   INSERT INTO mastery_student (student_id, analytics_consent, created_at)
                   SELECT %s || lpad((n - 1)::text, 5, '0'), true, now()
                   FROM generate_series(1, %s) AS n RETURNING id)
               INSERT INTO mastery_masteryrecord (student_id, topic_id, completion, quiz,
                   quality, consistency, mastery, level, facts, policy_hash, updated_at)
               SELECT made.id, t.id, 0.5, 0.5, 0.5, 0.5,
                   round(random()::numeric, 4)::float8, 'developing', '{}', 'bench', now()
               FROM made CROSS JOIN mastery_topic AS t WHERE t.slug LIKE 'api.topic-%%'""",
            [STUDENT_PREFIX, STUDENTS],
        )
        cursor.execute("ANALYZE")
    account_create_or_update(username=USERNAME, role="admin", password=PASSWORD)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(port: int, state_dir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PORT": str(port),
        "DEVSERVICES_DIR": str(state_dir),  # its own metrics files and control socket
        "SECRET_KEY": secrets.token_urlsafe(64),
        "JWT_SIGNING_KEY": secrets.token_urlsafe(48),
        "ERASURE_HASH_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "RATE_LIMIT_MASTERY": "100000000/m",  # lifted for the bench only
        "CACHE_KEY_PREFIX": f"bench-{secrets.token_hex(4)}",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",
        "GUNICORN_CMD_ARGS": "--log-level warning",  # its own start-up lines only
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "mastery_project.wsgi"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise RuntimeError("gunicorn did not answer /health within 60 s")


def token(port: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/auth/token",
        data=orjson.dumps({"username": USERNAME, "password": PASSWORD}),
        headers={"Content-Type": "application/json", "X-Forwarded-Proto": "https"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (our http URL)
        return orjson.loads(answer.read())["access"]


def wrk(binary: str, url: str, seconds: int, access: str) -> dict:
    env = {
        **os.environ,
        "BENCH_TOKEN": access,
        "BENCH_STUDENTS": str(STUDENTS),
        "BENCH_STUDENT_PREFIX": STUDENT_PREFIX,
    }
    command = [
        binary, "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s",
        "-s", str(LUA), url,
    ]  # fmt: skip
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    figures = orjson.loads(line.removeprefix("BENCH "))
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    return figures


def api_bench(*, size: str = "default", runs: int = 3) -> list[dict]:
    """Seeds, starts gunicorn, measures both endpoints alternately, returns the rows."""
    binary = find_wrk()
    if binary is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk); no API figures")
    seed()
    from django.db import connection

    connection.close()  # the server's workers are the only clients from here on
    seconds = SECONDS[size]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-gunicorn-") as state_dir:
        server = start_gunicorn(port, Path(state_dir))
        try:
            access = token(port)
            base = f"http://127.0.0.1:{port}"
            urls = {"bare": f"{base}/bench/bare-mastery", "ours": f"{base}/api/v1/mastery/query"}
            for url in urls.values():  # warm-up: connections, caches, the workers' imports
                wrk(binary, url, 2, access)
            measured: dict[str, list[dict]] = {"bare": [], "ours": []}
            loads: list[float] = []
            for attempt in range(runs):
                loads.append(os.getloadavg()[0])
                for name, url in urls.items():
                    measured[name].append(wrk(binary, url, seconds, access))
                    last = measured[name][-1]
                    print(
                        f"api: {name} run {attempt + 1}/{runs}: {last['rps']:,.0f} req/s,"
                        f" p95 {last['p95_us'] / 1000:.1f} ms (load {loads[-1]:.1f})",
                        flush=True,
                    )
        finally:
            server.terminate()
            server.wait(30)

    def median(name: str, key: str) -> float:
        return statistics.median(run[key] for run in measured[name])

    failures = sum(r["non2xx"] + r["socket_errors"] for rs in measured.values() for r in rs)
    ours_rps, bare_rps = median("ours", "rps"), median("bare", "rps")
    p = {q: median("ours", f"p{q}_us") / 1000 for q in (50, 95, 99)}
    bare_p = {q: median("bare", f"p{q}_us") / 1000 for q in (50, 95, 99)}
    ratio = ours_rps / bare_rps
    return [
        {
            "measure": f"`POST /mastery/query` through gunicorn as configured, {CONNECTIONS}"
            f" connections (wrk), {seconds} s a run, {STUDENTS:,} students x"
            f" {TOPICS_PER_STUDENT} topics",
            "ours": f"{ours_rps:,.0f} req/s, p50 {p[50]:.1f} ms, p95 {p[95]:.1f} ms,"
            f" p99 {p[99]:.1f} ms",
            "baseline": f"{bare_rps:,.0f} req/s, p50 {bare_p[50]:.1f} ms, p95 {bare_p[95]:.1f} ms,"
            f" p99 {bare_p[99]:.1f} ms (bare Django view, same rows, same server)",
            "ratio": ratio,
            "target": "≥ 2,000 req/s, p95 < 25 ms, ≥ 0.7 x baseline",
            "met": failures == 0 and ours_rps >= 2000 and p[95] < 25 and ratio >= 0.7,
            "load": statistics.median(loads),
            "figures": {**measured, "failed_requests": failures, "loads": loads},
        }
    ]
