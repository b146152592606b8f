"""The embedded-services script, run as the user runs it (subprocesses, real servers)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def devservices(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mastery_project.devservices", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def external_env() -> dict:
    """The environment with the servers of this test run named explicitly."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        assert env.get(name), f"{name} is set by `make test`"
    return env


def test_given_servers_are_used_and_nothing_is_started(external_env, tmp_path):
    env = {**external_env, "DEVSERVICES_DIR": str(tmp_path)}
    result = devservices("start", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("external") == 3
    urls = (tmp_path / "urls.env").read_text().splitlines()
    assert f"REDIS_URL={external_env['REDIS_URL']}" in urls
    assert not (tmp_path / "postgres").exists()


def test_an_unreachable_configured_server_fails_fast_with_one_line(external_env, tmp_path):
    env = {
        **external_env,
        "DEVSERVICES_DIR": str(tmp_path),
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/mastery",
    }
    result = devservices("start", env=env, timeout=30)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: PostgreSQL is unreachable (DATABASE_URL=")
    assert "Traceback" not in result.stderr


def test_embedded_redis_starts_is_reused_and_stops(external_env, tmp_path):
    env = {k: v for k, v in external_env.items() if k != "REDIS_URL"}
    env["DEVSERVICES_DIR"] = str(tmp_path)
    first = devservices("start", env=env)
    assert first.returncode == 0, first.stderr
    assert "Redis      started" in first.stdout
    pid = int((tmp_path / "redis" / "redis.pid").read_text())
    try:
        second = devservices("start", env=env)
        assert "Redis      reused" in second.stdout
        assert int((tmp_path / "redis" / "redis.pid").read_text()) == pid
    finally:
        assert devservices("stop", env=env).returncode == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_run_stops_what_it_started_when_the_command_ends(external_env, tmp_path):
    env = {k: v for k, v in external_env.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["DEVSERVICES_DIR"] = str(tmp_path)
    show = (
        "import os, pathlib; d = pathlib.Path(os.environ['DEVSERVICES_DIR']);"
        "print(os.environ['KAFKA_BOOTSTRAP_SERVERS'], (d / 'kafka' / 'tansu.pid').read_text())"
    )
    result = devservices("run", "--", sys.executable, "-c", show, env=env)
    assert result.returncode == 0, result.stderr
    servers, pid = result.stdout.strip().splitlines()[-1].split()
    assert servers.startswith("127.0.0.1:")
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)
