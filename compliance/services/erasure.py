"""GDPR erasure in one transaction, the ledger that refuses late events, and its file."""

import logging
import os
from collections.abc import Iterable
from datetime import datetime

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from compliance.models import AuditLog, ErasureLedger
from compliance.services.audit import audit_log_write
from compliance.services.pseudonyms import (
    ERASED_PREFIX,
    ERASURE_LOCK,
    resource_rewrites,
    student_hash,
)
from mastery.models import Student, User
from mastery.signals import students_changed_on_commit
from mastery_project import privacy
from mastery_project.errors import NotFound

logger = logging.getLogger(__name__)


def erased_before(student_ids: Iterable[str]) -> dict[str, datetime]:
    """For the ids of erased students, when they were erased (events before are refused).

    Call inside the ingesting transaction: it takes the erasure lock in shared mode, so an
    erasure cannot commit between this check and the batch's commit."""
    by_hash = {student_hash(s): s for s in set(student_ids)}
    if not by_hash:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [ERASURE_LOCK])
        # One array parameter: an ORM `__in` of a batch's thousands of hashes costs more
        # Python than the rest of the check.
        cursor.execute(
            f"SELECT student_hash, erased_at FROM {ErasureLedger._meta.db_table}"
            " WHERE student_hash = ANY(%s::varchar[])",
            [list(by_hash)],
        )
        return {by_hash[h]: at for h, at in cursor.fetchall()}


def student_erase(
    *,
    student_id: str,
    actor: User | None,
    request: HttpRequest | None = None,
    actor_label: str = "",
) -> dict[str, int]:
    """Erase everything that names the student, in one transaction (SPEC §5).

    Every kind the apps declare is erased as declared (`mastery_project.privacy`): the
    student, its login (personal data, so deleted, not kept deactivated) and the login's
    refresh tokens, its events, records, snapshots, memberships, consent history, admin
    log entries, analytics rows and batch jobs are deleted; audit
    entries keep only the keyed hash, in place of the id and of the login's username. The
    ledger keeps the hash and the time, so late events are refused. Returns the count of
    each kind.
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
        erasure = privacy.Erasure(student=student, pseudonym=ref)
        declared = privacy.declarations()
        erased = {
            data.erasure_key: data.erase(data.rows_for(student), erasure)
            for data in reversed(declared)
        }
        counts = {data.erasure_key: erased[data.erasure_key] for data in declared}
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
        # Caches of derived data (predictions) must not outlive the student.
        students_changed_on_commit([student_id], sender=student_erase)
    return counts


def audit_entries_pseudonymise(rows: QuerySet, erasure: privacy.Erasure) -> int:
    """How the audit log is erased (declared in `compliance.privacy`): the entries stay,
    for their whole window, naming the student (its id, in paths too) and its login (the
    username) by the pseudonym. In SQL: the application cannot update the audit log, and
    this is one of its two exceptions."""
    student_id, pseudonym = erasure.student.student_id, erasure.pseudonym
    about, about_params = rows.values("pk").query.sql_with_params()
    logins, login_params = (
        User._base_manager.filter(student=erasure.student).values("pk").query.sql_with_params()
    )
    table = connection.ops.quote_name(AuditLog._meta.db_table)
    in_path, in_query = resource_rewrites(student_id, pseudonym)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {table}
                SET student_ref = %s,
                    resource = regexp_replace(regexp_replace(resource, %s, %s, 'g'), %s, %s, 'g')
                WHERE id IN ({about})""",
            [pseudonym, *in_path, *in_query, *about_params],
        )
        pseudonymised = cursor.rowcount
        cursor.execute(
            f"UPDATE {table} SET actor_username = %s WHERE actor_id IN ({logins})",
            [pseudonym, *login_params],
        )
    return pseudonymised


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
