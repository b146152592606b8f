"""Privacy and audit: the audit trail, consent, GDPR export and erasure, retention.

Every function here is the one path for its job: the API, the admin and the commands
call these, so an export is the same document and an erasure the same transaction
wherever it is started.
"""

import hashlib
import hmac
import ipaddress
import logging
import os
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from compliance.models import AuditLog, ConsentChange, ErasureLedger
from ingest.models import LearningEvent
from mastery.models import Cohort, MasteryRecord, Snapshot, Student, Topic, User
from mastery_project.correlation import correlation_id
from mastery_project.errors import NotFound

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "mastery-engine.student-export"
EXPORT_VERSION = 1
ERASED_PREFIX = "erased:"
# Advisory lock key shared by erasure (exclusive) and ingestion (shared).
ERASURE_LOCK = 0x6D61_7374_6572_7901


# --- audit -------------------------------------------------------------------------------


def request_client_ip(request: HttpRequest) -> str | None:
    """The client address, trusting `X-Forwarded-For` only for `TRUSTED_PROXY_COUNT` hops.

    With N trusted proxies in front, the client is the Nth address from the right of the
    header; anything further left was written by the client and is not believed.
    """
    candidate = request.META.get("REMOTE_ADDR")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= hops:
            candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate)) if candidate else None
    except ValueError:
        return None


def audit_log_write(
    *,
    request: HttpRequest | None,
    action: str,
    student_refs: Iterable[str] = ("",),
    resource: str = "",
    outcome: str = AuditLog.Outcome.OK,
    actor=None,
    actor_label: str = "",
    details: dict | None = None,
) -> None:
    """One INSERT for all the students an action touched (one row each).

    Without a user (a management command), `actor_label` says who ran it."""
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    ip = request_client_ip(request) if request is not None else None
    cid = correlation_id.get()
    AuditLog.objects.bulk_create(
        [
            AuditLog(
                actor=actor,
                actor_username=actor.username if actor else actor_label,
                actor_role=actor.role if actor else ("operator" if actor_label else ""),
                action=action,
                student_ref=ref,
                resource=resource[:200],
                outcome=outcome,
                ip=ip,
                correlation_id="" if cid == "-" else cid,
                details=details or {},
            )
            for ref in student_refs
        ]
    )


# --- consent -----------------------------------------------------------------------------


@transaction.atomic
def student_consent_set(
    *, student: Student, analytics: bool, actor: User, request: HttpRequest | None = None
) -> ConsentChange | None:
    """Set analytics consent, keeping history; a no-op change records nothing new."""
    student = Student.objects.select_for_update().get(pk=student.pk)
    old = student.analytics_consent
    audit_log_write(
        request=request,
        actor=actor,
        action="consent.set",
        student_refs=[student.student_id],
        resource=f"consent:{old}->{analytics}",
    )
    if old == analytics:
        return None
    student.analytics_consent = analytics
    student.save(update_fields=["analytics_consent"])
    return ConsentChange.objects.create(
        student=student,
        actor=actor,
        actor_username=actor.username if actor else "",
        old_value=old,
        new_value=analytics,
    )


# --- export ------------------------------------------------------------------------------


def _dump(value) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


def _array(rows: Iterator) -> Iterator[bytes]:
    yield b"["
    first = True
    for row in rows:
        yield (b"" if first else b",") + _dump(row)
        first = False
    yield b"]"


def student_export_stream(
    *,
    student: Student,
    actor: User | None,
    request: HttpRequest | None = None,
    actor_label: str = "",
) -> Iterator[bytes]:
    """The export document, as JSON bytes in pieces: events are read in chunks, so a
    student with 100k events does not need them all in memory. Audited once, up front."""
    audit_log_write(
        request=request,
        actor=actor,
        actor_label=actor_label,
        action="gdpr.export",
        student_refs=[student.student_id],
        resource="export",
    )
    login = User.objects.filter(student=student).values("username", "role", "date_joined").first()
    header = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "generated_at": timezone.now(),
        "student": {
            "student_id": student.student_id,
            "analytics_consent": student.analytics_consent,
            "created_at": student.created_at,
            "last_activity_at": student.last_activity_at,
            "login": login,
        },
        "cohorts": list(
            Cohort.objects.filter(students=student)
            .values("cohort_id", "name")
            .order_by("cohort_id")
        ),
        "consent_history": list(
            ConsentChange.objects.filter(student=student).values(
                "created_at", "actor_username", "old_value", "new_value"
            )
        ),
    }
    yield _dump(header)[:-1]  # an open object: the streamed sections follow
    yield b',"events":'
    events = (
        LearningEvent.objects.filter(student=student)
        .order_by("occurred_at", "event_id")
        .values("event_id", "event_type", "topic__slug", "occurred_at", "payload", "source",
                "received_at")
    )  # fmt: skip
    yield from _array(
        {
            "event_id": e["event_id"],
            "event_type": e["event_type"],
            "student_id": student.student_id,
            "topic": e["topic__slug"],
            "occurred_at": e["occurred_at"],
            "payload": e["payload"],
            "received_at": e["received_at"],
            "source": e["source"],
        }
        for e in events.iterator(chunk_size=2000)
    )
    yield b',"derived":{"note":"computed by the engine from the events above",'
    yield b'"mastery_records":'
    yield from _array(
        MasteryRecord.objects.filter(student=student)
        .order_by("topic__slug")
        .values("topic__slug", "mastery", "level", "completion", "quiz", "quality",
                "consistency", "updated_at")
        .iterator(chunk_size=2000)
    )  # fmt: skip
    yield b',"snapshots":'
    yield from _array(
        Snapshot.objects.filter(student=student)
        .order_by("topic__slug", "day")
        .values("topic__slug", "day", "mastery", "completion", "quiz", "quality", "consistency")
        .iterator(chunk_size=2000)
    )
    yield b',"predictions":[],"recommendations":[],"feedback":[]}'
    yield b',"audit":'
    yield from _array(
        AuditLog.objects.filter(student_ref=student.student_id)
        .order_by("created_at", "id")
        .values("created_at", "actor_username", "actor_role", "action", "resource", "outcome",
                "ip")
        .iterator(chunk_size=2000)
    )  # fmt: skip
    yield b"}"


# --- erasure -----------------------------------------------------------------------------


def student_hash(student_id: str) -> str:
    """Keyed hash of an external student id: stable, not reversible without the key."""
    key = settings.ERASURE_HASH_KEY.encode()
    return hmac.new(key, student_id.encode(), hashlib.sha256).hexdigest()


def student_ref_for_missing(student_id: str) -> str:
    """How a failed lookup names the student it asked for: an erased student's id must not
    come back into the audit log, so it is recorded by its hash."""
    hashed = student_hash(student_id)
    if ErasureLedger.objects.filter(student_hash=hashed).exists():
        return f"{ERASED_PREFIX}{hashed}"
    return student_id


def erased_before(student_ids: Iterable[str]) -> dict[str, datetime]:
    """For the ids of erased students, when they were erased (events before are refused).

    Call inside the ingesting transaction: it takes the erasure lock in shared mode, so an
    erasure cannot commit between this check and the batch's commit."""
    by_hash = {student_hash(s): s for s in set(student_ids)}
    if not by_hash:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [ERASURE_LOCK])
    rows = ErasureLedger.objects.filter(student_hash__in=list(by_hash)).values_list(
        "student_hash", "erased_at"
    )
    return {by_hash[h]: at for h, at in rows}


def student_erase(
    *,
    student_id: str,
    actor: User | None,
    request: HttpRequest | None = None,
    actor_label: str = "",
) -> dict:
    """Erase everything that names the student, in one transaction (SPEC §5).

    Deleted: the student, its events, mastery records, snapshots, consent history, cohort
    memberships and its login (a student's login is personal data, so it is deleted, not
    kept deactivated). Audit entries keep only the keyed hash, in place of the id and of the
    login's username. The ledger keeps the hash and the time, so late events are refused.
    """
    with transaction.atomic():
        # Exclusive against ingestion's shared lock: no batch is between its ledger check
        # and its commit while an erasure runs, so none can bring the student back.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ERASURE_LOCK])
        student = Student.objects.select_for_update().filter(student_id=student_id).first()
        if student is None:
            raise NotFound("No such student.", code="student_not_found")
        hashed = student_hash(student_id)
        ref = f"{ERASED_PREFIX}{hashed}"
        now = timezone.now()
        logins = list(User.objects.filter(student=student))
        events = LearningEvent.objects.filter(student=student)
        # A topic's reported size keeps its value but forgets which event reported it.
        Topic.objects.filter(reported_event_id__in=events.values("event_id")).update(
            reported_event_id=""
        )
        history = LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Student), object_id=str(student.pk)
        ) | LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(User),
            object_id__in=[str(u.pk) for u in logins],
        )
        counts = {
            "events": events.delete()[0],
            "mastery_records": MasteryRecord.objects.filter(student=student).delete()[0],
            "snapshots": Snapshot.objects.filter(student=student).delete()[0],
            "consent_changes": ConsentChange.objects.filter(student=student).delete()[0],
            "cohort_memberships": Cohort.students.through.objects.filter(student=student).delete()[
                0
            ],
            "admin_log_entries": history.delete()[0],
        }
        with connection.cursor() as cursor:
            cursor.execute(
                f"""UPDATE {AuditLog._meta.db_table}
                    SET student_ref = %s, resource = regexp_replace(resource, %s, %s, 'g')
                    WHERE student_ref = %s""",
                # Only where a path names a student (/students/<id>/, /student/<id>/): a
                # short id such as "v1" must not mangle "/api/v1/…".
                [ref, rf"(/students?/){re.escape(student_id)}(/|$)", rf"\1{ref}\2", student_id],
            )
            counts["audit_entries_pseudonymised"] = cursor.rowcount
            if logins:
                cursor.execute(
                    f"UPDATE {AuditLog._meta.db_table} SET actor_username = %s "
                    "WHERE actor_id = ANY(%s)",
                    [ref, [u.pk for u in logins]],
                )
        counts["logins"] = len(logins)
        for login in logins:
            login.delete()
        student.delete()
        counts["students"] = 1
        ErasureLedger.objects.update_or_create(student_hash=hashed, defaults={"erased_at": now})
        audit_log_write(
            request=request,
            actor=actor,
            actor_label=actor_label,
            action="gdpr.erase",
            student_refs=[ref],
            resource="erase",
            details={"rows": counts},
        )
        transaction.on_commit(lambda: _ledger_file_append(hashed, now))
    return counts


def _ledger_file_append(hashed: str, erased_at: datetime) -> None:
    """After the commit: the erasure has happened, so a failure here is logged loudly (the
    table still refuses late events; only the restore safety net lacks this entry)."""
    path = settings.ERASURE_LEDGER_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as ledger:
            ledger.write(_dump({"student_hash": hashed, "erased_at": erased_at}) + b"\n")
            ledger.flush()
            os.fsync(ledger.fileno())
    except OSError:
        logger.exception("erasure ledger file %s not written for %s", path, hashed)


def erasures_reapply() -> tuple[int, list[str]]:
    """After a database restore: bring the ledger file back into the database, and erase
    again any student that the restore brought back. Returns (ledger rows, re-erased ids)."""
    path = settings.ERASURE_LEDGER_FILE
    if not path.exists():
        return 0, []
    entries = {}
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
            entries[str(item["student_hash"])] = datetime.fromisoformat(item["erased_at"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}, line {number}: not a ledger entry ({exc})") from None
    for hashed, at in entries.items():
        ErasureLedger.objects.update_or_create(student_hash=hashed, defaults={"erased_at": at})
    again = [
        s for s in Student.objects.values_list("student_id", flat=True).iterator()
        if student_hash(s) in entries
    ]  # fmt: skip
    for student_id in again:
        student_erase(student_id=student_id, actor=None, actor_label="gdpr_reapply_erasures")
    return len(entries), again


# --- retention ---------------------------------------------------------------------------


def retention_days() -> dict[str, int]:
    """Each kind's retention window in days, from settings (SPEC §6)."""
    return {
        "events": settings.RETENTION_EVENTS_DAYS,
        "snapshots": settings.RETENTION_SNAPSHOTS_DAYS,
        "audit_log": settings.RETENTION_AUDIT_DAYS,
        "batch_jobs": settings.RETENTION_BATCH_JOBS_DAYS,
    }


def _expired_kinds(now: datetime) -> dict[str, tuple[str, str, list]]:
    """kind -> (table, condition, params) of the rows past their window (SPEC §6)."""
    from django_tasks_db.models import DBTaskResult

    days = retention_days()
    cutoff = {kind: now - timedelta(days=n) for kind, n in days.items()}
    return {
        "events": (LearningEvent._meta.db_table, "occurred_at < %s", [cutoff["events"]]),
        "snapshots": (Snapshot._meta.db_table, "day < %s", [cutoff["snapshots"].date()]),
        "audit_log": (AuditLog._meta.db_table, "created_at < %s", [cutoff["audit_log"]]),
        "batch_jobs": (
            DBTaskResult._meta.db_table,
            "finished_at IS NOT NULL AND finished_at < %s",
            [cutoff["batch_jobs"]],
        ),
    }


def expired_purge(
    *, dry_run: bool = False, chunk: int = 5000, now: datetime | None = None
) -> dict[str, int]:
    """Delete what is past retention, kind by kind, in chunks of `chunk` rows, each chunk
    its own short transaction: no long locks, safe beside ingestion and when run twice."""
    counts = {}
    for kind, (table, condition, params) in _expired_kinds(now or timezone.now()).items():
        total = 0
        with connection.cursor() as cursor:
            if dry_run:
                cursor.execute(f"SELECT count(*) FROM {table} WHERE {condition}", params)
                counts[kind] = cursor.fetchone()[0]
                continue
            while True:
                with transaction.atomic():
                    cursor.execute(
                        f"""DELETE FROM {table} WHERE ctid = ANY(ARRAY(
                                SELECT ctid FROM {table} WHERE {condition}
                                LIMIT %s FOR UPDATE SKIP LOCKED))""",
                        [*params, chunk],
                    )
                    deleted = cursor.rowcount
                total += deleted
                if deleted < chunk:
                    break
        counts[kind] = total
    return counts
