"""`devservices run --port VAR=PREFERRED`: the ports a stack binds later are chosen free,
never twice for stacks that start together, and written to `.devservices/ports.env`."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOW = "import os; print('child', os.environ['X'], flush=True)"
HOLD = SHOW + "; import sys; sys.stdin.read()"  # runs until its stdin closes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def devservices_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mastery_project.devservices", *args]


def child_port(stdout: str) -> int:
    return int(next(line for line in stdout.splitlines() if line.startswith("child ")).split()[1])


@pytest.fixture
def stack_env(tmp_path) -> dict:
    """The servers of this test run given explicitly, and a state directory of its own."""
    env = {k: v for k, v in os.environ.items() if k != "X"}
    for name in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        assert env.get(name), f"{name} is set by `make test`"
    env["DEVSERVICES_DIR"] = str(tmp_path / "stack")
    return env


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        devservices_command("run", *args),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_taken_preferred_port_gives_another_free_one_and_says_so(stack_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        preferred = taken.getsockname()[1]
        show_file = f"{SHOW}; print(open(os.environ['DEVSERVICES_DIR'] + '/ports.env').read())"
        result = run(stack_env, "--port", f"X={preferred}", "--", sys.executable, "-c", show_file)
    assert result.returncode == 0, result.stderr
    port = child_port(result.stdout)
    assert port != preferred
    assert f"free     X={port} ({preferred} is taken)" in result.stdout
    assert f"X={port}" in result.stdout.split("child")[1]  # ports.env while it ran
    assert not (Path(stack_env["DEVSERVICES_DIR"]) / "ports.env").exists()


def test_two_runs_starting_together_never_get_the_same_port(stack_env, tmp_path):
    preferred = free_port()
    first = subprocess.Popen(
        devservices_command("run", "--port", f"X={preferred}", "--", sys.executable, "-c", HOLD),
        cwd=ROOT,
        env=stack_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while not lines or not lines[-1].startswith("child "):
            lines.append(first.stdout.readline())
            assert lines[-1], "the first run ended early"
        # Nothing listens on the port yet, as when a stack is still migrating.
        assert child_port("".join(lines)) == preferred
        other = {**stack_env, "DEVSERVICES_DIR": str(tmp_path / "other")}
        second = run(other, "--port", f"X={preferred}", "--", sys.executable, "-c", SHOW)
        assert second.returncode == 0, second.stderr
        assert child_port(second.stdout) != preferred
        refused = run({**other, "X": str(preferred)}, "--port", "X=1", "--", "true")
        assert refused.returncode == 1
        assert refused.stderr == (
            f"error: X={preferred} is taken (unset X, or 0, for a free port)\n"
        )
    finally:
        first.stdin.close()
        first.wait(timeout=30)
    again = run(stack_env, "--port", f"X={preferred}", "--", sys.executable, "-c", SHOW)
    assert child_port(again.stdout) == preferred  # released when the first run ended


def test_a_given_port_is_used_as_given_and_zero_means_any_free_one(stack_env):
    given = free_port()
    result = run({**stack_env, "X": str(given)}, "--port", "X=1", "--", sys.executable, "-c", SHOW)
    assert result.returncode == 0, result.stderr
    assert child_port(result.stdout) == given
    assert f"given    X={given}" in result.stdout
    any_free = run({**stack_env, "X": "0"}, "--port", "X=1", "--", sys.executable, "-c", SHOW)
    assert any_free.returncode == 0, any_free.stderr
    assert child_port(any_free.stdout) not in (0, 1)


def test_a_given_port_that_is_taken_fails_before_any_server_starts(stack_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run({**stack_env, "X": str(port)}, "--port", "X=1", "--", "true")
    assert result.returncode == 1
    assert result.stderr == f"error: X={port} is taken (unset X, or 0, for a free port)\n"
    assert not (Path(stack_env["DEVSERVICES_DIR"]) / "urls.env").exists()


@pytest.mark.parametrize("value", ["abc", "70000", "-1"])
def test_a_given_value_that_is_not_a_port_is_one_line(stack_env, value):
    result = run({**stack_env, "X": value}, "--port", "X=1", "--", "true")
    assert result.returncode == 1
    assert result.stderr == f"error: X={value} is not a TCP port\n"
