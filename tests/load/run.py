"""`make load`: the locust school day (`tests/load/locustfile.py`) against a `make run` of
its own, with a Kafka producer at a steady rate beside it, then one Markdown table.

    python tests/load/run.py [--seconds 60] [--users 300] [--spawn-rate 20] [--kafka-rate 50]

(defaults from $LOAD_SECONDS, $LOAD_USERS, $LOAD_SPAWN_RATE, $LOAD_KAFKA_RATE.) Steps:

1. `make run` with its state in a new temporary directory (DEVSERVICES_DIR): its own
   embedded PostgreSQL, Redis and Kafka, and free ports for the web and the consumer's
   metrics, so it shares nothing with the checkout's `.devservices/` or another stack;
   then it waits for `/ready`.
2. Four weeks of history for every student through Kafka (`produce_events --mode
   sessions`), consumed before the day starts, so predictions and histories have data;
   the logins (`load_accounts`: one per student, teachers, the LMS's service account).
3. locust headless for the bounded time, and `produce_events --rate` for the same time.
4. The table: requests/s, p50/p95/p99 per endpoint, the error rate, the failures by
   reason; the Kafka rate produced and consumed, and the consumer lag at the end.
5. Ctrl-C to `make run`'s process group, as a terminal does, and a check that none of its
   processes (its embedded servers included) is left; the temporary directory goes.

Exits 1 when any request failed, or the stack did not start or stop cleanly.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
START_TIMEOUT = 300  # a fresh stack: initdb, migrate, seed_demo on 2 shared cores
DRAIN_TIMEOUT = 180
STOP_TIMEOUT = 60
PREFILL_DAYS = 28
PREFILL_EVENTS_PER_STUDENT = 60
COHORT_SIZE = 25
# What a stack decides for itself; a value inherited from the caller's shell (a test run's
# DATABASE_URL, say) would point it at servers other people are using.
CHOSEN_BY_THE_STACK = (
    "DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "DEVSERVICES_DIR", "PORT",
    "KAFKA_CONSUMER_METRICS_PORT", "GUNICORN_BIND", "GUNICORN_CONTROL_SOCKET",
    "PROMETHEUS_MULTIPROC_DIR", "DJANGO_SETTINGS_MODULE", "TEST_DATABASE_NAME",
    "CACHE_KEY_PREFIX", "ERASURE_LEDGER_FILE",
)  # fmt: skip


class LoadError(Exception):
    """The run cannot go on; the message says why, in one line."""


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Stack:
    """A `make run` in its own process group, with its state under `state`."""

    state: Path
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen | None = None
    ports: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    server_pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def create(cls, state: Path) -> Stack:
        env = {k: v for k, v in os.environ.items() if k not in CHOSEN_BY_THE_STACK}
        env.update(
            DEVSERVICES_DIR=str(state),
            PORT="0",
            KAFKA_CONSUMER_METRICS_PORT="0",
            ERASURE_LEDGER_FILE=str(state / "erasure-ledger.jsonl"),
            DJANGO_SETTINGS_MODULE="mastery_project.settings.local",
        )
        return cls(state=state, env=env, log=state / "make-run.log")

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["make", "--no-print-directory", "run"],
                cwd=ROOT,
                env={k: v for k, v in self.env.items() if k != "DJANGO_SETTINGS_MODULE"},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        ports_file = self.state / "ports.env"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LoadError(f"make run exited with {self.proc.returncode}")
            if ports_file.exists():
                self.ports = env_file(ports_file)
                with contextlib.suppress(OSError):
                    if get(f"{self.base_url}/ready")[0] == 200:
                        self.urls = env_file(self.state / "urls.env")
                        self.server_pids = self.read_server_pids()
                        return
            time.sleep(1)
        raise LoadError(f"the stack did not answer /ready within {START_TIMEOUT} s")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['PORT']}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['KAFKA_CONSUMER_METRICS_PORT']}/metrics"

    def read_server_pids(self) -> dict[str, int]:
        """The embedded servers' pids (their pidfiles go when they stop): Kafka runs in a
        session of its own and Redis daemonizes, so neither is in make run's group."""
        pidfiles = {
            "PostgreSQL": self.state / "postgres" / "postmaster.pid",
            "Redis": self.state / "redis" / "redis.pid",
            "Kafka": self.state / "kafka" / "tansu.pid",
        }
        return {
            name: int(path.read_text().split()[0])
            for name, path in pidfiles.items()
            if path.exists()
        }

    def manage(self, *args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **kwargs,
        )

    def manage_ok(self, *args: str) -> str:
        proc = self.manage(*args)
        output, _ = proc.communicate(timeout=600)
        if proc.returncode:
            raise LoadError(f"manage.py {args[0]} failed: {output.strip()[-2000:]}")
        return output

    def stop(self) -> list[str]:
        """Ctrl-C to the group, as a terminal does; what was left of the stack afterwards
        (then ended: the group, the servers by their pids, and devservices' own stop)."""
        if self.proc is None:
            return []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        left = []
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            left.append(f"make run did not stop within {STOP_TIMEOUT} s")
        deadline = time.monotonic() + 15
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.2)
        left += self.leftovers()
        if left or not self.server_pids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            for pid in self.server_pids.values():
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
            subprocess.run(
                [sys.executable, "-m", "mastery_project.devservices", "stop"],
                cwd=ROOT, env=self.env, capture_output=True, timeout=60,
            )  # fmt: skip
        self.proc.wait()
        return left

    def leftovers(self) -> list[str]:
        left = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, 0)
            left.append(f"make run's process group {self.proc.pid}")
        left += [f"{name} (pid {pid})" for name, pid in self.server_pids.items() if alive(pid)]
        return left


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie is gone for every purpose here
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    return True


# --- Kafka ---------------------------------------------------------------------------------
# The consumer's backlog is what was produced (produce_events' counts, exact: it fails when a
# message is not delivered) less what the consumer has taken (its /metrics). The embedded
# broker's ListOffsets answers the last batch's base offset + 1 rather than the partition's
# end, so committed offsets against a queried end would understate it.


def consumer_figures(stack: Stack) -> tuple[float, float]:
    """Events the consumer has taken (accepted, duplicates, rejected), and the sum of its
    own `mastery_consumer_lag` gauge (from the ends its fetches saw)."""
    from prometheus_client.parser import text_string_to_metric_families

    _status, body = get(stack.metrics_url)
    taken = lag = 0.0
    for family in text_string_to_metric_families(body.decode()):
        if family.name in (
            "mastery_events_accepted", "mastery_events_duplicate", "mastery_events_rejected"
        ):  # fmt: skip
            taken += sum(s.value for s in family.samples if s.name.endswith("_total"))
        elif family.name == "mastery_consumer_lag":
            lag += sum(s.value for s in family.samples)
    return taken, lag


def wait_taken(stack: Stack, produced: int, timeout: float) -> float | None:
    """Seconds until the consumer has taken `produced` events, or None after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if consumer_figures(stack)[0] >= produced:
            return time.monotonic() - started
        time.sleep(0.5)
    return None


# --- locust's figures ------------------------------------------------------------------------


def number(text: str) -> float:
    return float(text) if text not in ("", "N/A") else 0.0


def stats_rows(prefix: Path) -> list[dict[str, str]]:
    with open(f"{prefix}_stats.csv", newline="") as file:
        return list(csv.DictReader(file))


def failure_rows(prefix: Path) -> list[dict[str, str]]:
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def exception_rows(prefix: Path) -> list[dict[str, str]]:
    path = Path(f"{prefix}_exceptions.csv")
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def ms(text: str) -> str:
    return f"{number(text):,.0f}"


def endpoint_table(rows: list[dict[str, str]]) -> list[str]:
    lines = [
        "| endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | failures | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = sorted(rows, key=lambda r: (r["Name"] == "Aggregated", -number(r["Request Count"])))
    for row in rows:
        count, failed = number(row["Request Count"]), number(row["Failure Count"])
        name = "**all**" if row["Name"] == "Aggregated" else f"`{row['Name']}`"
        lines.append(
            f"| {name} | {count:,.0f} | {number(row['Requests/s']):.1f} | {ms(row['50%'])}"
            f" | {ms(row['95%'])} | {ms(row['99%'])} | {ms(row['Max Response Time'])}"
            f" | {failed:,.0f} | {failed / count if count else 0:.2%} |"
        )
    return lines


# --- the run -------------------------------------------------------------------------------


@dataclass
class Options:
    seconds: int
    users: int
    spawn_rate: float
    kafka_rate: float

    @property
    def teachers(self) -> int:
        """Logins enough for locust's share of teachers (1 in 25, rounded up) and spare."""
        return self.users // COHORT_SIZE + 2


def parse_options(argv: list[str]) -> Options:
    def env_int(name: str, default: int) -> int:
        return int(os.environ.get(name) or default)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=env_int("LOAD_SECONDS", 60))
    parser.add_argument("--users", type=int, default=env_int("LOAD_USERS", 300))
    parser.add_argument(
        "--spawn-rate", type=float, default=float(os.environ.get("LOAD_SPAWN_RATE") or 20)
    )
    parser.add_argument(
        "--kafka-rate", type=float, default=float(os.environ.get("LOAD_KAFKA_RATE") or 50)
    )
    args = parser.parse_args(argv)
    if args.seconds < 10 or args.users < 5 or args.spawn_rate <= 0 or args.kafka_rate <= 0:
        parser.error("--seconds at least 10, --users at least 5, rates positive")
    return Options(args.seconds, args.users, args.spawn_rate, args.kafka_rate)


def say(text: str) -> None:
    print(f"load: {text}", file=sys.stderr, flush=True)


def prepare(stack: Stack, options: Options) -> tuple[Path, int]:
    """The history and the logins; the accounts file and the events produced so far."""
    prefill = options.users * PREFILL_EVENTS_PER_STUDENT
    say(f"history: {prefill:,} events over {PREFILL_DAYS} days through Kafka")
    stack.manage_ok(
        "produce_events", "--count", str(prefill), "--students", str(options.users),
        "--days", str(PREFILL_DAYS), "--mode", "sessions", "--seed", "16",
    )  # fmt: skip
    accounts = stack.state / "accounts.json"
    say(stack.manage_ok(
        "load_accounts", "--students", str(options.users), "--teachers", str(options.teachers),
        "--cohort-size", str(COHORT_SIZE), "--output", str(accounts),
    ).strip())  # fmt: skip
    if wait_taken(stack, prefill, DRAIN_TIMEOUT) is None:
        taken = consumer_figures(stack)[0]
        raise LoadError(f"{taken:,.0f} of {prefill:,} history events consumed in {DRAIN_TIMEOUT} s")
    return accounts, prefill


def school_day(stack: Stack, options: Options, accounts: Path, produced: int) -> dict:
    """locust and the producer side by side; the figures of the Kafka side."""
    prefix = stack.state / "locust"
    say(
        f"{options.users} users for {options.seconds} s (spawn {options.spawn_rate:g}/s),"
        f" Kafka at {options.kafka_rate:g} events/s, against {stack.base_url}"
    )
    taken_before = consumer_figures(stack)[0]
    steady = int(options.kafka_rate * options.seconds)
    started = time.monotonic()
    locust_log = stack.state / "locust.log"
    with open(locust_log, "wb") as log:
        locust = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("locust")), "-f", str(LOCUSTFILE),
                "--headless", "--users", str(options.users),
                "--spawn-rate", str(options.spawn_rate), "--run-time", f"{options.seconds}s",
                "--host", stack.base_url, "--csv", str(prefix), "--only-summary",
                "--stop-timeout", "5",
            ],
            cwd=ROOT,
            env={**stack.env, "LOAD_ACCOUNTS": str(accounts), "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    producer = stack.manage(
        "produce_events", "--count", str(steady),
        "--rate", str(options.kafka_rate), "--students", str(options.users),
        "--days", "1", "--mode", "sessions",
    )  # fmt: skip
    try:
        locust.wait(timeout=options.seconds + 120)
        producer_output, _ = producer.communicate(timeout=120)
    finally:
        for proc in (locust, producer):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    load_seconds = time.monotonic() - started
    if producer.returncode:
        raise LoadError(f"the producer failed: {producer_output.strip()[-2000:]}")
    produced += steady
    taken, lag_gauge = consumer_figures(stack)
    drained = wait_taken(stack, produced, 60)
    log_text = locust_log.read_text(errors="replace")
    spawned = re.search(r"All users spawned: (\{.*?\})", log_text)
    return {
        "prefix": prefix,
        "locust_exit": locust.returncode,
        "spawned": spawned.group(1) if spawned else "?",
        "producer_says": producer_output.strip().splitlines()[-1],
        "consumed_rate": (taken - taken_before) / load_seconds,
        "behind": produced - taken,
        "lag_gauge": lag_gauge,
        "drained": drained,
    }


def report(options: Options, day: dict, load: tuple[float, float]) -> bool:
    """The Markdown table and what goes with it; whether every request succeeded."""
    rows = stats_rows(day["prefix"])
    total = next(r for r in rows if r["Name"] == "Aggregated")
    count, failed = number(total["Request Count"]), number(total["Failure Count"])
    lines = [
        f"{options.seconds} s, {options.users} users {day['spawned']}, spawned at"
        f" {options.spawn_rate:g}/s; load average {load[0]:.1f} before, {load[1]:.1f} after;"
        f" {os.cpu_count()} cores",
        "",
        *endpoint_table(rows),
        "",
        f"Error rate: **{failed / count if count else 0:.2%}** ({failed:,.0f} of {count:,.0f}"
        " requests; a 429 counts as an error).",
        "",
        f"Kafka: {day['producer_says']} (`produce_events --rate {options.kafka_rate:g}`);"
        f" consumed {day['consumed_rate']:.0f} events/s over the run; at the end the consumer"
        f" was {day['behind']:,.0f} events behind (its `mastery_consumer_lag`:"
        f" {day['lag_gauge']:,.0f})"
        + (
            f", drained {day['drained']:.1f} s later."
            if day["drained"] is not None
            else ", not drained within 60 s."
        ),
    ]
    failures = failure_rows(day["prefix"])
    if failures:
        lines += ["", "| failures | endpoint | reason |", "| ---: | --- | --- |"]
        for row in sorted(failures, key=lambda r: -number(r["Occurrences"]))[:20]:
            reason = row["Error"].replace("|", "/")[:160]
            lines.append(f"| {row['Occurrences']} | `{row['Name']}` | {reason} |")
    exceptions = exception_rows(day["prefix"])
    for row in exceptions:
        lines.append(f"\nException in the locustfile ({row['Count']} times): {row['Message']}")
    print("\n".join(lines), flush=True)
    return failed == 0 and not exceptions and day["locust_exit"] == 0


def main(argv: list[str] | None = None) -> int:
    options = parse_options(sys.argv[1:] if argv is None else argv)
    state = Path(tempfile.mkdtemp(prefix="mastery-load-"))
    stack = Stack.create(state)
    passed, left = False, []
    try:
        say(f"starting make run in {state}")
        stack.start()
        say(f"serving on {stack.base_url}, consumer metrics {stack.metrics_url}")
        accounts, produced = prepare(stack, options)
        load_before = os.getloadavg()[0]
        day = school_day(stack, options, accounts, produced)
        passed = report(options, day, (load_before, os.getloadavg()[0]))
    except LoadError as exc:
        say(f"error: {exc}")
        say(f"make run's log ends:\n{stack.log.read_text(errors='replace')[-4000:]}")
    finally:
        say("stopping the stack")
        left = stack.stop()
        if left:
            say(f"error: left running after Ctrl-C: {', '.join(left)} (state kept in {state})")
        else:
            shutil.rmtree(state, ignore_errors=True)
            say("stopped: no process of the stack is left")
    return 0 if passed and not left else 1


if __name__ == "__main__":
    sys.exit(main())
