"""`make run` end to end: it serves, and Ctrl-C leaves no process behind."""

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_processes(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) == sid:
                pids.append(int(entry.name))
        except ProcessLookupError:
            continue
    return pids


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def scratch_database_url():
    """A database of its own, so `make run`'s migrate and seed touch nothing else."""
    url = os.environ["DATABASE_URL"]
    admin = url.replace("postgres://", "postgresql://", 1)
    name = f"mastery_make_run_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_make_run_serves_and_ctrl_c_stops_everything(scratch_database_url, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": scratch_database_url,
        "PORT": str(port),
        "DEVSERVICES_DIR": str(tmp_path / "devservices"),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = open(tmp_path / "make-run.log", "w+b")  # noqa: SIM115
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _ = get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                time.sleep(0.5)
        log.seek(0)
        assert status == 200, log.read().decode(errors="replace")[-3000:]
        ready_status, ready = get(f"http://127.0.0.1:{port}/ready")
        assert ready_status == 200, ready
        assert get(f"http://127.0.0.1:{port}/metrics")[0] == 200
        assert get(f"http://127.0.0.1:{port}/api/docs/")[0] == 200
        log.seek(0)
        output = log.read().decode(errors="replace")
        assert "demo-teacher / demo-teacher-password" in output
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    deadline = time.monotonic() + 10
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert session_processes(proc.pid) == []
