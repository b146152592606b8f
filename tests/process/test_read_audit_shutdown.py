"""Buffered read audits in a real gunicorn (`gunicorn.conf.py`: two workers, threads, the
production settings): the reads a worker still holds when gunicorn is stopped (SIGTERM, its
graceful shutdown) are in the audit log once it has exited, and a running server writes
them within a bounded time of its AUDIT_READ_FLUSH_MS."""

import http.client
import secrets
import signal
import time
from collections import Counter
from pathlib import Path

import jwt
import orjson
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from compliance.models import AuditLog
from mastery.models import User
from tests.factories import StudentFactory, UserFactory
from tests.gunicorn import gunicorn

pytestmark = pytest.mark.django_db(transaction=True)

READS = 24
STUDENTS = [f"s-{n:02d}" for n in range(8)]
SIGNING_KEY = secrets.token_urlsafe(48)


def request(port: int, method: str, path: str, *, token: str = "", body: dict | None = None):
    """Status and body of one request on a connection of its own (so that the kernel
    spreads them over the workers), as the TLS proxy in front would forward it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"X-Forwarded-Proto": "https", "Connection": "close"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    payload = None
    if body is not None:
        payload = orjson.dumps(body)
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=payload, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def production_gunicorn(tmp_path: Path, *, flush_ms: int):
    """gunicorn as the Procfile starts it, with production settings on this test run's
    database."""
    return gunicorn(
        tmp_path,
        {
            "DJANGO_SETTINGS_MODULE": "mastery_project.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "JWT_SIGNING_KEY": SIGNING_KEY,
            "ERASURE_HASH_KEY": secrets.token_urlsafe(48),
            "ERASURE_LEDGER_FILE": str(tmp_path / "erasure-ledger.jsonl"),
            "ALLOWED_HOSTS": "127.0.0.1",
            "CACHE_KEY_PREFIX": f"read-audit-{secrets.token_hex(4)}",
            "AUDIT_READ_FLUSH_MS": str(flush_ms),
            "WEB_CONCURRENCY": "2",
            "DEVSERVICES_DIR": str(tmp_path),  # its own metrics files and control socket
            "LOG_LEVEL": "WARNING",
        },
    )


def bearer_for(user: User) -> str:
    """An access token of `user`, signed with the server's key."""
    return jwt.encode(dict(AccessToken.for_user(user).payload), SIGNING_KEY, algorithm="HS256")


@pytest.fixture
def reader() -> User:
    for sid in STUDENTS:
        StudentFactory(student_id=sid)
    return UserFactory(username="reader-admin", role=User.Role.ADMIN)


def read_all(port: int, token: str) -> Counter:
    """READS successful `mastery/query` reads, over STUDENTS; how many of each."""
    asked = Counter()
    for n in range(READS):
        student_id = STUDENTS[n % len(STUDENTS)]
        status, body = request(
            port, "POST", "/api/v1/mastery/query", token=token, body={"student_id": student_id}
        )
        assert status == 200, body[:300]
        assert orjson.loads(body)["student_id"] == student_id
        asked[student_id] += 1
    return asked


def audited() -> Counter:
    rows = AuditLog.objects.filter(action="mastery.query", outcome="ok")
    return Counter(rows.values_list("student_ref", flat=True))


def test_reads_still_buffered_at_sigterm_are_written_before_gunicorn_exits(reader, tmp_path):
    with production_gunicorn(tmp_path, flush_ms=60_000) as (proc, port):
        asked = read_all(port, bearer_for(reader))
        assert audited() == Counter()  # every entry still waits in a worker's buffer
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert audited() == asked
    assert AuditLog.objects.filter(action="mastery.query").count() == READS


def test_a_running_server_writes_its_reads_within_a_bounded_time(reader, tmp_path):
    flush_ms = 100
    bound = 5.0  # seconds: the interval, and a loaded two-core machine's slack
    with production_gunicorn(tmp_path, flush_ms=flush_ms) as (proc, port):
        asked = read_all(port, bearer_for(reader))
        done = time.monotonic()
        while audited() != asked:
            assert time.monotonic() - done < bound, f"{audited()} of {asked} after {bound} s"
            time.sleep(0.05)
        assert proc.poll() is None  # written by the running workers, not at their exit
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert AuditLog.objects.filter(action="mastery.query").count() == READS  # none twice
