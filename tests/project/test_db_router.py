"""The replica router: the analytics reads over the history go to the `replica` alias (the
test settings' mirror of the test database), reads inside a transaction on the primary and
every write stay on the primary, and nothing goes to a replica that is not configured.

The tests that expect the replica commit their data (transactional), since the mirror is
a connection of its own: it sees what is committed, as a streaming replica would."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.admin import helpers
from django.db import connections, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from analytics.models.predictions import BacktestReport
from analytics.selectors.history import student_history
from analytics.services.predictions import backtest_run
from mastery.models import Cohort, Snapshot, Topic, User
from mastery_project.db_router import REPLICA, ReplicaRouter, read_alias, replica_reads
from tests.analytics.history.support import put_record, put_snapshots
from tests.factories import PINNED_NOW, CohortFactory, StudentFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
BOTH = ["default", REPLICA]
replica_test = pytest.mark.django_db(transaction=True, databases=BOTH)
READS = ("SELECT", "WITH", "DECLARE")
WRITES = ("INSERT", "UPDATE", "DELETE")


class Captured:
    """The statements each alias ran within the block."""

    def __enter__(self) -> "Captured":
        self.contexts = {alias: CaptureQueriesContext(connections[alias]) for alias in BOTH}
        for context in self.contexts.values():
            context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for context in self.contexts.values():
            context.__exit__(*exc)

    def sql(self, alias: str) -> list[str]:
        return [query["sql"] for query in self.contexts[alias].captured_queries]

    def reads_of(self, alias: str, table: str) -> list[str]:
        """Its reads of `table` (a streamed read is a DECLARE of a server-side cursor)."""
        return [s for s in self.sql(alias) if s.lstrip().upper().startswith(READS) and table in s]

    def writes(self, alias: str) -> list[str]:
        return [s for s in self.sql(alias) if s.lstrip().upper().startswith(WRITES)]


def year_of_snapshots(student, days: int = 5) -> None:
    today = PINNED_NOW.date()
    put_snapshots(
        student,
        [("python.loops", today - timedelta(days=n), 0.5 + n / 100) for n in range(days)],
    )


# --- the selectors and the service ---------------------------------------------------------


@replica_test
def test_history_reads_the_replica_and_sees_what_was_committed():
    student = StudentFactory(student_id="s-rep")
    year_of_snapshots(student)
    today = PINNED_NOW.date()
    with Captured() as seen:
        history = student_history(
            student, start=today - timedelta(days=4), end=today, granularity="daily"
        )
    assert [p.mean for p in history.series] == [0.54, 0.53, 0.52, 0.51, 0.5]
    assert seen.reads_of(REPLICA, "mastery_snapshot")
    assert seen.sql("default") == []


@replica_test
def test_inside_a_transaction_the_read_stays_on_the_primary_and_sees_its_own_write():
    student = StudentFactory(student_id="s-own")
    today = PINNED_NOW.date()
    with transaction.atomic(), Captured() as seen:
        year_of_snapshots(student, days=1)  # not committed: no replica could have it
        history = student_history(student, start=today, end=today, granularity="daily")
        assert read_alias() == "default"
    assert history.series[0].mean == 0.5
    assert seen.reads_of("default", "mastery_snapshot")
    assert seen.sql(REPLICA) == []


@replica_test
def test_writes_go_to_the_primary_even_for_a_row_read_from_the_replica():
    Topic.objects.create(slug="python.sets", name="Sets")
    with replica_reads(), Captured() as seen:
        topic = Topic.objects.get(slug="python.sets")
        assert topic._state.db == REPLICA
        topic.name = "Sets and dicts"
        topic.save(update_fields=["name"])
        Topic.objects.create(slug="python.dicts", name="Dicts")
    assert seen.writes(REPLICA) == []
    assert len(seen.writes("default")) == 2
    assert Topic.objects.get(slug="python.sets").name == "Sets and dicts"


@replica_test
def test_outside_replica_reads_every_read_is_the_primarys():
    student = StudentFactory(student_id="s-out")
    year_of_snapshots(student, days=2)
    with Captured() as seen:
        assert Snapshot.objects.filter(student=student).count() == 2
    assert seen.reads_of("default", "mastery_snapshot")
    assert seen.sql(REPLICA) == []


@replica_test
def test_the_backtest_replays_from_the_replica_and_keeps_its_report_on_the_primary():
    for n in range(3):
        year_of_snapshots(StudentFactory(student_id=f"s-bt{n}"), days=20)
    with Captured() as seen:
        saved = backtest_run(horizon=7, now=PINNED_NOW)
    assert saved.report["scopes"]["topic"]["cases"] > 0
    assert seen.reads_of(REPLICA, "mastery_snapshot")
    assert seen.reads_of("default", "mastery_snapshot") == []
    assert seen.writes(REPLICA) == []
    assert any("analytics_backtestreport" in s for s in seen.writes("default"))
    assert BacktestReport.objects.filter(pk=BacktestReport.SINGLETON).exists()


@pytest.mark.django_db
def test_in_a_test_transaction_the_wrapped_reads_stay_on_the_primary():
    """What keeps the rest of the suite as it was: pytest-django's `db` wraps each test in a
    transaction on the primary, so the wrapped reads see the test's own rows there."""
    student = StudentFactory(student_id="s-db")
    year_of_snapshots(student, days=1)
    today = PINNED_NOW.date()
    with replica_reads():
        assert read_alias() == "default"
    history = student_history(student, start=today, end=today, granularity="daily")
    assert history.series[0].mean == 0.5


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
@pytest.mark.django_db(transaction=True)
def test_without_a_replica_configured_everything_reads_the_primary(settings):
    """No test transaction here, and queries to the replica alias are refused in this test:
    routed there, the history would fail."""
    student = StudentFactory(student_id="s-none")
    year_of_snapshots(student, days=1)
    today = PINNED_NOW.date()
    with override_settings(DATABASES={"default": settings.DATABASES["default"]}):
        with replica_reads():
            assert read_alias() == "default"
        history = student_history(student, start=today, end=today, granularity="daily")
    assert history.series[0].mean == 0.5


def test_migrations_run_on_the_primary_only():
    router = ReplicaRouter()
    assert router.allow_migrate("default", "mastery") is True
    assert router.allow_migrate(REPLICA, "mastery") is False


# --- through the API and the admin -----------------------------------------------------------


@replica_test
def test_the_history_endpoint_reads_snapshots_from_the_replica(client_for, pinned_clock):
    student = StudentFactory(student_id="s-api")
    today = timezone.now().date()
    put_snapshots(student, [("python.loops", today - timedelta(days=1), 0.6)])
    client = client_for(UserFactory(username="admin-h", role=User.Role.ADMIN))
    with Captured() as seen:
        response = client.get("/api/v1/analytics/history/s-api")
    assert response.status_code == 200, response.content
    assert response.json()["summary"]["max"] == 0.6
    assert seen.reads_of(REPLICA, "mastery_snapshot")
    assert seen.reads_of("default", "mastery_snapshot") == []
    # Who may see the student is the primary's answer, and nothing is written to a replica.
    assert seen.reads_of("default", "mastery_student")
    assert seen.writes(REPLICA) == []


def two_cohorts_with_records() -> list[Cohort]:
    cohorts = []
    for name, values in (("rep-a", (0.6, 0.7, 0.8)), ("rep-b", (0.3, 0.4, 0.5))):
        students = [StudentFactory(student_id=f"{name}-{n}") for n in range(len(values))]
        for student, value in zip(students, values, strict=True):
            put_record(student, "python.loops", value, completion=value)
        cohorts.append(CohortFactory(cohort_id=name, name=name.upper(), students=students))
    return cohorts


@replica_test
def test_the_comparison_endpoint_computes_its_figures_on_the_replica(client_for):
    two_cohorts_with_records()
    client = client_for(UserFactory(username="admin-c", role=User.Role.ADMIN))
    with Captured() as seen:
        response = client.post(
            "/api/v1/analytics/cohorts/compare", {"cohort_ids": ["rep-a", "rep-b"]}, format="json"
        )
    assert response.status_code == 200, response.content
    assert [c["mean"] for c in response.json()["cohorts"]] == [0.7, 0.4]
    assert seen.reads_of(REPLICA, "mastery_masteryrecord")
    assert seen.reads_of("default", "mastery_masteryrecord") == []
    assert seen.writes(REPLICA) == []


@replica_test
def test_the_admin_charts_read_the_replica(pinned_clock):
    cohorts = two_cohorts_with_records()
    student = StudentFactory(student_id="rep-a-0")
    put_snapshots(student, [("python.loops", timezone.now().date(), 0.6)])
    client = Client()
    client.force_login(UserFactory(username="admin-a", role=User.Role.ADMIN))
    with Captured() as page:
        response = client.get(reverse("admin:mastery_student_change", args=[student.pk]))
    assert response.status_code == 200
    assert response.context["history"].overall[-1] == 0.6
    assert page.reads_of(REPLICA, "mastery_snapshot")
    with Captured() as comparison:
        response = client.post(
            reverse("admin:mastery_cohort_changelist"),
            {"action": "compare_cohorts", helpers.ACTION_CHECKBOX_NAME: [c.pk for c in cohorts]},
        )
    assert response.status_code == 200
    assert "Cohort comparison" in response.content.decode()
    assert comparison.reads_of(REPLICA, "mastery_masteryrecord")
    assert comparison.writes(REPLICA) == []
    # The cohort page's distribution (Django's change view opens no transaction for a GET).
    with Captured() as cohort_page:
        response = client.get(reverse("admin:mastery_cohort_change", args=[cohorts[0].pk]))
    assert response.status_code == 200
    assert 'id="cohort-distribution"' in response.content.decode()
    figures = "per_student AS"  # cohort_figures' statement; the page's own list is the primary's
    assert cohort_page.reads_of(REPLICA, figures)
    assert cohort_page.reads_of("default", figures) == []


# --- the settings ------------------------------------------------------------------------------

PRINT_DATABASES = (
    "import json, django; django.setup(); from django.conf import settings;"
    " print(json.dumps({k: {'NAME': v['NAME'], 'ENGINE': v['ENGINE'], 'OPTIONS': v['OPTIONS']}"
    " for k, v in settings.DATABASES.items()}))"
)


def databases(**env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_REPLICA_URL"}
    environment.update(DJANGO_SETTINGS_MODULE="mastery_project.settings.local", **env)
    result = subprocess.run(
        [sys.executable, "-c", PRINT_DATABASES],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_replica_alias_exists_only_when_database_replica_url_is_set():
    assert list(databases()) == ["default"]
    configured = databases(DATABASE_REPLICA_URL="postgres://reader@replica.internal:5432/mastery")
    assert configured["replica"]["NAME"] == "mastery"
    assert configured["replica"]["ENGINE"] == configured["default"]["ENGINE"]
    assert configured["replica"]["OPTIONS"]["connect_timeout"] == 5
