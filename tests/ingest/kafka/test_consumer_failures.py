"""`consume_events` processes that die, are told to stop, or lose their database: every
event still ends up applied exactly once (SPEC §2.2, §4).

Streams are produced live while the consumers run; the final state is held to the
reference computation over the accepted events.
"""

import atexit
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from ingest.models import InboxEvent
from mastery.models import MasteryRecord, Student, Topic
from tests.ingest.kafka.harness import (
    ROOT,
    RecordingProducer,
    SteadyProducer,
    committed_offsets,
    consumer_env,
    event_bytes,
    event_key,
    read_topic,
    reference_state,
    state_differences,
    stored_state,
    synthetic_documents,
    wait_until,
)

pytestmark = pytest.mark.kafka

BATCH = ("--batch-size", "50")  # many small batches: a kill lands between two commits


def _stream(rng: random.Random, count: int, duplicate_share: float = 0.1) -> tuple[list, list]:
    """(originals, the items to produce: originals and exact duplicates, shuffled)."""
    originals = synthetic_documents(rng, count=count, students=30, topics=4, days=15)
    documents = originals + rng.sample(originals, int(count * duplicate_share))
    rng.shuffle(documents)
    return originals, [(event_key(d), event_bytes(d)) for d in documents]


def _stored_count() -> int:
    return InboxEvent.objects.count()


def _assert_applied_exactly_once(originals: list[dict], topics) -> None:
    assert InboxEvent.objects.count() == len(originals)
    stored = set(InboxEvent.objects.values_list("event_id", flat=True))
    assert stored == {d["event_id"] for d in originals}
    differences = state_differences(reference_state(originals), stored_state())
    assert differences == [], f"{len(differences)} pairs differ: {differences[:5]}"
    assert read_topic(topics.bootstrap, topics.dlq, 1, settle=0.5) == []


def test_a_killed_consumer_is_replaced_and_every_event_is_applied_once(
    topics, group_id, consumer_env_for, consumer_processes
):
    originals, items = _stream(random.Random(), 2400)
    env = consumer_env_for(group_id)
    first = consumer_processes(env, *BATCH)
    first.wait_for_log("partitions assigned")
    stream = SteadyProducer(RecordingProducer(topics.bootstrap, topics.events), items, 400)
    stream.start()

    wait_until(lambda: _stored_count() >= 300, timeout=40, alive=first, message=first.log)
    first.kill()
    assert stream.is_alive(), "the stream should still be running when the consumer dies"
    killed_at = _stored_count()
    stream.finish()
    assert killed_at < len(originals)

    second = consumer_processes(env, *BATCH, "--idle-exit", "3")
    assert second.wait(timeout=90) == 0, second.log()[-3000:]

    _assert_applied_exactly_once(originals, topics)
    committed = committed_offsets(topics.bootstrap, group_id, topics.events, topics.partitions)
    assert committed == stream.producer.end_offsets()


def test_the_surviving_group_member_takes_over_from_a_killed_one(
    topics, group_id, consumer_env_for, consumer_processes
):
    originals, items = _stream(random.Random(), 2400)
    env = consumer_env_for(group_id)
    survivor = consumer_processes(env, *BATCH)
    survivor.wait_for_log("partitions assigned")
    victim = consumer_processes(env, *BATCH)
    victim.wait_for_log("partitions assigned")  # the rebalance to two members is done
    stream = SteadyProducer(RecordingProducer(topics.bootstrap, topics.events), items, 300)
    stream.start()

    survivor.wait_for_log("batch applied")
    victim.wait_for_log("batch applied", times=3)
    victim.kill()
    assert stream.is_alive(), "the stream should still be running when the member dies"
    stream.finish()

    wait_until(
        lambda: _stored_count() == len(originals),
        timeout=60,
        alive=survivor,
        message=lambda: f"{_stored_count()} of {len(originals)} applied\n{survivor.log()[-2000:]}",
    )
    wait_until(
        lambda: (
            committed_offsets(topics.bootstrap, group_id, topics.events, topics.partitions)
            == stream.producer.end_offsets()
        ),
        timeout=20,
        interval=0.5,
        message="the survivor did not commit to the end of every partition",
    )
    survivor.signal(signal.SIGTERM)
    assert survivor.wait(timeout=15) == 0
    _assert_applied_exactly_once(originals, topics)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_ends_within_seconds_and_commits_everything_applied(
    signum, topics, group_id, consumer_env_for, consumer_processes
):
    originals, items = _stream(random.Random(), 6000, duplicate_share=0)
    consumer = consumer_processes(consumer_env_for(group_id), *BATCH)
    consumer.wait_for_log("partitions assigned")
    stream = SteadyProducer(RecordingProducer(topics.bootstrap, topics.events), items, 600)
    stream.start()

    wait_until(lambda: _stored_count() >= 500, timeout=40, alive=consumer, message=consumer.log)
    assert stream.is_alive()
    consumer.signal(signum)
    asked = time.monotonic()
    assert consumer.wait(timeout=10) == 0, consumer.log()[-3000:]
    assert time.monotonic() - asked < 5
    stream.stop_requested.set()
    sent = stream.finish()

    stored = set(InboxEvent.objects.values_list("event_id", flat=True))
    assert 0 < len(stored) < len(originals), "the signal should have come mid-stream"
    committed = committed_offsets(topics.bootstrap, group_id, topics.events, topics.partitions)
    # Only valid, unique events: one stored event per consumed message, and back.
    assert sum(committed.values()) == len(stored)
    where = {s.value: s for s in sent}
    beyond = [
        d["event_id"]
        for d in originals
        if d["event_id"] in stored
        and where[event_bytes(d)].offset >= committed[where[event_bytes(d)].partition]
    ]
    assert beyond == [], "events applied but their offsets not committed"
    assert f"consumed {sum(committed.values())} messages" in consumer.log()


# -- the database goes away ------------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL server of one test (pgserver), that the test may stop and start."""

    def __init__(self, base: Path):
        import pgserver

        self.pgdata = base / "pgdata"
        self.pgdata.mkdir()
        self.server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        uri = self.server.get_uri()
        self.socket_dir = uri.split("host=", 1)[1].split("&")[0]
        self.server.psql("CREATE DATABASE mastery;")
        self.url = f"postgresql://postgres@/mastery?host={self.socket_dir}"
        self.user = "pgserver" if os.geteuid() == 0 else None

    def _pg_ctl(self, args: list[str]) -> None:
        from pgserver._commands import pg_ctl

        try:
            pg_ctl(args, pgdata=self.pgdata, user=self.user, timeout=30)
        except subprocess.CalledProcessError as exc:
            log = self.pgdata / "log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
            output = (exc.stdout or b"").decode(errors="replace")
            raise AssertionError(f"pg_ctl {args} failed: {output}{exc.stderr}\n{tail}") from None

    def stop(self) -> None:
        self._pg_ctl(["-w", "-m", "fast", "stop"])

    def start(self) -> None:
        log = self.pgdata / "log"
        self._pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(log), "start"])

    def forget(self) -> None:
        """pgserver keeps a handle and an exit hook per server; this one is gone for good."""
        from pgserver.postgres_server import PostgresServer

        atexit.unregister(self.server._cleanup)
        PostgresServer._instances.pop(self.pgdata.resolve(), None)

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()

    def rows(self, sql: str) -> list[tuple]:
        with psycopg.connect(self.url, connect_timeout=5) as conn:
            return conn.execute(sql).fetchall()

    def event_count(self) -> int:
        return self.rows(f"SELECT count(*) FROM {InboxEvent._meta.db_table}")[0][0]

    def event_ids(self) -> set[str]:
        return {row[0] for row in self.rows(f"SELECT event_id FROM {InboxEvent._meta.db_table}")}

    def records(self) -> dict:
        rows = self.rows(
            f"""SELECT s.student_id, t.slug, r.mastery, r.completion, r.quiz, r.quality,
                    r.consistency
                FROM {MasteryRecord._meta.db_table} r
                JOIN {Student._meta.db_table} s ON s.id = r.student_id
                JOIN {Topic._meta.db_table} t ON t.id = r.topic_id"""
        )
        names = ("mastery", "completion", "quiz", "quality", "consistency")
        return {(row[0], row[1]): dict(zip(names, row[2:], strict=True)) for row in rows}


@pytest.fixture
def private_postgres():
    # Not under pytest's 0700 temp dirs: the server runs as another user when we are root.
    base = Path(tempfile.mkdtemp(prefix="mastery-kafka-pg-"))
    base.chmod(0o755)
    server = PrivatePostgres(base)
    yield server
    if server.running():
        server.stop()
    server.forget()
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.filterwarnings("ignore:XDG_RUNTIME_DIR is not set")
def test_the_consumer_survives_a_database_restart_and_applies_every_event_once(
    topics, private_postgres, group_id, consumer_processes
):
    env = consumer_env(database_url=private_postgres.url, topics=topics, group_id=group_id)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=180,
    )
    assert migrate.returncode == 0, migrate.stderr.decode()[-3000:]
    rng = random.Random()
    originals, items = _stream(rng, 1500, duplicate_share=0.05)
    consumer = consumer_processes(env, *BATCH)
    consumer.wait_for_log("partitions assigned")
    stream = SteadyProducer(RecordingProducer(topics.bootstrap, topics.events), items, 200)
    stream.start()

    wait_until(
        lambda: private_postgres.event_count() >= 200,
        timeout=40,
        interval=0.3,
        alive=consumer,
        message=consumer.log,
    )
    private_postgres.stop()
    stopped_at = time.monotonic()
    assert stream.is_alive(), "the stream should go on while the database is down"
    time.sleep(4)
    assert consumer.running(), consumer.log()[-3000:]
    private_postgres.start()
    outage = time.monotonic() - stopped_at
    sent = stream.finish()

    distinct = len({d["event_id"] for d in originals})
    wait_until(
        lambda: private_postgres.event_count() == distinct,
        timeout=60,
        interval=0.5,
        alive=consumer,
        message=lambda: consumer.log()[-3000:],
    )
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(timeout=15) == 0
    assert f"consumed {len(sent)} messages" in consumer.log(), "a batch was read twice"
    assert private_postgres.event_ids() == {d["event_id"] for d in originals}
    differences = state_differences(reference_state(originals), private_postgres.records())
    assert differences == [], f"{len(differences)} pairs differ: {differences[:5]}"
    assert "batch failed" in consumer.log(), f"no retry seen during a {outage:.1f}s outage"
    assert read_topic(topics.bootstrap, topics.dlq, 1, settle=0.5) == []
