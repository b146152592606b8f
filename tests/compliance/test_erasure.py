"""Erasure (SPEC §5, GDPR Art. 17): one transaction removes every row that names the
student; audit rows keep only the keyed hash; late events that predate it are refused."""

import io
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from compliance.models import AuditLog, ConsentChange, ErasureLedger
from compliance.services import erasure
from compliance.services.audit import audit_log_write
from compliance.services.erasure import student_erase
from compliance.services.pseudonyms import student_hash
from ingest import pipeline
from ingest.models import InboxEvent
from ingest.pipeline import ingest_batch
from mastery.models import Cohort, MasteryRecord, Snapshot, Student, User
from tests.compliance.support import (
    BYSTANDER,
    TARGET,
    TOPICS,
    consume,
    history_events,
    learning_event,
    rows_naming,
    table_row_counts,
)

pytestmark = pytest.mark.django_db

ERASE = f"/api/v1/compliance/student/{TARGET}"
HASHED_REF = f"erased:{student_hash(TARGET)}"


@dataclass
class Before:
    """What the database held about TARGET just before the erasure."""

    rows: dict[str, int]
    tables: dict[str, int]
    audit_total: int
    audit_about_target: int
    audit_by_login: list[int]


def ok(response) -> None:
    assert response.status_code == 200, response.content


def give_target_a_full_history(school, client_for) -> None:
    """Consent changes, reads by its own login (export included), a teacher's reads, an
    admin's reads and an admin-site change: every kind of row that can name the student."""
    login = school.logins[TARGET]
    own = client_for(login)
    ok(own.post("/api/v1/mastery/query", {"student_id": TARGET}, format="json"))
    ok(own.get(f"/api/v1/students/{TARGET}/"))
    consume(own.get(f"{ERASE}/export"))
    ok(own.put(f"{ERASE}/consent", {"analytics": False}, format="json"))
    admin = client_for(school.admin)
    ok(admin.put(f"{ERASE}/consent", {"analytics": True}, format="json"))
    ok(admin.post("/api/v1/mastery/query", {"student_id": TARGET}, format="json"))
    teacher = client_for(school.teacher)
    ok(teacher.get(f"/api/v1/students/{TARGET}/"))
    ok(teacher.get("/api/v1/students/", {"cohort": "cohort-7b"}))
    ok(teacher.post("/api/v1/mastery/query", {"student_id": TARGET}, format="json"))
    LogEntry.objects.log_actions(
        user_id=school.admin.pk,
        queryset=[school.student(TARGET)],
        action_flag=CHANGE,
        change_message="Changed analytics consent.",
    )


def snapshot_before(student: Student, login: User) -> Before:
    return Before(
        rows={
            "events": InboxEvent.objects.filter(student=student).count(),
            "mastery_records": MasteryRecord.objects.filter(student=student).count(),
            "snapshots": Snapshot.objects.filter(student=student).count(),
            "consent_changes": ConsentChange.objects.filter(student=student).count(),
            "cohort_memberships": student.cohorts.count(),
            "logins": 1,
            "students": 1,
        },
        tables=table_row_counts(),
        audit_total=AuditLog.objects.count(),
        audit_about_target=AuditLog.objects.filter(student_ref=TARGET).count(),
        audit_by_login=list(AuditLog.objects.filter(actor=login).values_list("pk", flat=True)),
    )


@pytest.fixture
def erased(school, client_for, django_capture_on_commit_callbacks):
    """TARGET with a full history, then erased by the admin through the API."""
    give_target_a_full_history(school, client_for)
    before = snapshot_before(school.student(TARGET), school.logins[TARGET])
    assert before.rows["events"] == len(TOPICS) * 4 * 4
    assert before.rows["snapshots"] == len(TOPICS) * 4
    assert before.rows["consent_changes"] == 2
    assert before.audit_about_target >= 8
    assert len(before.audit_by_login) >= 4
    started = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(school.admin).delete(ERASE)
    assert response.status_code == 200, response.content
    return before, started, timezone.now(), response.json()


@pytest.fixture
def erased_plain(school, client_for, django_capture_on_commit_callbacks):
    """TARGET (events, cohort, login; no reads) erased by the admin through the API."""
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(school.admin).delete(ERASE)
    assert response.status_code == 200, response.content
    return ErasureLedger.objects.get(student_hash=student_hash(TARGET)).erased_at


# --- the "done when" ---------------------------------------------------------------


def test_after_erasure_no_table_holds_the_student_id_or_its_login_name(erased):
    assert rows_naming(TARGET) == []
    assert rows_naming("login-of-target") == []


def test_after_erasure_audit_rows_about_the_student_carry_only_the_keyed_hash(erased):
    before, *_ = erased
    hashed = AuditLog.objects.filter(student_ref=HASHED_REF)
    # every earlier entry about the student, plus the erasure's own
    assert hashed.count() == before.audit_about_target + 1
    assert len(student_hash(TARGET)) == 64
    assert TARGET not in HASHED_REF


def test_erasure_keeps_every_audit_row_and_adds_its_own_entry(erased, school):
    before, started, finished, body = erased
    assert AuditLog.objects.count() == before.audit_total + 1
    entry = AuditLog.objects.get(action="gdpr.erase")
    assert entry.actor == school.admin
    assert entry.actor_username == "dpo-admin"
    assert entry.actor_role == "admin"
    assert entry.outcome == "ok"
    assert entry.student_ref == HASHED_REF
    assert started <= entry.created_at <= finished
    assert {k: entry.details["rows"][k] for k in before.rows} == before.rows
    assert body["rows"] == entry.details["rows"]


def test_erasure_deletes_the_students_rows_and_its_login(erased, school):
    before, *_ = erased
    assert not Student.objects.filter(student_id=TARGET).exists()
    assert not User.objects.filter(username="login-of-target").exists()
    after = table_row_counts()
    assert after["ingest_learningevent"] == before.tables["ingest_learningevent"] - 48
    assert after["mastery_snapshot"] == before.tables["mastery_snapshot"] - 12
    assert after["mastery_masteryrecord"] == before.tables["mastery_masteryrecord"] - 3
    assert after["compliance_consentchange"] == before.tables["compliance_consentchange"] - 2
    assert after["compliance_erasureledger"] == before.tables["compliance_erasureledger"] + 1


def test_audit_rows_the_erased_login_wrote_no_longer_carry_its_username(erased):
    before, *_ = erased
    rows = AuditLog.objects.filter(pk__in=before.audit_by_login)
    assert rows.count() == len(before.audit_by_login)
    for row in rows:
        assert row.actor_id is None
        assert row.actor_username != "login-of-target"
        assert "login-of-target" not in row.actor_username


def test_erasure_leaves_other_students_and_shared_rows_alone(erased):
    bystander = Student.objects.get(student_id=BYSTANDER)
    assert InboxEvent.objects.filter(student=bystander).count() == len(TOPICS) * 4 * 4
    assert MasteryRecord.objects.filter(student=bystander).count() == len(TOPICS)
    assert Snapshot.objects.filter(student=bystander).count() == len(TOPICS) * 4
    assert list(Cohort.objects.get(cohort_id="cohort-7b").students.all()) == [bystander]
    assert User.objects.filter(username="login-of-bystander", student=bystander).exists()
    assert AuditLog.objects.filter(student_ref=BYSTANDER).exists()


def test_erasing_twice_answers_404_and_changes_nothing(erased, school, client_for):
    admin = client_for(school.admin)
    tables = table_row_counts()
    response = admin.delete(ERASE)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "student_not_found"
    assert table_row_counts() == tables


@pytest.mark.parametrize(
    "late_step",
    [
        "compliance.services.erasure.ErasureLedger.objects.update_or_create",
        "compliance.services.erasure.audit_log_write",
    ],
)
def test_a_failure_mid_erasure_leaves_everything_as_it_was(
    school, client_for, monkeypatch, late_step
):
    give_target_a_full_history(school, client_for)
    tables = table_row_counts()

    def fail(*args, **kwargs):
        raise RuntimeError("disk on fire")

    if late_step.endswith("update_or_create"):
        monkeypatch.setattr(erasure.ErasureLedger.objects, "update_or_create", fail)
    else:
        monkeypatch.setattr(erasure, "audit_log_write", fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        student_erase(student_id=TARGET, actor=school.admin)
    assert table_row_counts() == tables
    assert Student.objects.filter(student_id=TARGET).exists()
    assert User.objects.filter(username="login-of-target", student__student_id=TARGET).exists()
    assert not AuditLog.objects.filter(student_ref=HASHED_REF).exists()
    assert AuditLog.objects.filter(actor_username="login-of-target").exists()


# --- late events ---------------------------------------------------------------------------


def test_a_late_event_that_predates_the_erasure_is_rejected_erased(
    erased_plain, school, client_for
):
    erased_at = erased_plain
    old = learning_event(TARGET, "python.loops", erased_at - timedelta(minutes=10))
    result = ingest_batch([old], source="http")
    assert [(o.status, o.code) for o in result.outcomes] == [("rejected", "erased")]
    response = client_for(school.service).post(
        "/api/v1/events", learning_event(TARGET, "sql.joins", erased_at), format="json"
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "erased"
    assert not Student.objects.filter(student_id=TARGET).exists()
    assert rows_naming(TARGET) == []  # not even a bare student row


def test_an_event_after_the_erasure_starts_a_new_student(erased_plain, school, client_for):
    erased_at = erased_plain
    before = learning_event(TARGET, "python.loops", erased_at - timedelta(hours=2))
    after = learning_event(TARGET, "python.loops", erased_at + timedelta(seconds=1))
    response = client_for(school.service).post(
        "/api/v1/events", {"events": [before, after]}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(0, "erased")]
    reborn = Student.objects.get(student_id=TARGET)
    assert list(InboxEvent.objects.filter(student=reborn).values_list("event_id", flat=True)) == [
        after["event_id"]
    ]
    assert reborn.cohorts.count() == 0
    assert not User.objects.filter(student=reborn).exists()


# --- the commands --------------------------------------------------------------------------


def test_gdpr_delete_with_yes_erases_like_the_api(school, django_capture_on_commit_callbacks):
    audit_total = AuditLog.objects.count()
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("gdpr_delete", TARGET, "--yes", stdout=out)
    assert f"erased {TARGET}" in out.getvalue()
    assert "events 48" in out.getvalue()
    assert not Student.objects.filter(student_id=TARGET).exists()
    assert not User.objects.filter(username="login-of-target").exists()
    assert ErasureLedger.objects.filter(student_hash=student_hash(TARGET)).exists()
    assert AuditLog.objects.count() == audit_total + 1
    assert AuditLog.objects.get(action="gdpr.erase").details["rows"]["events"] == 48
    assert rows_naming(TARGET) == []


def test_gdpr_delete_audit_entry_names_who_ran_it(school):
    """An erasure entry that records nobody does not say who erased the data."""
    call_command("gdpr_delete", TARGET, "--yes", stdout=io.StringIO())
    entry = AuditLog.objects.get(action="gdpr.erase")
    assert entry.actor_username or entry.actor_role or entry.details.get("operator")


def test_gdpr_delete_without_yes_refuses_when_nobody_can_answer(school, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # e.g. cron: no terminal, no answer
    with pytest.raises(CommandError):
        call_command("gdpr_delete", TARGET, stdout=io.StringIO())
    assert Student.objects.filter(student_id=TARGET).exists()


def test_gdpr_delete_without_yes_erases_nothing_unless_confirmed(school, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    with pytest.raises(CommandError):
        call_command("gdpr_delete", TARGET, stdout=io.StringIO())
    assert Student.objects.filter(student_id=TARGET).exists()
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    call_command("gdpr_delete", TARGET, stdout=io.StringIO())
    assert not Student.objects.filter(student_id=TARGET).exists()


def test_gdpr_delete_of_an_unknown_student_is_a_command_error(school):
    tables = table_row_counts()
    with pytest.raises(CommandError, match="no-such-student"):
        call_command("gdpr_delete", "no-such-student", "--yes")
    assert table_row_counts() == tables


# --- the ledger file and a database restore ------------------------------------------------


def test_the_ledger_file_gets_one_json_line_per_erasure(erased_plain, ledger_file):
    lines = ledger_file.read_bytes().splitlines()
    assert len(lines) == 1
    entry = orjson.loads(lines[0])
    assert entry["student_hash"] == student_hash(TARGET)
    assert datetime.fromisoformat(entry["erased_at"]) == erased_plain
    assert TARGET.encode() not in ledger_file.read_bytes()


def test_a_failed_erasure_writes_no_ledger_line(
    school, monkeypatch, ledger_file, django_capture_on_commit_callbacks
):
    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(erasure, "audit_log_write", fail)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        student_erase(student_id=TARGET, actor=None)
    assert not ledger_file.exists() or ledger_file.read_bytes() == b""


@pytest.mark.parametrize("how", ["service", "command"])
def test_reapplying_the_ledger_after_a_restore_erases_the_student_again(
    erased_plain, ledger_file, how, django_capture_on_commit_callbacks
):
    # A restore from a backup taken before the erasure: the ledger rows are gone and the
    # student is back with (old) events.
    file_entry = orjson.loads(ledger_file.read_bytes().splitlines()[0])
    ErasureLedger.objects.all().delete()
    result = ingest_batch(history_events(TARGET, days=2), source="http")
    assert result.accepted == len(TOPICS) * 4 * 2
    assert Student.objects.filter(student_id=TARGET).exists()

    with django_capture_on_commit_callbacks(execute=True):
        if how == "service":
            assert erasure.erasures_reapply() == (1, [TARGET])
        else:
            out = io.StringIO()
            call_command("gdpr_reapply_erasures", stdout=out)
            assert "1 ledger entries loaded; 1 students erased again" in out.getvalue()

    assert not Student.objects.filter(student_id=TARGET).exists()
    ledger = ErasureLedger.objects.get(student_hash=file_entry["student_hash"])
    assert ledger.erased_at >= datetime.fromisoformat(file_entry["erased_at"])
    assert rows_naming(TARGET) == []
    # and the old events are refused again
    late = ingest_batch(history_events(TARGET, days=1), source="http")
    assert {o.code for o in late.outcomes} == {"erased"}


def test_reapplying_without_a_ledger_file_does_nothing(school, ledger_file):
    assert not ledger_file.exists()
    assert erasure.erasures_reapply() == (0, [])
    assert Student.objects.filter(student_id=TARGET).exists()


# --- admin-site history ----------------------------------------------------------------------


def test_admin_site_history_of_the_students_login_is_erased_too(school, client_for):
    """The admin log names the login by its username (object_repr); the login is personal
    data of the student and is deleted, so its admin history must go with it."""
    login = school.logins[TARGET]
    LogEntry.objects.log_actions(
        user_id=school.admin.pk, queryset=[login], action_flag=CHANGE, change_message="Reset."
    )
    assert rows_naming("login-of-target")
    assert client_for(school.admin).delete(ERASE).status_code == 200
    assert rows_naming("login-of-target") == []


# --- an erasure racing a batch -------------------------------------------------------------


def test_an_erasure_started_while_a_batch_is_in_flight_is_not_undone(
    transactional_db, school, monkeypatch
):
    """An erasure that starts after a batch checked the ledger waits for that batch to
    commit, then erases its event too: the batch cannot bring the student back."""
    checked = pipeline.erased_before
    erasures: list[dict] = []
    workers: list[threading.Thread] = []

    def erase_meanwhile():
        try:
            erasures.append(student_erase(student_id=TARGET, actor=school.admin))
        finally:
            connections.close_all()

    def check_then_start_an_erasure(student_ids):
        found = checked(student_ids)
        workers.append(threading.Thread(target=erase_meanwhile))
        workers[0].start()
        workers[0].join(timeout=1)  # it must be waiting for this batch, not done
        assert workers[0].is_alive()
        return found

    monkeypatch.setattr(pipeline, "erased_before", check_then_start_an_erasure)
    old = learning_event(TARGET, "python.loops", timezone.now() - timedelta(hours=3))
    result = ingest_batch([old], source="kafka")
    workers[0].join(timeout=30)
    assert [(o.status, o.code) for o in result.outcomes] == [("accepted", None)]
    assert len(erasures) == 1
    assert erasures[0]["events"] == 49  # the 48 before, and the one of the batch
    assert not Student.objects.filter(student_id=TARGET).exists()
    assert not InboxEvent.objects.filter(event_id=old["event_id"]).exists()


def test_erasure_deletes_the_logins_refresh_tokens_and_they_stop_working(
    school, client_for, api_client, django_capture_on_commit_callbacks
):
    refresh = RefreshToken.for_user(school.logins[TARGET])
    assert OutstandingToken.objects.filter(jti=refresh["jti"]).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(school.admin).delete(ERASE)
    assert response.json()["rows"]["login_tokens"] >= 1
    assert not OutstandingToken.objects.filter(jti=refresh["jti"]).exists()
    answer = api_client.post("/api/v1/auth/token/refresh", {"refresh": str(refresh)}, format="json")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "authentication_failed"


@pytest.mark.parametrize(
    "query",
    [f"?q={TARGET}", f"?o=1&q={TARGET}", f"?q={TARGET}&o=1", "?q=gdpr%2Dtarget%2D4242"],
)
def test_erasure_pseudonymises_an_admin_search_for_the_student(
    query, school, client_for, django_capture_on_commit_callbacks
):
    """Admin list pages audit their full path: a search for the id names the student in it."""
    admin_site = Client()
    admin_site.force_login(school.teacher)
    for page in ("student", "masteryrecord"):
        assert admin_site.get(f"/admin/mastery/{page}/{query}").status_code == 200
    assert AuditLog.objects.filter(student_ref=TARGET, action__startswith="admin.").count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        client_for(school.admin).delete(ERASE)
    assert rows_naming(TARGET) == []
    searches = AuditLog.objects.filter(student_ref=HASHED_REF, action__startswith="admin.")
    assert {entry.resource.split("?")[1].split("q=")[1].split("&")[0] for entry in searches} == {
        HASHED_REF
    }


def test_erasure_leaves_a_search_that_only_contains_the_id_alone(school, client_for):
    audit_log_write(
        request=None,
        action="admin.student.list",
        student_refs=[TARGET],
        resource=f"/admin/mastery/student/?q={TARGET}-x&cohort=v1",
    )
    student_erase(student_id=TARGET, actor=None)
    entry = AuditLog.objects.get(action="admin.student.list")
    assert entry.resource == f"/admin/mastery/student/?q={TARGET}-x&cohort=v1"
