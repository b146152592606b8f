"""Recommendations and the learning path (SPEC §3.2), each beside the plain read of the
same rows. SPEC §8 sets no target for them; the figures show what a call costs.

- Adaptive recommendations of one student with `topics` started topics, as
  `POST /recommendations/adaptive` computes them once they are stored (the steady state:
  read, compare, nothing to write); and the first call, which writes them.
- The learning path over a catalogue of `catalogue` topics (a prerequisite tree), for the
  same student; steady state.
- Baseline: one SELECT of the student's mastery records (with their facts).

`recommendations_bench()` needs Django set up on a migrated database; `make bench` can call
it after bench/run.py's set-up. Run alone, `python bench/recommendations.py` uses a
database of its own (`<name>_bench_recommendations`, recreated).
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


def timed(call: Callable[[], object], repeat: int) -> float:
    """Median wall time of `call` in milliseconds, after one warm-up call."""
    call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def seed(*, topics: int, catalogue: int) -> tuple:
    """A catalogue where topic n needs topic (n - 1) // 2 (a binary tree), and one student
    with a few days of work in the first `topics` of it, through the real pipeline."""
    from django.utils import timezone

    from ingest.pipeline import ingest_batch
    from mastery.models import Student, Topic

    made = [Topic.objects.create(slug=f"bench.topic-{n:04d}") for n in range(catalogue)]
    through = Topic.prerequisites.through
    through.objects.bulk_create(
        through(from_topic=made[n], to_topic=made[(n - 1) // 2]) for n in range(1, catalogue)
    )
    now = timezone.now()
    events = []
    for n in range(topics):
        for day in range(3):
            at = (now - timedelta(days=day, hours=1)).isoformat()
            common = {"student_id": "bench-recommendations", "topic": made[n].slug}
            events += [
                {
                    **common,
                    "event_id": f"bench-rec-{n}-{day}-{kind}",
                    "event_type": kind,
                    "occurred_at": at,
                    "payload": payload,
                }
                for kind, payload in (
                    ("exercise.completed", {"exercise_id": f"ex-{day}"}),
                    (
                        "quiz.submitted",
                        {"quiz_id": f"q-{day}", "score": 5 + n % 5, "max_score": 10},
                    ),
                    ("code.reviewed", {"submission_id": f"s-{day}", "quality_score": 0.5}),
                )
            ]
    result = ingest_batch(events, source="http")
    assert result.accepted == len(events), result.outcomes[:3]
    return Student.objects.get(student_id="bench-recommendations")


def recommendations_bench(*, topics: int = 20, catalogue: int = 200, repeat: int = 30) -> list:
    """Seeds, measures, prints a table and returns the figures (for bench/results.json)."""
    from django.db import connection

    from analytics.models.recommendations import Recommendation
    from analytics.services.recommendations import learning_path_current, recommendations_current

    student = seed(topics=topics, catalogue=catalogue)

    def select_records() -> list:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT topic_id, completion, quiz, quality, consistency, mastery, facts"
                " FROM mastery_masteryrecord WHERE student_id = %s",
                [student.pk],
            )
            return cursor.fetchall()

    def first_call_ms() -> float:
        Recommendation.objects.filter(student=student).delete()
        return _once(lambda: recommendations_current(student=student))

    written = len(recommendations_current(student=student))
    first_ms = statistics.median(first_call_ms() for _ in range(repeat))
    figures = [
        {
            "measure": f"adaptive, 1 student x {topics} topics, stored (steady state)",
            "ours_ms": timed(lambda: recommendations_current(student=student), repeat),
        },
        {
            "measure": f"adaptive, first call (writes {written} recommendations)",
            "ours_ms": first_ms,
        },
        {
            "measure": f"learning path, {catalogue}-topic catalogue, steady state",
            "ours_ms": timed(lambda: learning_path_current(student=student), repeat),
        },
    ]
    baseline = timed(select_records, repeat)
    print()
    print("| measure | ours (median) | baseline (same run) | ratio |")
    print("| --- | --- | --- | --- |")
    for f in figures:
        f["baseline_ms"] = baseline
        f["baseline"] = f"one SELECT of the student's {topics} mastery records"
        f["ratio"] = f["ours_ms"] / baseline
        print(
            f"| {f['measure']} | {f['ours_ms']:.1f} ms | {baseline:.2f} ms ({f['baseline']})"
            f" | {f['ratio']:.1f} |"
        )
    print(f"\n({os.cpu_count()} cores; median of {repeat} runs after one warm-up)")
    return figures


def _once(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--catalogue", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    from bench.run import bench_database, setup_django

    setup_django(bench_database(os.environ["DATABASE_URL"], None, suffix="_recommendations"))
    recommendations_bench(topics=args.topics, catalogue=args.catalogue, repeat=args.repeat)


if __name__ == "__main__":
    main()
