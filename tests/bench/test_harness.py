"""The bench harness: registration, rows, the table, and the bare baseline's wiring."""

import pytest
from django.test import Client, override_settings
from django.urls import Resolver404, resolve

from bench import api, run
from tests.factories import StudentFactory


def test_every_registered_module_that_exists_has_its_function():
    for benchmark in run.BENCHMARKS:
        module, function = benchmark.target.split(":")
        path = (run.ROOT / module.replace(".", "/")).with_suffix(".py")
        if path.exists():
            assert callable(getattr(__import__(module, fromlist=[function]), function))


def test_a_registered_module_that_does_not_exist_is_left_out_with_the_reason():
    rows, reason = run.run_one(run.Benchmark("later", "bench.not_yet_written:bench"), {})
    assert rows == []
    assert reason == "bench/not_yet_written.py does not exist yet"


def test_millisecond_rows_become_general_rows():
    row = run.normalized(
        {"measure": "history", "ours_ms": 8.0, "baseline_ms": 2.0, "baseline": "one SELECT",
         "target_ms": 20}
    )  # fmt: skip
    assert row["ours"] == "8.0 ms"
    assert row["baseline"] == "2.0 ms (one SELECT)"
    assert row["ratio"] == 4.0
    assert row["target"] == "< 20 ms"
    assert row["met"] is True
    assert row["figures"] == {"ours_ms": 8.0, "baseline_ms": 2.0, "target_ms": 20}


def test_a_median_row_without_baseline_has_no_ratio():
    row = run.normalized({"measure": "hit", "median_ms": 4.0, "p95_ms": 6.5, "target_ms": 3})
    assert row["ours"] == "4.0 ms, p95 6.5 ms"
    assert row["ratio"] is None
    assert row["baseline"] == "—"
    assert row["met"] is False


def test_the_table_marks_a_missed_target():
    rows = [
        {"measure": "a", "ours": "1", "baseline": "2", "ratio": 0.5, "target": "t",
         "met": False, "load": 1.25},
        {"measure": "b", "ours": "3", "baseline": "—", "ratio": None, "target": "t",
         "met": True, "load": None},
    ]  # fmt: skip
    lines = run.table(rows).splitlines()
    assert lines[0].startswith("| measure | ours | baseline (same run) | ratio |")
    assert lines[2] == "| a | 1 | 2 | 0.50 | t | **no** | 1.2 |"
    assert lines[3] == "| b | 3 | — | — | t | yes | — |"


def test_without_wrk_the_api_benchmark_says_so(monkeypatch):
    monkeypatch.setattr(api.shutil, "which", lambda name: None)
    monkeypatch.setattr(api.os, "geteuid", lambda: 1000)
    with pytest.raises(RuntimeError, match="wrk is not installed"):
        api.api_bench(size="small", runs=1)


def test_the_bare_view_exists_only_in_the_bench_urlconf():
    with pytest.raises(Resolver404):
        resolve("/bench/bare-mastery")
    assert resolve("/bench/bare-mastery", urlconf="bench.urls").url_name == "bench-bare-mastery"


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="bench.urls")
def test_the_bare_view_reads_the_students_records():
    from mastery.models import MasteryRecord, Topic

    student = StudentFactory(student_id="s-bare")
    topic = Topic.objects.create(slug="bare.topic")
    MasteryRecord.objects.create(
        student=student, topic=topic, mastery=0.5, level="developing", facts={},
        policy_hash="x", updated_at="2026-01-01T00:00:00Z",
    )  # fmt: skip
    answer = Client().post(
        "/bench/bare-mastery", {"student_id": "s-bare"}, content_type="application/json"
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["student_id"] == "s-bare"
    assert [(t["topic"], t["mastery"]) for t in body["topics"]] == [("bare.topic", 0.5)]
