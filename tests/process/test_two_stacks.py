"""Two `make run`s on one machine at once, each in its own copy of the tree on its own
embedded PostgreSQL, Redis and Kafka: both serve, both consumers' metrics answer, each
gunicorn has its own control socket, and Ctrl-C leaves no process of either behind."""

import contextlib
import json
import os
import signal
import stat
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from shutil import copytree, ignore_patterns, rmtree

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
START_TIMEOUT = 240  # two fresh stacks (initdb, migrate, seed) side by side on 2 cores
# What `make run` decides itself: the servers, the ports and where its state lives.
CHOSEN_BY_THE_STACK = (
    "DATABASE_URL",
    "REDIS_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "DEVSERVICES_DIR",
    "PORT",
    "KAFKA_CONSUMER_METRICS_PORT",
    "GUNICORN_BIND",
    "GUNICORN_CONTROL_SOCKET",
    "PROMETHEUS_MULTIPROC_DIR",
    "DJANGO_SETTINGS_MODULE",
    "TEST_DATABASE_NAME",
    "CACHE_KEY_PREFIX",
)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


def processes_in(tree: Path) -> list[int]:
    """Processes working in TREE or naming it on their command line (servers included)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        # Each read on its own: without CAP_SYS_PTRACE, the cwd of PostgreSQL (run as
        # its own user when we are root) cannot be read, but its command line can.
        with contextlib.suppress(OSError):
            if str(tree) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(entry.name))
                continue
        with contextlib.suppress(OSError):
            if f"{os.readlink(entry / 'cwd')}/".startswith(f"{tree}/"):
                pids.append(int(entry.name))
    return pids


@pytest.fixture
def two_copies():
    """Two copies of the working tree as it is (a clone would miss uncommitted work).

    Each links this checkout's `.venv` rather than installing one: `make run` is then
    told the install step is done (`--old-file`), so it never writes to the shared venv.
    The copies have no `.devservices/`, so each stack starts servers of its own; whatever
    a failed run leaves is stopped through that copy's own devservices. They live outside
    pytest's tmp_path: every pytest session that starts resets /tmp/pytest-of-<user> to
    0700, which locks out PostgreSQL when pgserver runs it as its own user (as root).
    """
    base = Path(tempfile.mkdtemp(prefix="mastery-two-stacks-"))
    skip = ignore_patterns(
        ".venv", ".devservices", ".git", ".env", "var", "staticfiles", "htmlcov",
        "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", ".coverage",
    )  # fmt: skip
    copies = []
    for name in ("a", "b"):
        copy = copytree(ROOT, base / name, ignore=skip)
        (copy / ".venv").symlink_to(VENV)
        copies.append(copy)
    yield copies
    for copy in copies:
        subprocess.run(
            [VENV / "bin/python", "-m", "mastery_project.devservices", "stop"],
            cwd=copy,
            env=stack_env(),
            capture_output=True,
            timeout=60,
        )
    rmtree(base)


def stack_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in CHOSEN_BY_THE_STACK}


def make_run(copy: Path) -> tuple[subprocess.Popen, Path]:
    log_path = copy / "make-run.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "--old-file=.venv/.installed", "run"],
            cwd=copy,
            env=stack_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, log_path


def wait_until_serving(proc: subprocess.Popen, copy: Path, log: Path, deadline: float) -> dict:
    """The stack's ports (from its `.devservices/ports.env`) once its web answers /health."""
    ports_file = copy / ".devservices" / "ports.env"
    while time.monotonic() < deadline and proc.poll() is None:
        if ports_file.exists():
            ports = env_file(ports_file)
            try:
                if get(f"http://127.0.0.1:{ports['PORT']}/health")[0] == 200:
                    return ports
            except OSError:
                pass
        time.sleep(0.5)
    pytest.fail(f"{copy.name} did not serve:\n{log.read_text(errors='replace')[-4000:]}")


def control_socket_workers(copy: Path) -> list[int]:
    sock = copy / ".devservices" / "gunicorn.ctl"
    assert stat.S_ISSOCK(sock.stat().st_mode)
    result = subprocess.run(
        [VENV / "bin/gunicornc", "-s", sock, "-c", "show workers", "-j"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 0, result.stderr
    return [w["pid"] for w in json.loads(result.stdout)["workers"]]


def ctrl_c(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):  # a stack that died has no group left
            os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise


def test_two_make_runs_serve_side_by_side_and_ctrl_c_stops_both(two_copies):
    stacks = [(copy, *make_run(copy)) for copy in two_copies]  # both at the same moment
    try:
        deadline = time.monotonic() + START_TIMEOUT
        ports = [wait_until_serving(proc, copy, log, deadline) for copy, proc, log in stacks]

        numbers = [int(p[name]) for p in ports for name in ("PORT", "KAFKA_CONSUMER_METRICS_PORT")]
        assert len(set(numbers)) == 4, ports
        for (copy, _proc, log), stack_ports in zip(stacks, ports, strict=True):
            urls = env_file(copy / ".devservices" / "urls.env")
            assert f"host={copy}/.devservices/postgres" in urls["DATABASE_URL"]
            assert urls["REDIS_URL"] == f"unix://{copy}/.devservices/redis/redis.sock"
            status, body = get(f"http://127.0.0.1:{stack_ports['PORT']}/ready")
            assert status == 200, body
            metrics_port = stack_ports["KAFKA_CONSUMER_METRICS_PORT"]
            status, body = get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert status == 200
            assert b"mastery_events_accepted_total" in body
            assert f"metrics on http://127.0.0.1:{metrics_port}/metrics" in log.read_text()
            workers = control_socket_workers(copy)
            assert len(workers) == 2
            assert all(os.readlink(f"/proc/{pid}/cwd") == str(copy) for pid in workers)
        kafka = {env_file(copy / ".devservices" / "urls.env")["KAFKA_BOOTSTRAP_SERVERS"]
                 for copy, _proc, _log in stacks}  # fmt: skip
        assert len(kafka) == 2
        assert [proc.poll() for _copy, proc, _log in stacks] == [None, None]  # neither died
    finally:
        ctrl_c([proc for _copy, proc, _log in stacks])
    for copy, _proc, _log in stacks:
        deadline = time.monotonic() + 15
        while processes_in(copy) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_in(copy) == []
        assert not (copy / ".devservices" / "ports.env").exists()
