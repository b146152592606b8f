"""`manage.py backtest_predictions` (SPEC §3.1, §4): the table, the report kept, the
forecasters served from then on, and options refused when they make no sense."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from analytics.domain.backtest import CANDIDATES
from analytics.models.predictions import BacktestReport
from analytics.services.predictions import today_utc
from compliance.models import AuditLog

pytestmark = pytest.mark.django_db


def backtest(*args: str) -> str:
    out = io.StringIO()
    call_command("backtest_predictions", *args, stdout=out)
    return out.getvalue()


def test_the_table_is_printed_kept_and_its_choice_served(
    school, client_for, django_capture_on_commit_callbacks
):
    asked = {"student_id": "s-a1"}
    before = client_for(school.users["admin"]).post(
        "/api/v1/predictions/next-week", asked, format="json"
    )
    assert before.json()["method"] == "linear"

    with django_capture_on_commit_callbacks(execute=True):
        printed = backtest()

    assert "Per topic (" in printed
    assert "Overall (" in printed
    assert printed.count("**(served)**") == 2
    for forecaster in CANDIDATES:
        assert f"| {forecaster.label}" in printed
    report = BacktestReport.objects.get()
    assert report.horizon == 7
    assert report.report["students"] == 3
    assert set(report.served) == {"topic", "overall"}
    after = client_for(school.users["admin"]).post(
        "/api/v1/predictions/next-week", asked, format="json"
    )
    # the cache was reset: the answer comes from the forecaster now served
    assert after.json()["method"] == report.served["overall"]["method"]
    assert AuditLog.objects.filter(action="prediction.backtest").count() == 1


def test_another_horizon_is_reported_but_changes_nothing_served(school):
    backtest()
    served = BacktestReport.objects.get().served
    printed = backtest("--horizon", "3")
    report = BacktestReport.objects.get()
    assert (report.horizon, report.served) == (3, served)
    assert "the forecasters served are unchanged" in printed


def test_a_cohort_and_a_first_day_narrow_the_replay(school):
    school.students["s-a2"].analytics_consent = False
    school.students["s-a2"].save()
    backtest("--cohort", "cohort-a")
    report = BacktestReport.objects.get()
    assert report.cohort_id == "cohort-a"
    assert report.report["students"] == 1  # s-a2 has withdrawn its consent
    served = report.served
    since = today_utc() - timedelta(days=5)
    backtest("--since", since.isoformat())
    report = BacktestReport.objects.get()
    assert report.since == since
    # origins from 5 days ago to 7 days before today: none, so no evidence to change what
    # is served
    assert report.report["scopes"]["overall"]["cases"] == 0
    assert report.served == served


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--horizon", "0"), "--horizon must be between 1 and 30"),
        (("--horizon", "31"), "--horizon must be between 1 and 30"),
        (("--since", "yesterday"), "--since must be a date"),
        (("--since", (timezone.now() + timedelta(days=2)).date().isoformat()), "after today"),
        (("--cohort", "nobody"), "no cohort 'nobody'"),
    ],
)
def test_options_that_make_no_sense_are_refused(school, args, message):
    with pytest.raises(CommandError, match=message):
        backtest(*args)
    assert not BacktestReport.objects.exists()
