"""GDPR erasure in one transaction, the ledger that refuses late events, and its file."""

import logging
import os
import re
from collections.abc import Iterable
from datetime import datetime

import orjson
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from compliance.models import AuditLog, ConsentChange, ErasureLedger
from compliance.services.audit import audit_log_write
from compliance.services.pseudonyms import ERASED_PREFIX, student_hash
from ingest.models import InboxEvent
from mastery.models import Cohort, MasteryRecord, Snapshot, Student, Topic, User
from mastery_project.errors import NotFound

logger = logging.getLogger(__name__)

# Advisory lock key shared by erasure (exclusive) and ingestion (shared).
ERASURE_LOCK = 0x6D61_7374_6572_7901


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
        events = InboxEvent.objects.filter(student=student)
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
            ledger.write(
                orjson.dumps(
                    {"student_hash": hashed, "erased_at": erased_at}, option=orjson.OPT_UTC_Z
                )
                + b"\n"
            )
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
