"""Privacy by registration (SPEC §5): every table that names a student is declared by its
app, and export, erasure and retention do what the declarations say, for the real ones
and for one registered here."""

import ast
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models import Model, Q
from django.test import override_settings
from django.test.utils import isolate_apps
from django_tasks_db.models import DBTaskResult
from rest_framework_simplejwt.tokens import RefreshToken

from analytics.services.batch import batch_job_run, batch_job_submit
from analytics.services.predictions import flag_feedback_record, prediction_next_week_serve
from analytics.services.recommendations import (
    recommendation_feedback_save,
    recommendations_current,
)
from compliance.services import export, retention
from compliance.services.audit import audit_log_write
from compliance.services.consent import student_consent_set
from compliance.services.erasure import student_erase
from compliance.services.export import student_export_stream
from compliance.services.retention import expired_purge
from mastery import privacy as mastery_privacy
from mastery.models import MasteryRecord, Student, Topic, User
from mastery_project import privacy
from mastery_project.privacy import Export, StudentData
from tests.compliance.support import BYSTANDER, TARGET, TOPICS, ingest, learning_event, rows_naming

ROOT = Path(__file__).resolve().parents[2]

# A column named for the external id: student_id, student_ref, student_ids, …
STUDENT_ID_NAME = re.compile(r"(?:^|_)student(?:_id|_ref)?s?$")
# JSON columns whose documents name students by their external id; the schema cannot say.
JSON_NAMING_STUDENTS = {
    # batch jobs take student ids as arguments (SPEC §3.4)
    ("django_tasks_database.DBTaskResult", "args_kwargs"),
}


# Columns that point at a login but hold no student's data, each with the reason. A student's
# login is deleted by erasure (`logins`); these are what remain pointing at logins.
LOGIN_COLUMNS_NOT_STUDENT_DATA = {
    "admin.LogEntry.user": "only staff use the admin site; entries about the student are erased",
    "analytics.BatchJob.submitted_by": "only teachers and admins submit batch jobs",
    "analytics.FlagFeedback.author": "only teachers and admins judge flags",
    "analytics.RecommendationFeedback.author": (
        "a student gives feedback only on its own recommendations, erased with it"
    ),
    "compliance.AuditLog.actor": "erasure pseudonymises the login's username in its entries",
    "compliance.ConsentChange.actor": "a student changes only its own consent, erased with it",
    "mastery.Cohort_teachers.user": "only teacher logins teach a cohort",
    "mastery.User_groups.user": "roles replace groups; deleted with the login",
    "mastery.User_user_permissions.user": "roles replace permissions; deleted with the login",
}


def student_columns(candidates: Iterable[type[Model]]) -> set[tuple[type[Model], str]]:
    """(model, field) of every column that names a student: a relation to `Student`, or to
    a model whose rows each belong to one student (the many-to-many tables included); a
    column named like an external student id or known to hold ids; a generic relation,
    which can point at a student."""
    candidates = list(candidates)
    # A login may be a student's (its nullable one-to-one): what points at logins counts.
    owned: set[type[Model]] = {Student, User}
    grown = True
    while grown:
        grown = False
        for model in candidates:
            if model not in owned and any(
                f.is_relation and not f.null and f.related_model in owned
                for f in model._meta.concrete_fields
            ):
                owned.add(model)
                grown = True
    found = set()
    for model in candidates:
        for field in model._meta.concrete_fields:
            if field.is_relation:
                if field.related_model in owned:
                    found.add((model, field.name))
            elif STUDENT_ID_NAME.search(field.name) or (
                (model._meta.label, field.name) in JSON_NAMING_STUDENTS
            ):
                found.add((model, field.name))
        generic = [
            f.fk_field for f in model._meta.private_fields if isinstance(f, GenericForeignKey)
        ]
        names = {f.name for f in model._meta.concrete_fields}
        if "object_id" in names and any(
            f.is_relation and f.related_model is ContentType for f in model._meta.concrete_fields
        ):
            generic.append("object_id")
        found.update((model, name) for name in generic)
    return found


def names(columns: Iterable[tuple[type[Model], str]]) -> set[str]:
    return {f"{model._meta.label}.{field}" for model, field in columns}


# --- nothing that names a student is declared nowhere ----------------------------------------


def test_every_table_that_names_a_student_is_declared_by_its_app():
    columns = student_columns(apps.get_models(include_auto_created=True))
    declared = {(d.model, d.student_field) for d in privacy.declarations()}
    assert names(columns - declared) - set(LOGIN_COLUMNS_NOT_STUDENT_DATA) == set()
    assert set(LOGIN_COLUMNS_NOT_STUDENT_DATA) <= names(columns - declared)  # none stale
    # the walk sees the project's tables, the many-to-many ones and third-party ones
    assert {
        "mastery.Cohort_students.student",
        "ingest.InboxEvent.student",
        "compliance.AuditLog.student_ref",
        "admin.LogEntry.object_id",
        "django_tasks_database.DBTaskResult.args_kwargs",
    } <= names(columns)


def table(model_name: str, /, **fields) -> type[Model]:
    """A throwaway model, for a test's isolated app registry."""
    meta = type("Meta", (), {"app_label": "compliance"})
    return type(model_name, (models.Model,), {"__module__": __name__, "Meta": meta, **fields})


def test_the_walk_finds_what_a_new_table_would_forget():
    cascade = models.CASCADE
    with isolate_apps("compliance"):
        prediction = table("Prediction", student=models.ForeignKey(Student, on_delete=cascade))
        # names the student through the prediction
        feedback = table("Feedback", prediction=models.ForeignKey(prediction, on_delete=cascade))
        flag = table("Flag", flagged_student_id=models.CharField(max_length=64))
        group = table("Group", members=models.ManyToManyField(Student))
        tag = table(
            "Tag",
            content_type=models.ForeignKey(ContentType, on_delete=cascade),
            object_id=models.PositiveIntegerField(),
            target=GenericForeignKey(),
        )
        setting = table("Setting", name=models.CharField(max_length=64), value=models.JSONField())
        # names a student through its login
        session = table("Session", login=models.ForeignKey(User, null=True, on_delete=cascade))
        found = student_columns(
            [prediction, feedback, flag, group, group.members.through, tag, setting, session]
        )
    assert {(model.__name__, field) for model, field in found} == {
        ("Prediction", "student"),
        ("Feedback", "prediction"),
        ("Flag", "flagged_student_id"),
        ("Group_members", "student"),
        ("Tag", "object_id"),
        ("Session", "login"),
    }


def test_declarations_name_real_columns_settings_and_sections():
    placed = export.exported_sections()
    for data in privacy.declarations():
        data.model._meta.get_field(data.student_field)
        if data.retention_setting:
            assert isinstance(getattr(settings, data.retention_setting), int), data.kind
            data.model._meta.get_field(data.retention_field)
    # a one-object section gets its row from one declaration only
    for path in ("student", "student.login"):
        assert len(placed[path]) == 1, path
    assert set(retention.retention_days()) == {
        "events",
        "snapshots",
        "audit_log",
        "batch_jobs",
        "batch_job_outcomes",
        "batch_job_requests",
        "recommendations",
        "recommendation_feedback",
        "predictions",
        "flag_feedback",
    }


def test_no_compliance_module_imports_ingest_or_analytics():
    imported = set()
    for source in (ROOT / "compliance").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add((source.name, node.module))
            elif isinstance(node, ast.Import):
                imported.update((source.name, alias.name) for alias in node.names)
    assert {(f, m) for f, m in imported if m.split(".")[0] in {"ingest", "analytics"}} == set()


def test_a_kind_declared_twice_is_refused(monkeypatch):
    monkeypatch.setattr(mastery_privacy, "STUDENT_DATA", mastery_privacy.STUDENT_DATA * 2)
    with pytest.raises(ImproperlyConfigured, match="declared twice"):
        privacy.declarations()


def test_a_retention_window_needs_its_setting_and_its_field():
    with pytest.raises(ImproperlyConfigured, match="both"):
        StudentData(
            kind="half", model=MasteryRecord, student_field="student", retention_setting="X_DAYS"
        )


# --- the real declarations, against a student who has a row of every kind --------------------


def job(**args_kwargs_and_result) -> DBTaskResult:
    result = args_kwargs_and_result.pop("result", None)
    return DBTaskResult.objects.create(
        status="SUCCESSFUL" if result is not None else "READY",
        args_kwargs={"args": [], "kwargs": args_kwargs_and_result},
        return_value=result,
        task_path="analytics.tasks.batch_mastery",
        backend_name="default",
        run_after=datetime.now(UTC),
        exception_class_path="",
        traceback="",
    )


@pytest.fixture
def every_kind(school):
    """TARGET with a row of every declared kind, and bystanders' rows beside them."""
    student = school.student(TARGET)
    reported = learning_event(
        TARGET, TOPICS[0], datetime.now(UTC) - timedelta(minutes=5), kind="exercise"
    )
    ingest([reported])
    student_consent_set(student=student, analytics=False, actor=school.admin)
    audit_log_write(
        request=None,
        action="student.retrieve",
        student_refs=[TARGET],
        resource=f"/api/v1/students/{TARGET}/",
        actor=school.teacher,
    )
    LogEntry.objects.log_actions(
        user_id=school.admin.pk, queryset=[student], action_flag=CHANGE, change_message="Edited."
    )
    RefreshToken.for_user(school.logins[TARGET])
    jobs = {
        "by_args": job(student_ids=[BYSTANDER, TARGET]),
        "by_result": job(student_ids=["elsewhere"], result={"errors": [{"student_id": TARGET}]}),
        "bystander": job(student_ids=[BYSTANDER]),
        "prefix": job(student_ids=[TARGET[:-1]]),  # names another student, not a substring
    }
    today = datetime.now(UTC).date()
    for served in (student, school.student(BYSTANDER)):
        prediction_next_week_serve(student=served, topic=None, today=today)
        flag_feedback_record(
            student=served,
            topic=None,
            verdict="useful",
            comment="",
            author=school.teacher,
            today=today,
        )
        advice = recommendations_current(student=served)[0]
        recommendation_feedback_save(recommendation=advice, author=school.teacher, helpful=True)
    batch = batch_job_submit(
        submitter=school.admin, student_ids=[BYSTANDER, TARGET], priority="normal"
    )
    batch_job_run(batch_id=str(batch.pk), task_id=str(batch.task_id))
    # the batch job's own queue row names no student: it stays
    jobs["batch_task"] = DBTaskResult.objects.get(pk=batch.task_id)
    return student, reported["event_id"], jobs


def test_every_declared_kind_is_erased_as_declared(every_kind, school):
    student, reported_event, jobs = every_kind
    declared = privacy.declarations()
    before = {d.erasure_key: d.rows_for(student).count() for d in declared}
    assert [key for key, n in before.items() if n == 0] == []  # the history has every kind
    assert before["batch_jobs"] == 2
    assert Topic.objects.get(slug=TOPICS[0]).reported_event_id == reported_event

    counts = student_erase(student_id=TARGET, actor=school.admin)

    assert counts == before
    assert [d.kind for d in declared if d.rows_for(student).exists()] == []
    assert rows_naming(TARGET) == []
    assert rows_naming("login-of-target") == []
    topic = Topic.objects.get(slug=TOPICS[0])
    assert (topic.reported_event_id, topic.reported_exercises_total) == ("", 12)
    assert set(DBTaskResult.objects.values_list("pk", flat=True)) == {
        jobs["bystander"].pk,
        jobs["prefix"].pk,
        jobs["batch_task"].pk,
    }
    assert Topic.objects.exclude(reported_event_id="").count() == len(TOPICS) - 1


def test_every_declared_export_fills_its_section(every_kind, school):
    student, *_ = every_kind
    doc = orjson.loads(b"".join(student_export_stream(student=student, actor=school.admin)))
    placed = {path: declared for path, declared in export.exported_sections().items() if declared}
    assert set(placed) == {
        "student",
        "student.login",
        "cohorts",
        "consent_history",
        "events",
        "derived.mastery_records",
        "derived.snapshots",
        "derived.predictions",
        "derived.recommendations",
        "derived.feedback",
        "audit",
    }
    for path, declared in placed.items():
        value = doc
        for key in path.split("."):
            value = value[key]
        assert value, path
        if isinstance(value, list):
            rows = sum(d.export.values(d.rows_for(student)).count() for d in declared)
            assert len(value) == rows, path


# --- a kind registered here, as the next app will register one --------------------------------

PREDICTIONS = StudentData(
    kind="test_predictions",
    model=MasteryRecord,
    student_field="student",
    export=Export(
        "derived.predictions",
        lambda rows: rows.order_by("topic__slug").values("topic__slug", "mastery"),
        shape=lambda row: {"topic": row["topic__slug"], "predicted": row["mastery"]},
    ),
    retention_setting="RETENTION_TEST_PREDICTIONS_DAYS",
    retention_field="updated_at",
    retention_filter=Q(topic__slug=TOPICS[0]),
)


@pytest.fixture
def with_predictions(monkeypatch):
    real = privacy.declarations
    monkeypatch.setattr(privacy, "declarations", lambda: (*real(), PREDICTIONS))


def test_a_registered_kind_is_exported_where_it_says(school, with_predictions):
    student = school.student(TARGET)
    doc = orjson.loads(b"".join(student_export_stream(student=student, actor=school.admin)))
    records = MasteryRecord.objects.filter(student=student).order_by("topic__slug")
    assert doc["derived"]["predictions"] == [
        {"topic": r.topic.slug, "predicted": r.mastery} for r in records
    ]
    assert list(doc["derived"]) == [
        "note",
        "mastery_records",
        "snapshots",
        "predictions",
        "recommendations",
        "feedback",
    ]


def test_a_registered_kind_is_erased_before_what_it_relies_on(school, with_predictions):
    counts = student_erase(student_id=TARGET, actor=school.admin)
    assert counts["test_predictions"] == len(TOPICS)
    assert counts["mastery_records"] == 0  # the later declaration went first
    assert list(counts)[-1] == "test_predictions"


@override_settings(RETENTION_TEST_PREDICTIONS_DAYS=5)
def test_a_registered_kind_is_purged_past_its_window_and_condition(school, with_predictions):
    now = datetime.now(UTC)
    target = MasteryRecord.objects.filter(student__student_id=TARGET)
    target.update(updated_at=now - timedelta(days=6))
    assert expired_purge(dry_run=True, now=now)["test_predictions"] == 1
    assert expired_purge(chunk=1, now=now)["test_predictions"] == 1
    assert sorted(target.values_list("topic__slug", flat=True)) == sorted(TOPICS[1:])
    assert MasteryRecord.objects.filter(student__student_id=BYSTANDER).count() == len(TOPICS)
    assert expired_purge(now=now)["test_predictions"] == 0


def test_an_export_section_the_document_does_not_place_is_an_error(school, monkeypatch):
    stray = StudentData(
        kind="horoscopes",
        model=MasteryRecord,
        student_field="student",
        export=Export("derived.horoscopes", lambda rows: rows.values("mastery")),
    )
    real = privacy.declarations
    monkeypatch.setattr(privacy, "declarations", lambda: (*real(), stray))
    with pytest.raises(ImproperlyConfigured, match="horoscopes"):
        b"".join(student_export_stream(student=school.student(TARGET), actor=school.admin))
