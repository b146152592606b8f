"""History and cohort comparison (SPEC §8), each beside the plain read of the same rows.

- History of one student over 365 days (every day a snapshot in each of its topics),
  monthly and daily, as `POST /analytics/history` computes it; baseline: one SELECT of
  the same snapshot rows.
- Comparison of 2 cohorts x 5,000 students (each with a few topics), as
  `POST /analytics/cohorts/compare` computes it (figures in SQL, tests, the document);
  baseline: one aggregate SELECT (count and mean per cohort) over the same rows.

`history_bench()` needs Django set up on a migrated database; `make bench` calls it after
bench/run.py's set-up. Run alone, `python bench/history.py` uses a database of its own
(`<name>_bench_history`, recreated).
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HISTORY_DAYS = 365


def timed(call: Callable[[], object], repeat: int) -> float:
    """Median wall time of `call` in milliseconds, after one warm-up call."""
    call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def seed(*, history_topics: int, cohort_size: int, cohort_topics: int, today) -> dict:
    """One student with a snapshot per day and topic over the year, and two cohorts of
    consenting students with records; set-based inserts, so seeding takes seconds."""
    from django.db import connection

    from mastery.models import Cohort, Student, Topic

    topics = [Topic.objects.create(slug=f"bench.topic-{n}") for n in range(history_topics)]
    student = Student.objects.create(student_id="bench-history")
    cohorts = [Cohort.objects.create(cohort_id=f"bench-{n}", name=f"Bench {n}") for n in (1, 2)]
    start = today - timedelta(days=HISTORY_DAYS - 1)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO mastery_snapshot (student_id, topic_id, day, completion, quiz, quality,
                                          consistency, mastery, exercises_done, facts)
            SELECT %(student)s, t.id, d::date, 0.5, 0.5, 0.5, 0.5,
                   round((0.3 + 0.6 * random())::numeric, 4)::float8, 0, '{}'
            FROM unnest(%(topics)s::bigint[]) AS t(id)
            CROSS JOIN generate_series(%(start)s::date, %(end)s::date, interval '1 day') AS d
            """,
            {"student": student.pk, "topics": [t.pk for t in topics], "start": start, "end": today},
        )
        for index, cohort in enumerate(cohorts):
            cursor.execute(
                """
                WITH made AS (
                    INSERT INTO mastery_student (student_id, analytics_consent, created_at)
                    SELECT 'bench-' || %(cohort)s || '-' || n, true, now()
                    FROM generate_series(1, %(size)s) AS n
                    RETURNING id
                ), joined AS (
                    INSERT INTO mastery_cohort_students (cohort_id, student_id)
                    SELECT %(cohort)s, id FROM made RETURNING student_id
                )
                INSERT INTO mastery_masteryrecord (student_id, topic_id, completion, quiz,
                    quality, consistency, mastery, level, facts, policy_hash, updated_at)
                SELECT j.student_id, t.id, 0.5, 0.5, 0.5, 0.5,
                       round((%(shift)s + 0.5 * random())::numeric, 4)::float8,
                       'developing', '{}', 'bench', now()
                FROM joined AS j
                CROSS JOIN unnest(%(topics)s::bigint[]) AS t(id)
                """,
                {
                    "cohort": cohort.pk,
                    "size": cohort_size,
                    "topics": [t.pk for t in topics[:cohort_topics]],
                    "shift": 0.25 + 0.05 * index,
                },
            )
        cursor.execute("ANALYZE")
    return {"student": student, "cohorts": cohorts, "start": start, "end": today}


def history_bench(
    *,
    history_topics: int = 8,
    cohort_size: int = 5_000,
    cohort_topics: int = 5,
    repeat: int = 30,
) -> list[dict]:
    """Seeds, measures, prints a table and returns the figures (for bench/results.json)."""
    from django.db import connection
    from django.utils import timezone

    from analytics.api.history import comparison_document
    from analytics.selectors.cohorts import cohort_figures
    from analytics.selectors.history import student_history

    today = timezone.now().date()
    data = seed(
        history_topics=history_topics,
        cohort_size=cohort_size,
        cohort_topics=cohort_topics,
        today=today,
    )
    student, cohorts, start = data["student"], data["cohorts"], data["start"]

    def select_snapshots() -> list:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT topic_id, day, mastery FROM mastery_snapshot"
                " WHERE student_id = %s AND day BETWEEN %s AND %s",
                [student.pk, start, today],
            )
            return cursor.fetchall()

    def aggregate_select() -> list:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT m.cohort_id, count(*), avg(r.mastery)
                FROM mastery_cohort_students AS m
                JOIN mastery_student AS s ON s.id = m.student_id AND s.analytics_consent
                JOIN mastery_masteryrecord AS r ON r.student_id = m.student_id
                WHERE m.cohort_id = ANY(%s)
                GROUP BY m.cohort_id
                """,
                [[c.pk for c in cohorts]],
            )
            return cursor.fetchall()

    def history(granularity: str) -> Callable[[], object]:
        return lambda: student_history(student, start=start, end=today, granularity=granularity)

    def compare() -> dict:
        return comparison_document(cohorts, cohort_figures(cohorts), None)

    rows = len(select_snapshots())
    one_student = f"history, 1 student, {HISTORY_DAYS} days x {history_topics} topics"
    figures = [
        {
            "measure": f"{one_student}, monthly",
            "ours_ms": timed(history("monthly"), repeat),
            "baseline_ms": timed(select_snapshots, repeat),
            "baseline": f"one SELECT of the {rows:,} snapshot rows",
            "target_ms": 20,
        },
        {
            "measure": f"{one_student}, daily",
            "ours_ms": timed(history("daily"), repeat),
            "baseline_ms": timed(select_snapshots, repeat),
            "baseline": f"one SELECT of the {rows:,} snapshot rows",
            "target_ms": 20,
        },
        {
            "measure": f"cohort compare, 2 x {cohort_size:,} students x {cohort_topics} topics",
            "ours_ms": timed(compare, repeat),
            "baseline_ms": timed(aggregate_select, repeat),
            "baseline": "one aggregate SELECT (count, mean per cohort) of the same rows",
            "target_ms": 300,
        },
    ]
    print()
    print("| measure | ours (median) | baseline (same run) | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    for f in figures:
        f["ratio"] = f["ours_ms"] / f["baseline_ms"]
        print(
            f"| {f['measure']} | {f['ours_ms']:.1f} ms | {f['baseline_ms']:.1f} ms"
            f" ({f['baseline']}) | {f['ratio']:.1f} | < {f['target_ms']} ms |"
        )
    print(f"\n({os.cpu_count()} cores; median of {repeat} runs after one warm-up)")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history-topics", type=int, default=8)
    parser.add_argument("--cohort-size", type=int, default=5_000)
    parser.add_argument("--cohort-topics", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    from bench.run import bench_database, setup_django

    setup_django(bench_database(os.environ["DATABASE_URL"], None, suffix="_history"))
    history_bench(
        history_topics=args.history_topics,
        cohort_size=args.cohort_size,
        cohort_topics=args.cohort_topics,
        repeat=args.repeat,
    )


if __name__ == "__main__":
    main()
