"""A real gunicorn for process tests: started as the Procfile starts it (`gunicorn.conf.py`)
on this test run's database, served once `/health` answers, stopped at the end."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_database_url() -> str:
    """The environment's DATABASE_URL naming this test run's database (its tables are
    committed; a test's own rows are not, unless it is transactional)."""
    return urlunsplit(
        urlsplit(os.environ["DATABASE_URL"])._replace(
            path=f"/{settings.DATABASES['default']['NAME']}"
        )
    )


def health(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/health", headers={"X-Forwarded-Proto": "https"})
        return conn.getresponse().status
    finally:
        conn.close()


@contextmanager
def gunicorn(
    tmp_path: Path, env: dict[str, str], *, options: tuple[str, ...] = ()
) -> Iterator[tuple[subprocess.Popen, int]]:
    """gunicorn on a free port with the environment plus `env` (the settings module first
    of all), its log in `tmp_path`; yields (process, port) once `/health` answers. Stopped
    with SIGTERM (SIGKILL after 30 s) unless the test stopped it."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": run_database_url(),
        "PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"prometheus-{port}"),
        **env,
    }
    log_path = tmp_path / f"gunicorn-{port}.log"
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", *options]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*command, "mastery_project.wsgi"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
            try:
                if health(port) == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"gunicorn did not serve within {START_SECONDS} s"
            time.sleep(0.2)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
