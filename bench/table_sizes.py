"""Measured bytes per row of the inbox and snapshot tables, extrapolated to a school.

Loads the ingestion benchmark's realistic stream (`ingest.synthetic.session_events`: each
student on 3 of 40 topics, sessions of 5-15 events on one topic within the hour, in time
order) through the real pipeline (`ingest.pipeline.ingest_batch`, 5,000 events a batch, as
the consumer hands them over) into a database of its own (`<name>_bench_sizes`, recreated),
then reads each table's `pg_total_relation_size` (heap, TOAST and indexes) and its rows:

- as loaded: what the upserts left, dead row versions included (autovacuum makes that space
  reusable, it does not give it back), the figure the extrapolation uses;
- compacted: after `VACUUM FULL`, the live rows alone.

The density is the benchmark's realistic one, 300,000 events for 5,000 students over 14
days (about 4.3 events a student and calendar day); the snapshots per student-day follow
from it and are measured. The extrapolation multiplies the measured rows per student-day
and bytes per row by the students and each table's retention window (RETENTION_EVENTS_DAYS,
RETENTION_SNAPSHOTS_DAYS). Not a SPEC §8 target, so not registered in `bench/run.py`:

    python bench/table_sizes.py [--students 1000] [--days 28] [--school 10000]
                                [--rehearse-partitioning]

`--rehearse-partitioning` then turns the snapshot table into one partitioned by month, the
README's migration path (`SNAPSHOT_ONLINE`, then `SNAPSHOT_SWAP` in one transaction): the
existing table becomes the partition of every day before the cut-over month, without a
copy and without a scan under the lock. It then ingests through the pipeline again (new
days and a late event), writes a row into the new month's partition and runs the retention
purge, and prints what each step took.
"""

import argparse
import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DENSITY = 300_000 / 5_000 / 14  # events per student and calendar day (bench/ingest.py)
TOPICS = 40
BATCH = 5_000
TABLES = {  # table: (what a row is, retention setting or None when rows are kept)
    "ingest_learningevent": ("event (inbox)", "RETENTION_EVENTS_DAYS"),
    "mastery_snapshot": ("daily snapshot", "RETENTION_SNAPSHOTS_DAYS"),
    "mastery_masteryrecord": ("mastery record", None),
}


# Online (no lock beyond SHARE UPDATE EXCLUSIVE): the unique index the partitioned primary
# key (id, day) adopts, and a validated range check, so that ATTACH does not scan.
SNAPSHOT_ONLINE = [
    "CREATE UNIQUE INDEX CONCURRENTLY snapshot_legacy_id_day ON mastery_snapshot (id, day)",
    "ALTER TABLE mastery_snapshot ADD CONSTRAINT snapshot_legacy_range"
    " CHECK (day < '{cut}') NOT VALID",
    "ALTER TABLE mastery_snapshot VALIDATE CONSTRAINT snapshot_legacy_range",
]
# One transaction (ACCESS EXCLUSIVE for its duration, catalog work only): the table becomes
# the partition of every day before the cut-over; its indexes and foreign keys are adopted
# by the parent's, and ids continue from its largest (PostgreSQL 16: no identity column on
# a partitioned table, so a sequence default).
SNAPSHOT_SWAP = [
    "ALTER TABLE mastery_snapshot RENAME TO mastery_snapshot_legacy",
    "ALTER INDEX uniq_snapshot_student_topic_day RENAME TO snapshot_legacy_student_topic_day",
    "ALTER TABLE mastery_snapshot_legacy ALTER COLUMN id DROP IDENTITY",
    "ALTER TABLE mastery_snapshot_legacy DROP CONSTRAINT mastery_snapshot_pkey,"
    " ADD CONSTRAINT snapshot_legacy_pkey PRIMARY KEY USING INDEX snapshot_legacy_id_day",
    "CREATE SEQUENCE mastery_snapshot_id_seq AS bigint",
    "SELECT setval('mastery_snapshot_id_seq',"
    " (SELECT coalesce(max(id), 0) + 1 FROM mastery_snapshot_legacy), false)",
    "CREATE TABLE mastery_snapshot (LIKE mastery_snapshot_legacy INCLUDING DEFAULTS"
    " INCLUDING CONSTRAINTS) PARTITION BY RANGE (day)",
    "ALTER TABLE mastery_snapshot DROP CONSTRAINT snapshot_legacy_range",
    "ALTER TABLE mastery_snapshot ALTER COLUMN id SET DEFAULT nextval('mastery_snapshot_id_seq')",
    "ALTER SEQUENCE mastery_snapshot_id_seq OWNED BY mastery_snapshot.id",
    "ALTER TABLE mastery_snapshot ADD PRIMARY KEY (id, day)",
    "ALTER TABLE mastery_snapshot ADD CONSTRAINT uniq_snapshot_student_topic_day"
    " UNIQUE (student_id, topic_id, day)",
    "ALTER TABLE mastery_snapshot ADD CONSTRAINT snapshot_student_fk FOREIGN KEY (student_id)"
    " REFERENCES mastery_student (id) DEFERRABLE INITIALLY DEFERRED",
    "ALTER TABLE mastery_snapshot ADD CONSTRAINT snapshot_topic_fk FOREIGN KEY (topic_id)"
    " REFERENCES mastery_topic (id) DEFERRABLE INITIALLY DEFERRED",
    "CREATE INDEX snapshot_topic ON mastery_snapshot (topic_id)",
    "ALTER TABLE mastery_snapshot ATTACH PARTITION mastery_snapshot_legacy"
    " FOR VALUES FROM (MINVALUE) TO ('{cut}')",
    "CREATE TABLE mastery_snapshot_{month} PARTITION OF mastery_snapshot"
    " FOR VALUES FROM ('{cut}') TO ('{following}')",
]


def load(*, students: int, days: int, seed: int) -> tuple[int, float]:
    """The stream through the pipeline; returns (events accepted, seconds)."""
    from ingest.pipeline import ingest_batch
    from ingest.synthetic import session_events

    now = datetime.now(UTC)
    end = datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC)  # whole days
    events = session_events(
        student_ids=[f"size-{n:05d}" for n in range(students)],
        topics=[f"topic.{n:02d}" for n in range(TOPICS)],
        start=end - timedelta(days=days),
        end=end,
        count=round(students * days * DENSITY),
        rng=random.Random(seed),
    )
    raw = [orjson.dumps(event) for event in events]
    del events
    accepted, started = 0, time.monotonic()
    for first in range(0, len(raw), BATCH):
        result = ingest_batch(raw[first : first + BATCH], source="kafka", now=now)
        assert not result.rejected, result.rejected[:3]
        accepted += result.accepted
    return accepted, time.monotonic() - started


def sizes() -> dict[str, dict[str, int]]:
    from django.db import connection

    found = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(
                f"""SELECT count(*), pg_total_relation_size(%(t)s), pg_relation_size(%(t)s),
                           pg_indexes_size(%(t)s) FROM {table}""",
                {"t": table},
            )
            rows, total, heap, indexes = cursor.fetchone()
            found[table] = {"rows": rows, "total": total, "heap": heap, "indexes": indexes}
    return found


def index_sizes() -> list[tuple[str, str, int]]:
    """(table, index, bytes) of every index of the tables, largest first."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT i.tablename, i.indexname, pg_relation_size(i.indexname::regclass)
               FROM pg_indexes AS i WHERE i.tablename = ANY(%s)
               ORDER BY 1, 3 DESC""",
            [list(TABLES)],
        )
        return cursor.fetchall()


def compact() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"VACUUM (FULL, ANALYZE) {table}")


def month_after(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def rehearse_partitioning(*, students: int) -> None:
    """The snapshot table's migration path on the loaded database, then the code on it."""
    from django.db import connection, transaction

    from compliance.services.retention import expired_purge
    from ingest.pipeline import ingest_batch
    from ingest.synthetic import session_events
    from mastery.models import Snapshot

    now = datetime.now(UTC)
    cut = month_after(now.date())
    names = {"cut": cut, "following": month_after(cut), "month": cut.strftime("%Y_%m")}
    rows = Snapshot.objects.count()
    print(f"\nPartitioning {rows:,} snapshots by month, cut-over {cut}:")
    with connection.cursor() as cursor:
        for statement in SNAPSHOT_ONLINE:  # autocommit: CONCURRENTLY needs no transaction
            started = time.monotonic()
            cursor.execute(statement.format(**names))
            print(f"- online, {time.monotonic() - started:.3f} s: `{statement[:60]}…`")
        started = time.monotonic()
        with transaction.atomic():
            for statement in SNAPSHOT_SWAP:
                cursor.execute(statement.format(**names))
        print(
            f"- the swap transaction ({len(SNAPSHOT_SWAP)} statements), "
            f"{time.monotonic() - started:.3f} s"
        )
    topics = [f"topic.{n:02d}" for n in range(TOPICS)]
    for what, start, end in (
        ("new events", now - timedelta(hours=6), now - timedelta(minutes=1)),
        ("late events", now - timedelta(days=20), now - timedelta(days=19)),
    ):
        events = session_events(
            student_ids=[f"size-{n:05d}" for n in range(min(students, 50))],
            topics=topics, start=start, end=end, count=1_000, rng=random.Random(what),
        )  # fmt: skip
        result = ingest_batch([orjson.dumps(e) for e in events], source="kafka", now=now)
        assert result.accepted == len(events), result.rejected[:3]
        print(f"- pipeline: {result.accepted:,} {what} accepted")
    first = Snapshot.objects.order_by("id").first()
    ahead = Snapshot.objects.create(
        student_id=first.student_id, topic_id=first.topic_id, day=cut, completion=0.5,
        quiz=0.5, quality=0.5, consistency=0.5, mastery=0.5,
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass FROM mastery_snapshot WHERE id = %s", [ahead.pk])
        print(f"- a row dated {cut}: id {ahead.pk:,}, in {cursor.fetchone()[0]}")
    later = datetime.combine(month_after(cut), datetime.min.time(), tzinfo=UTC) + timedelta(
        days=365
    )
    started = time.monotonic()
    purged = expired_purge(now=later)["snapshots"]
    print(
        f"- retention purge as of {later.date()}: {purged:,} snapshots deleted in"
        f" {time.monotonic() - started:.1f} s, {Snapshot.objects.count():,} left"
    )


def mib(value: float) -> str:
    return f"{value / 2**20:,.1f} MiB" if value < 2**30 else f"{value / 2**30:,.2f} GiB"


def report(
    loaded: dict, compacted: dict, *, students: int, days: int, school: int, seconds: float
) -> str:
    from django.conf import settings

    lines = [
        f"Loaded {loaded['ingest_learningevent']['rows']:,} events for {students:,} students"
        f" over {days} days through the pipeline in {seconds:.0f} s"
        f" ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}).",
        "",
        "| table | rows | rows per student-day | bytes per row as loaded (heap + TOAST"
        " / indexes) | compacted | retention | rows for"
        f" {school:,} students | size for {school:,} students |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for table, (what, retention) in TABLES.items():
        now, packed = loaded[table], compacted[table]
        rows = now["rows"]
        per_row = now["total"] / rows
        data_row = (now["total"] - now["indexes"]) / rows
        index_row = now["indexes"] / rows
        if retention is None:
            kept = "kept"
            school_rows = rows / students * school
            density = "—"
        else:
            window = getattr(settings, retention)
            kept = f"{window} days ({retention})"
            density_value = rows / (students * days)
            density = f"{density_value:.3f}"
            school_rows = density_value * school * window
        lines.append(
            f"| `{table}` ({what}) | {rows:,} | {density} | {per_row:,.0f}"
            f" ({data_row:,.0f} / {index_row:,.0f}) | {packed['total'] / rows:,.0f} | {kept}"
            f" | {school_rows:,.0f} | {mib(school_rows * per_row)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=1_000, help="students loaded")
    parser.add_argument("--days", type=int, default=28, help="days of history loaded")
    parser.add_argument("--school", type=int, default=10_000, help="students extrapolated to")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--rehearse-partitioning", action="store_true")
    args = parser.parse_args()

    from bench.run import bench_database, setup_django

    setup_django(bench_database(os.environ["DATABASE_URL"], None, suffix="_sizes"))
    accepted, seconds = load(students=args.students, days=args.days, seed=args.seed)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    loaded = sizes()
    assert loaded["ingest_learningevent"]["rows"] == accepted
    indexes = index_sizes()
    compact()
    print(
        report(
            loaded,
            sizes(),
            students=args.students,
            days=args.days,
            school=args.school,
            seconds=seconds,
        )
    )
    print("\n| table | index | bytes per row as loaded |\n| --- | --- | ---: |")
    for table, index, size in indexes:
        print(f"| `{table}` | `{index}` | {size / loaded[table]['rows']:,.0f} |")
    if args.rehearse_partitioning:
        rehearse_partitioning(students=args.students)


if __name__ == "__main__":
    main()
