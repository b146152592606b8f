"""Buffered read audits (`compliance.services.audit`): with AUDIT_READ_FLUSH_MS above 0, a
read's entries wait in the process's `ReadAuditBuffer` and are written by COPY on a thread
of their own. They must become the rows the synchronous write gives, be retried without
loss or duplicates, refuse reads (503) once the buffer is full, be written at close, and
survive the COPY whatever they hold."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.test import RequestFactory, override_settings

from compliance.models import AuditLog
from compliance.services import audit
from compliance.services.audit import ReadAuditBuffer, read_audit_buffer
from compliance.services.erasure import student_erase
from compliance.services.pseudonyms import student_hash
from mastery.models import User
from mastery_project.errors import ServiceUnavailable
from tests.factories import StudentFactory, UserFactory, two_cohort_school

pytestmark = pytest.mark.django_db(transaction=True)

QUERY = "/api/v1/mastery/query"
# The writer thread never flushes on its own within a test: only close() or flush() write.
NEVER_MS = 3_600_000
FIELDS = (
    "actor_id", "actor_username", "actor_role", "action", "student_ref", "resource", "outcome",
    "ip", "correlation_id", "details",
)  # fmt: skip


@pytest.fixture
def users() -> dict[str, User]:
    students = {sid: StudentFactory(student_id=sid) for sid in ("s-a1", "s-a2", "s-b1")}
    users, _ = two_cohort_school(students)
    return users


@pytest.fixture
def process_buffer():
    """The process's own buffer, empty before the test and closed (its thread stopped, what
    is left written) after it."""
    assert read_audit_buffer.pending() == 0
    yield read_audit_buffer
    read_audit_buffer.close()
    assert read_audit_buffer.pending() == 0


@pytest.fixture
def buffers():
    """Fresh buffers built by the test (`buffers.append(...)`), closed after it."""
    made: list[ReadAuditBuffer] = []
    yield made
    for buffer in made:
        buffer.close(timeout=2)


def entry(ref: str, *, actor: User | None = None, **fields) -> AuditLog:
    return AuditLog(
        created_at=fields.pop("created_at", datetime.now(UTC)),
        actor=actor,
        actor_username=actor.username if actor else "",
        actor_role=actor.role if actor else "",
        action=fields.pop("action", "test.read"),
        student_ref=ref,
        **fields,
    )


def rows(action: str = "test.read") -> list[AuditLog]:
    return list(AuditLog.objects.filter(action=action).order_by("id"))


def fields_of(row: AuditLog) -> dict:
    return {name: getattr(row, name) for name in FIELDS}


def buffer_write(entries) -> None:
    """What a buffer writes with when given no writer: the COPY, in one commit."""
    ReadAuditBuffer().write(entries)


class FlakyWriter:
    """Fails its first `failures` calls, then writes as a buffer does by default;
    remembers each batch it got. A failing call first runs `while_failing(n)` (n from 1):
    a read taken while the write is under way."""

    def __init__(self, failures: int, while_failing=None):
        self.failures = failures
        self.while_failing = while_failing
        self.batches: list[list[str]] = []

    def __call__(self, entries) -> None:
        self.batches.append([e.student_ref for e in entries])
        if len(self.batches) <= self.failures:
            if self.while_failing is not None:
                self.while_failing(len(self.batches))
            raise ConnectionError("the database is away")
        buffer_write(entries)


def wait_until(condition, *, timeout: float) -> None:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, f"not within {timeout} s"
        time.sleep(0.01)


# --- through the API: the same rows as the synchronous write ---------------------------


def read_twice(client, student_id: str, *, remote_addr: str) -> dict[str, tuple]:
    """The same read audited synchronously and buffered: their rows, and the instants
    around the buffered request."""
    with override_settings(AUDIT_READ_FLUSH_MS=0):
        sync = client.post(
            QUERY, {"student_id": student_id}, format="json", HTTP_X_REQUEST_ID="sync-read",
            REMOTE_ADDR=remote_addr,
        )  # fmt: skip
    with override_settings(AUDIT_READ_FLUSH_MS=NEVER_MS):
        before = datetime.now(UTC)
        buffered = client.post(
            QUERY, {"student_id": student_id}, format="json", HTTP_X_REQUEST_ID="buffered-read",
            REMOTE_ADDR=remote_addr,
        )  # fmt: skip
        after = datetime.now(UTC)
        assert sync.status_code == buffered.status_code
        assert read_audit_buffer.pending() == 1
        assert not AuditLog.objects.filter(correlation_id="buffered-read").exists()
        time.sleep(0.05)  # written later than it was read
        read_audit_buffer.close()
    return {
        "sync": AuditLog.objects.get(correlation_id="sync-read"),
        "buffered": AuditLog.objects.get(correlation_id="buffered-read"),
        "read_between": (before, after),
    }


@pytest.mark.parametrize(
    ("student_id", "outcome"), [("s-a2", "ok"), ("s-b1", "not_found")], ids=["found", "refused"]
)
@pytest.mark.parametrize("remote_addr", ["127.0.0.1", "2001:db8::7"], ids=["ipv4", "ipv6"])
def test_a_buffered_read_is_the_row_the_synchronous_write_gives(
    users, client_for, process_buffer, student_id, outcome, remote_addr
):
    got = read_twice(client_for(users["teacher"]), student_id, remote_addr=remote_addr)
    sync, buffered = fields_of(got["sync"]), fields_of(got["buffered"])
    assert sync.pop("correlation_id") == "sync-read"
    assert buffered.pop("correlation_id") == "buffered-read"
    assert buffered == sync
    assert buffered == {
        "actor_id": users["teacher"].pk,
        "actor_username": "teacher-a",
        "actor_role": "teacher",
        "action": "mastery.query",
        "student_ref": student_id,
        "resource": QUERY,
        "outcome": outcome,
        "ip": remote_addr,
        "details": {},
    }
    before, after = got["read_between"]
    assert before <= got["buffered"].created_at <= after  # when it was read, not written


def test_audit_read_write_buffers_what_audit_log_write_writes(users):
    """Every field of an entry, a management command's (no request, an operator label) and
    one with details, for several students at once."""
    entry_args = [
        {
            "request": None, "actor_label": "ops-cron", "action": "test.read",
            "student_refs": ["s-a1", "s-b1"], "resource": "r" * 250, "details": {"n": 2},
        },
        {
            "request": None, "actor": users["service"], "action": "test.read",
            "student_refs": ["s-a2"], "outcome": "denied", "details": {"why": "ünïcode \"q\""},
        },
    ]  # fmt: skip
    for args in entry_args:
        audit.audit_log_write(**args)
    sync = [fields_of(r) for r in rows()]
    with override_settings(AUDIT_READ_FLUSH_MS=NEVER_MS):
        try:
            for args in entry_args:
                audit.audit_read_write(**args)
            assert read_audit_buffer.pending() == 3
            assert len(rows()) == 3
        finally:
            read_audit_buffer.close()
    buffered = [fields_of(r) for r in rows()[3:]]
    assert buffered == sync
    assert [b["actor_role"] for b in buffered] == ["operator", "operator", "service"]
    assert buffered[0]["resource"] == "r" * 200


@override_settings(AUDIT_READ_FLUSH_MS=100)
def test_the_writer_thread_writes_a_read_within_its_interval(users, client_for, process_buffer):
    response = client_for(users["admin"]).post(QUERY, {"student_id": "s-b1"}, format="json")
    assert response.status_code == 200
    wait_until(
        lambda: AuditLog.objects.filter(action="mastery.query", student_ref="s-b1").exists(),
        timeout=5,
    )
    assert process_buffer.pending() == 0


@override_settings(AUDIT_READ_FLUSH_MS=NEVER_MS, AUDIT_READ_BUFFER_MAX=2)
def test_the_api_answers_503_once_the_buffer_is_full(users, client_for, process_buffer):
    client = client_for(users["admin"])
    assert [
        client.post(QUERY, {"student_id": sid}, format="json").status_code
        for sid in ("s-a1", "s-a2")
    ] == [200, 200]
    refused = client.post(QUERY, {"student_id": "s-b1"}, format="json")
    assert refused.status_code == 503
    assert refused["Retry-After"] == str(max(1, settings.AUDIT_READ_RETRY_SECONDS))
    assert refused.json()["error"]["code"] == "audit_unavailable"
    assert "student_id" not in refused.json()  # nothing of the student was served
    process_buffer.close()
    assert [r.student_ref for r in rows("mastery.query")] == ["s-a1", "s-a2"]


# --- a buffer of its own: failures, a full buffer, close -------------------------------


@override_settings(AUDIT_READ_FLUSH_MS=NEVER_MS)
def test_a_failing_writer_loses_nothing_and_writes_nothing_twice(users, buffers):
    buffer = ReadAuditBuffer()
    writer = buffer.write = FlakyWriter(
        failures=3, while_failing=lambda n: buffer.add([entry(f"during-{n}")])
    )
    buffers.append(buffer)
    buffer.add([entry("e1"), entry("e2")])
    assert buffer.flush() is False
    assert buffer.pending() == 3
    assert buffer.flush() is False
    buffer.add([entry("e3")])
    assert buffer.flush() is False
    buffer.add([entry("e4")])
    assert buffer.flush() is True
    # A failed batch goes back before what came in meanwhile: first in, first written.
    assert writer.batches == [
        ["e1", "e2"],
        ["e1", "e2", "during-1"],
        ["e1", "e2", "during-1", "during-2", "e3"],
        ["e1", "e2", "during-1", "during-2", "e3", "during-3", "e4"],
    ]
    assert [r.student_ref for r in rows()] == writer.batches[-1]
    assert buffer.pending() == 0
    assert buffer.flush() is True
    assert len(rows()) == 7


@override_settings(AUDIT_READ_FLUSH_MS=20, AUDIT_READ_RETRY_SECONDS=0)
def test_the_writer_thread_retries_until_written_in_order(users, buffers):
    writer = FlakyWriter(failures=3)
    buffer = ReadAuditBuffer(write=writer)
    buffers.append(buffer)
    refs = [f"e{n}" for n in range(40)]
    for ref in refs:
        buffer.add([entry(ref)])
        time.sleep(0.002)
    wait_until(lambda: buffer.pending() == 0, timeout=10)
    assert len(writer.batches) > 3  # it did fail, and was retried
    assert [r.student_ref for r in rows()] == refs


@override_settings(AUDIT_READ_FLUSH_MS=NEVER_MS, AUDIT_READ_BUFFER_MAX=3)
def test_add_is_refused_with_503_once_the_buffer_holds_its_maximum(users, buffers):
    buffer = ReadAuditBuffer()
    buffers.append(buffer)
    for ref in ("e1", "e2", "e3"):
        buffer.add([entry(ref)])
    with pytest.raises(ServiceUnavailable) as refused:
        buffer.add([entry("e4")])
    assert refused.value.status_code == 503
    assert refused.value.code == "audit_unavailable"
    assert refused.value.headers == {"Retry-After": str(max(1, settings.AUDIT_READ_RETRY_SECONDS))}
    assert buffer.pending() == 3
    buffer.close()
    assert [r.student_ref for r in rows()] == ["e1", "e2", "e3"]
    buffer.add([entry("e5")])  # room again once written
    assert buffer.pending() == 1


@override_settings(AUDIT_READ_FLUSH_MS=NEVER_MS)
def test_close_writes_what_is_left_and_stops_the_thread(users, buffers):
    buffer = ReadAuditBuffer()
    buffers.append(buffer)
    buffer.add([entry("e1"), entry("e2")])
    buffer.add([entry("e3")])
    thread = buffer._thread
    assert thread.is_alive()
    assert (buffer.pending(), rows()) == (3, [])
    buffer.close()
    assert not thread.is_alive()
    assert [r.student_ref for r in rows()] == ["e1", "e2", "e3"]
    assert buffer.pending() == 0


# --- COPY round trip ----------------------------------------------------------------

AWKWARD = [
    {
        "student_ref": "s-ünï-漢字-🎓",
        "resource": "/path\twith\ttabs\nand\nnewlines\r\\backslash\\N\\.",
        "ip": None,
        "details": {"quote": 'say "hi" it\'s', "uni": "é 漢字 🎓", "tab": "\t\n\\", "n": [1, 2.5]},
        "correlation_id": "req:1@x.y-z",
    },
    {
        "student_ref": "\\N",
        "resource": "\\.",
        "ip": "2001:db8::1",
        "details": {"nested": {"null": None, "bool": True, "empty": ""}},
        "correlation_id": "",
    },
    {
        "student_ref": "",
        "resource": "",
        "ip": "203.0.113.9",
        "details": {},
        "correlation_id": "c" * 128,
    },
]


def test_copy_round_trips_awkward_values_exactly(users):
    moment = datetime(2026, 11, 20, 15, 0, 0, 123456, tzinfo=UTC)
    entries = [
        entry(
            values["student_ref"],
            actor=users["admin"] if n % 2 == 0 else None,
            created_at=moment + timedelta(microseconds=n),
            **{k: v for k, v in values.items() if k != "student_ref"},
        )
        for n, values in enumerate(AWKWARD)
    ]
    buffer_write(entries)
    written = rows()
    assert [fields_of(r) for r in written] == [fields_of(e) for e in entries]
    assert [r.created_at for r in written] == [e.created_at for e in entries]
    assert written[1].actor_id is None
    assert written[0].actor_id == users["admin"].pk


# --- entries against the rest of the data ---------------------------------------------


@override_settings(AUDIT_READ_FLUSH_MS=NEVER_MS)
def test_an_entry_whose_actor_was_deleted_meanwhile_does_not_block_the_others(users, buffers):
    buffer = ReadAuditBuffer()
    buffers.append(buffer)
    leaving = UserFactory(username="leaving", role=User.Role.SERVICE)
    buffer.add([entry("e1", actor=users["admin"]), entry("e2", actor=leaving)])
    buffer.add([entry("e3", actor=users["admin"])])
    leaving.delete()  # e.g. a student's login, erased in another process
    assert buffer.flush() is True
    assert [(r.student_ref, r.actor_username) for r in rows()] == [
        ("e1", "admin"),
        ("e2", "leaving"),
        ("e3", "admin"),
    ]


@override_settings(AUDIT_READ_FLUSH_MS=NEVER_MS)
def test_reads_buffered_before_an_erasure_are_written_pseudonymised(
    users, client_for, process_buffer
):
    """The erasure pseudonymises the entries that name the student and its login's username;
    entries still waiting in a buffer when it commits must not bring either back."""
    for reader in ("teacher", "student"):  # the student login is s-a1's own
        response = client_for(users[reader]).post(QUERY, {"student_id": "s-a1"}, format="json")
        assert response.status_code == 200
    assert process_buffer.pending() == 2
    student_erase(student_id="s-a1", actor=users["admin"])
    process_buffer.close()
    assert AuditLog.objects.filter(action="mastery.query").count() == 2
    assert not AuditLog.objects.filter(student_ref="s-a1").exists()
    assert not AuditLog.objects.filter(actor_username="student-a1").exists()


@override_settings(AUDIT_READ_FLUSH_MS=NEVER_MS)
@pytest.mark.django_db(transaction=True, databases=["default", "replica"])  # history reads it
def test_a_buffered_path_naming_an_erased_student_is_written_pseudonymised(
    users, client_for, process_buffer
):
    response = client_for(users["teacher"]).get("/api/v1/analytics/history/s-a1")
    assert response.status_code == 200
    student_erase(student_id="s-a1", actor=users["admin"])
    process_buffer.close()
    (resource,) = AuditLog.objects.filter(action="analytics.history").values_list(
        "resource", flat=True
    )
    pseudonym = f"erased:{student_hash('s-a1')}"
    assert resource == f"/api/v1/analytics/history/{pseudonym}"


@override_settings(AUDIT_READ_FLUSH_MS=NEVER_MS)
def test_an_entry_the_database_refuses_does_not_hold_up_the_others(buffers, caplog):
    """A batch refused for one entry (here a value no column takes) is written entry by
    entry: the others are written at once, in order, and the refused one is logged in full
    (the log is its record), not retried for ever."""
    buffer = ReadAuditBuffer()
    buffers.append(buffer)
    buffer.add([entry("e1"), entry("e2", resource="x" * 300), entry("e3")])
    with caplog.at_level("ERROR", logger="compliance.services.audit"):
        assert buffer.flush() is True
    assert [r.student_ref for r in rows()] == ["e1", "e3"]
    assert buffer.pending() == 0
    (refused,) = [r for r in caplog.records if hasattr(r, "audit_entry")]
    assert refused.audit_entry["student_ref"] == "e2"


def test_an_ipv6_zone_is_left_out_of_the_address(users):
    request = RequestFactory().get("/api/v1/students", REMOTE_ADDR="fe80::1%eth0")
    request.user = users["admin"]
    audit.audit_read_write(request=request, action="test.read", student_refs=["e1"])
    assert [str(r.ip) for r in rows()] == ["fe80::1"]


@override_settings(AUDIT_READ_FLUSH_MS=NEVER_MS)
def test_a_student_created_again_after_its_erasure_keeps_its_own_id(
    users, client_for, process_buffer
):
    """Events dated after an erasure are accepted and make a new student under the same id:
    its reads are its own, not the erased student's pseudonym."""
    student_erase(student_id="s-a2", actor=users["admin"])
    StudentFactory(student_id="s-a2")
    response = client_for(users["admin"]).post(QUERY, {"student_id": "s-a2"}, format="json")
    assert response.status_code == 200
    process_buffer.close()
    (row,) = AuditLog.objects.filter(action="mastery.query")
    assert row.student_ref == "s-a2"
