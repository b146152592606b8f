"""Faults under traffic, on a stack of this module's own (`tests/process/faults_stack.py`):
Redis stopped, the Kafka broker gone and back, the dead-letter topic unreachable, PostgreSQL
restarted under gunicorn, SIGTERM to web and worker under load. Each ends the same way:
nothing lost, nothing applied twice, no 500.

The shared embedded servers of the test run are never touched: every server stopped here
is one this module started.
"""

import random
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import orjson
import psycopg
import pytest

from analytics.models.batch import BatchJob, BatchJobItem
from ingest.models import InboxEvent
from mastery.models import MasteryRecord, Student, Topic
from mastery_project.errors import api_exception_handler
from tests.ingest.kafka.harness import (
    RecordingProducer,
    SteadyProducer,
    Topics,
    committed_offsets,
    event_bytes,
    event_key,
    read_topic,
    reference_state,
    state_differences,
    synthetic_documents,
)
from tests.process.faults_stack import (
    PASSWORD,
    Answer,
    Stack,
    Web,
    quiz_events,
    wait_until,
)

pytestmark = pytest.mark.kafka

INBOX = InboxEvent._meta.db_table
# When Redis is down every rate-limited endpoint answers, unmetered (fail-open: a fairness
# budget, not a security control; mastery_project.ratelimit); the forecasts also step their
# cache aside.
FAIL_OPEN = ("next-week", "trajectory", "mastery", "adaptive")
CACHED = ("next-week", "trajectory")
UNMETERED = ("students", "token")


# -- the stack --------------------------------------------------------------------------------


@dataclass
class Logins:
    admin: str
    lms: str
    teacher: str


@pytest.fixture(scope="module")
def stack():
    started = Stack.start()
    code = (
        "from mastery.services import account_create_or_update as create\n"
        f"create(username='admin', role='admin', password='{PASSWORD}')\n"
        f"create(username='lms', role='service', password='{PASSWORD}')\n"
        f"create(username='teacher', role='teacher', password='{PASSWORD}', cohort_ids=['c-1'])\n"
        "for n in range(10):\n"
        f"    create(username=f'student-{{n}}', role='student', password='{PASSWORD}',\n"
        "           student_id=f's-{n:03d}', cohort_ids=['c-1'])\n"
    )
    try:
        started.manage("shell", "-c", code)
        yield started
    finally:
        started.close()


@pytest.fixture(scope="module")
def web(stack, tmp_path_factory):
    server = Web(stack, tmp_path_factory.mktemp("web") / "gunicorn.log")
    lms = server.token("lms")
    seeded = server.call("POST", "/api/v1/events", {"events": quiz_events("seed", 300)}, token=lms)
    assert seeded.status == 200, seeded
    yield server
    server.stop()


@pytest.fixture(scope="module")
def logins(web) -> Logins:
    return Logins(web.token("admin"), web.token("lms"), web.token("teacher"))


def inbox_ids(stack: Stack, prefix: str) -> Counter:
    rows = stack.sql(f"SELECT event_id FROM {INBOX} WHERE event_id LIKE %s", f"{prefix}-%")
    return Counter(row[0] for row in rows)


def stored_records(stack: Stack, student_prefix: str) -> dict:
    rows = stack.sql(
        f"""SELECT s.student_id, t.slug, r.mastery, r.completion, r.quiz, r.quality,
                r.consistency
            FROM {MasteryRecord._meta.db_table} r
            JOIN {Student._meta.db_table} s ON s.id = r.student_id
            JOIN {Topic._meta.db_table} t ON t.id = r.topic_id
            WHERE s.student_id LIKE %s""",
        f"{student_prefix}%",
    )
    names = ("mastery", "completion", "quiz", "quality", "consistency")
    return {(row[0], row[1]): dict(zip(names, row[2:], strict=True)) for row in rows}


# -- traffic ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    started: float
    ended: float
    answer: Answer | None  # None: the connection failed
    error: str = ""


@dataclass
class Traffic:
    """Threads calling the named requests round-robin until stopped; every outcome kept.
    A request is (method, path, body, token)."""

    web: Web
    requests: dict[str, tuple]
    threads: int = 3
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._workers = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(self.threads)
        ]

    def _run(self, offset: int) -> None:
        names = list(self.requests)
        n = offset
        while not self._stop.is_set():
            name = names[n % len(names)]
            self.outcomes.append(call(self.web, name, *self.requests[name]))
            n += 1
            time.sleep(0.02)

    def __enter__(self):
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def between(self, start: float, end: float = float("inf")) -> list[Outcome]:
        return [o for o in self.outcomes if start <= o.started and o.ended <= end]


def call(web: Web, name: str, method: str, path: str, body, token: str) -> Outcome:
    started = time.monotonic()
    try:
        answer = web.call(method, path, body, token=token)
    except OSError as exc:
        return Outcome(name, started, time.monotonic(), None, f"{type(exc).__name__}: {exc}")
    return Outcome(name, started, time.monotonic(), answer)


class EventPoster(threading.Thread):
    """An LMS posting fresh batches of events, each retried until it is answered 200 (as
    a client does on a 503 or a dropped connection). `answers` holds each batch's 200."""

    def __init__(self, web: Web, token: str, prefix: str, *, size: int = 20, students: int = 10):
        super().__init__(daemon=True)
        self.web, self.token, self.prefix = web, token, prefix
        self.size, self.students = size, students
        self.stopping = threading.Event()
        self.sent: list[str] = []
        self.answers: list[Answer] = []
        self.outcomes: list[Outcome] = []

    def run(self) -> None:
        batch = 0
        while not self.stopping.is_set():
            events = quiz_events(f"{self.prefix}-{batch}", self.size, students=self.students)
            body = {"events": events}
            while True:
                outcome = call(self.web, "events", "POST", "/api/v1/events", body, self.token)
                self.outcomes.append(outcome)
                if outcome.answer is not None and outcome.answer.status == 200:
                    break
                time.sleep(0.2)
            self.sent += [e["event_id"] for e in events]
            self.answers.append(outcome.answer)
            batch += 1

    def finish(self) -> None:
        self.stopping.set()
        self.join(timeout=60)
        assert not self.is_alive(), "the poster did not finish its last batch"


def server_errors(outcomes: list[Outcome]) -> list[Outcome]:
    """Answers that are server errors, other than a 503 in the envelope with Retry-After."""
    wrong = []
    for outcome in outcomes:
        answer = outcome.answer
        if answer is None or answer.status < 500:
            continue
        details = answer.body.get("error", {}).get("details", {})
        if not (
            answer.status == 503
            and answer.body["error"]["code"] == "service_unavailable"
            and answer.headers.get("retry-after", "").isdigit()
            and details.get("retry_after") == int(answer.headers["retry-after"])
        ):
            wrong.append(outcome)
    return wrong


def statuses(outcomes: list[Outcome], name: str) -> Counter:
    return Counter(o.answer.status if o.answer else o.error for o in outcomes if o.name == name)


def ready(web: Web) -> Answer:
    return web.call("GET", "/ready")


# -- Redis --------------------------------------------------------------------------------------


def rate_limit_count(stack: Stack) -> int:
    """Calls counted by the rate limit in Redis (django-ratelimit's `rl:` counters)."""
    client = stack.redis()
    return sum(int(client.get(key) or 0) for key in client.scan_iter(match="*:rl:*"))


def prediction_keys(stack: Stack) -> int:
    return sum(1 for _ in stack.redis().scan_iter(match="*prediction*"))


def test_redis_stopped_during_traffic(stack, web, logins):
    student = {"student_id": "s-009"}
    requests = {
        "mastery": ("POST", "/api/v1/mastery/query", student, logins.teacher),
        "next-week": ("POST", "/api/v1/predictions/next-week", student, logins.teacher),
        "trajectory": ("POST", "/api/v1/predictions/trajectory", student, logins.teacher),
        "adaptive": ("POST", "/api/v1/recommendations/adaptive", student, logins.teacher),
        "students": ("GET", "/api/v1/students/", None, logins.teacher),
        "token": ("POST", "/api/v1/auth/token", {"username": "teacher", "password": PASSWORD}, ""),
    }
    before = {name: call(web, name, *request) for name, request in requests.items()}
    assert {name: o.answer.status for name, o in before.items()} == dict.fromkeys(requests, 200)
    counted = rate_limit_count(stack)
    assert call(web, "mastery", *requests["mastery"]).answer.status == 200
    assert rate_limit_count(stack) == counted + 1
    assert prediction_keys(stack) > 0

    # The LMS posts for s-000 to s-004, not s-009, whose answers are compared below.
    poster = EventPoster(web, logins.lms, f"redis-{uuid.uuid4().hex[:8]}", students=5)
    with Traffic(web, requests) as traffic:
        poster.start()
        wait_until(lambda: len(poster.answers) >= 3, timeout=30, what="events posted")
        stack.redis_stop()
        stopped = time.monotonic()
        down = ready(web)
        wait_until(
            lambda: {o.name for o in traffic.between(stopped)} >= set(requests),
            timeout=30,
            what="every request answered while Redis is down",
        )
        posted_during = len(poster.answers)
        wait_until(lambda: len(poster.answers) >= posted_during + 3, timeout=30, what="posted")
        during = {name: call(web, name, *request) for name, request in requests.items()}
        restarting = time.monotonic()
        stack.restart_stopped()
        wait_until(lambda: ready(web).status == 200, timeout=30, what="/ready with Redis back")
        wait_until(
            lambda: all(
                call(web, name, *request).answer.status == 200 for name, request in requests.items()
            ),
            timeout=30,
            what="every request answered 200 with Redis back",
        )
    poster.finish()

    assert down.status == 503
    assert down.body["failed"] == ["redis"]
    assert web.call("GET", "/health").status == 200
    outage = traffic.between(stopped, restarting)
    for name in (*FAIL_OPEN, *UNMETERED):
        assert statuses(outage, name).keys() == {200}, (name, statuses(outage, name))
    # The cache stepped aside: the same forecast, computed from the database.
    for name in CACHED:
        same_day = during[name].answer.body.get("target_date") == before[name].answer.body.get(
            "target_date"
        )
        assert during[name].answer.body == before[name].answer.body or not same_day
    assert statuses(poster.outcomes, "events").keys() == {200}, "ingestion does not need Redis"

    # Metering and caching are back: each worker asks Redis again once its breaker
    # (RATE_LIMIT_REDIS_RETRY_SECONDS, 5 s) has passed.
    counted = rate_limit_count(stack)

    def metered() -> bool:
        assert call(web, "mastery", *requests["mastery"]).answer.status == 200
        return rate_limit_count(stack) > counted

    wait_until(metered, timeout=15, what="a call metered again", interval=0.5)
    assert call(web, "next-week", *requests["next-week"]).answer.status == 200
    assert prediction_keys(stack) > 0

    everything = [*traffic.outcomes, *poster.outcomes, *before.values(), *during.values()]
    assert server_errors(everything) == []
    assert [o for o in everything if o.answer is None] == []
    stored = inbox_ids(stack, poster.prefix)
    assert set(stored) == set(poster.sent)
    assert set(stored.values()) == {1}
    assert all(a.body["accepted"] == poster.size for a in poster.answers)


# -- PostgreSQL ---------------------------------------------------------------------------------


def gunicorn_workers(web: Web) -> set[int]:
    children = f"/proc/{web.process.pid}/task/{web.process.pid}/children"
    with open(children) as listing:
        return {int(pid) for pid in listing.read().split()}


def test_postgres_restarted_while_gunicorn_serves(stack, web, logins):
    requests = {
        "mastery": ("POST", "/api/v1/mastery/query", {"student_id": "s-002"}, logins.teacher),
        "next-week": (
            "POST",
            "/api/v1/predictions/next-week",
            {"student_id": "s-002"},
            logins.teacher,
        ),
        "students": ("GET", "/api/v1/students/", None, logins.teacher),
        "token": ("POST", "/api/v1/auth/token", {"username": "teacher", "password": PASSWORD}, ""),
    }
    workers = gunicorn_workers(web)
    poster = EventPoster(web, logins.lms, f"pg-{uuid.uuid4().hex[:8]}")
    with Traffic(web, requests) as traffic:
        poster.start()
        wait_until(lambda: len(poster.answers) >= 3, timeout=30, what="events posted")
        stack.postgres_stop()
        stopped = time.monotonic()
        down = ready(web)
        health = web.call("GET", "/health")
        admin_down = web.admin_login("admin", PASSWORD)
        wait_until(
            lambda: (
                statuses(traffic.between(stopped), "mastery")[503] >= 3
                and statuses(poster.outcomes, "events")[503] >= 1
            ),
            timeout=30,
            what="503s while PostgreSQL is down",
        )
        restarting = time.monotonic()
        stack.restart_stopped()
        wait_until(
            lambda: all(
                o.answer is not None and o.answer.status == 200
                for o in [call(web, name, *request) for name, request in requests.items()]
            ),
            timeout=30,
            what="every request answered with PostgreSQL back",
        )
        back = time.monotonic()
        posted = len(poster.answers)
        wait_until(lambda: len(poster.answers) >= posted + 3, timeout=30, what="posting again")
        wait_until(
            lambda: {o.name for o in traffic.between(back)} >= set(requests),
            timeout=30,
            what="every request answered again since",
        )
    poster.finish()

    assert (down.status, down.body["failed"]) == (503, ["postgres"])
    assert health.status == 200
    assert admin_down.status == 503, "a page outside the API: 503, not 500"
    assert admin_down.headers["retry-after"] == "5"
    assert web.admin_login("admin", PASSWORD).status == 302  # logged in, once it is back
    assert ready(web).status == 200
    assert gunicorn_workers(web) == workers, "no worker was restarted"
    outage = traffic.between(stopped, restarting)
    for name in ("mastery", "next-week", "students", "token"):
        assert statuses(outage, name).keys() <= {503}, (name, statuses(outage, name))
    after = traffic.between(back)
    for name in requests:
        assert statuses(after, name).keys() <= {200}, (name, statuses(after, name))
    everything = [*traffic.outcomes, *poster.outcomes]
    assert server_errors(everything) == []
    assert [o for o in everything if o.answer is None] == []
    # A 503 applied nothing: each batch was accepted whole by the attempt that got its 200.
    stored = inbox_ids(stack, poster.prefix)
    assert set(stored) == set(poster.sent)
    assert set(stored.values()) == {1}
    assert all(a.body["accepted"] == poster.size for a in poster.answers)


def test_a_connection_lost_under_a_raw_psycopg_cursor_is_the_same_503():
    """Binary COPY works on psycopg's own cursor, whose errors Django does not wrap: the
    server going away mid-COPY raises psycopg.OperationalError (seen in the test above
    when the stop lands on an audit write), and it is a 503 as Django's own is."""
    lost = psycopg.OperationalError("consuming input failed: server closed the connection")
    response = api_exception_handler(lost, {})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.data["error"]["details"] == {"retry_after": 5}


# -- Kafka ----------------------------------------------------------------------------------------


@pytest.fixture
def topics(stack) -> Topics:
    name = uuid.uuid4().hex[:10]
    made = Topics(stack.endpoint.bootstrap, f"faults.events.{name}", f"faults.letters.{name}")
    stack.create_topics({made.events: made.partitions, made.dlq: 1})
    return made


class Consumer:
    """`consume_events` on the stack, as the Procfile runs it (small batches)."""

    def __init__(self, stack: Stack, topics: Topics, log):
        self.group = f"faults.{uuid.uuid4().hex}"
        self.topics = topics
        self.log_path = log
        command = ["consume_events", "--metrics-port", "0", "--batch-size", "50"]
        self.process = stack.spawn(
            [sys.executable, "manage.py", *command],
            log,
            KAFKA_EVENTS_TOPIC=topics.events,
            KAFKA_DLQ_TOPIC=topics.dlq,
            KAFKA_GROUP_ID=self.group,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def lines(self, message: str) -> list[dict]:
        return [
            orjson.loads(line)
            for line in self.log().splitlines()
            if line.startswith("{") and f'"message": "{message}' in line
        ]

    def committed(self) -> dict[int, int]:
        topics = self.topics
        return committed_offsets(topics.bootstrap, self.group, topics.events, topics.partitions)

    def joined(self) -> bool:
        return self.alive() and bool(self.lines("partitions assigned"))

    def alive(self) -> bool:
        assert self.process.poll() is None, self.log()[-3000:]
        return True

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@pytest.fixture
def consumers(stack, topics, tmp_path):
    started: list[Consumer] = []

    def start() -> Consumer:
        started.append(Consumer(stack, topics, tmp_path / f"consumer-{len(started)}.log"))
        return started[-1]

    yield start
    for consumer in started:
        if consumer.process.poll() is None:
            consumer.process.kill()
            consumer.process.wait()


def stream(count: int, poison: int) -> tuple[list[dict], list[bytes], list[tuple[bytes, bytes]]]:
    """(valid documents, poison values, the shuffled items to produce: every document, 5 %
    of them twice, and the poison: events of an unknown type)."""
    rng = random.Random()
    documents = synthetic_documents(rng, count=count, students=20, topics=3, days=10)
    bad = [
        event_bytes({**documents[n], "event_id": f"poison-{uuid.uuid4().hex}", "event_type": "x"})
        for n in range(poison)
    ]
    items = [(event_key(d), event_bytes(d)) for d in documents + rng.sample(documents, count // 20)]
    items += [(f"poison-{n}".encode(), value) for n, value in enumerate(bad)]
    rng.shuffle(items)
    return documents, bad, items


def inbox_count(stack: Stack, documents: list[dict]) -> int:
    ids = [d["event_id"] for d in documents]
    return stack.sql(f"SELECT count(*) FROM {INBOX} WHERE event_id = ANY(%s)", ids)[0][0]


def assert_applied_once(stack: Stack, documents: list[dict]) -> None:
    ids = [d["event_id"] for d in documents]
    rows = stack.sql(f"SELECT event_id FROM {INBOX} WHERE event_id = ANY(%s)", ids)
    assert sorted(row[0] for row in rows) == sorted(ids)
    prefix = documents[0]["student_id"].rsplit("-", 1)[0]
    differences = state_differences(reference_state(documents), stored_records(stack, prefix))
    assert differences == [], f"{len(differences)} pairs differ: {differences[:3]}"


def letters(topics: Topics) -> Counter:
    """Dead letters by value, checked to carry the code of an unknown event type."""
    received = read_topic(topics.bootstrap, topics.dlq, 1, settle=1.0)
    assert {r.headers["error.code"] for r in received} <= {b"unknown_event_type"}
    return Counter(r.value for r in received)


def test_the_broker_stopped_and_restarted_under_the_consumer(stack, topics, consumers):
    documents, poison, items = stream(1500, poison=6)
    consumer = consumers()
    wait_until(consumer.joined, timeout=60, what="the consumer joined")
    producer = SteadyProducer(RecordingProducer(topics.bootstrap, topics.events), items, 150)
    producer.start()
    wait_until(lambda: inbox_count(stack, documents) >= 300, timeout=60, what="events applied")

    stack.endpoint.stop()
    # Longer than the session timeout (6 s): the broker drops the member from its group.
    # (What the consumer had fetched before goes on being applied; its commits fail.)
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        assert consumer.alive()
        time.sleep(0.2)
    stack.endpoint.start()
    sent = producer.finish(timeout=120)

    wait_until(
        lambda: consumer.alive() and inbox_count(stack, documents) == len(documents),
        timeout=120,
        what=f"every event applied after the broker came back (log {consumer.log_path})",
    )
    # A message acknowledged while the broker's link came and went may carry no offset
    # (librdkafka reports none when the produce response was lost); the inbox count above
    # already holds every one applied once. The commits must pass every known offset.
    ends: dict[int, int] = {}
    for sent_message in producer.producer.sent:
        if sent_message.offset is not None:
            ends[sent_message.partition] = max(
                ends.get(sent_message.partition, 0), sent_message.offset + 1
            )

    def committed_past_ends() -> bool:
        committed = consumer.committed()
        return all(committed.get(partition, -1) >= end for partition, end in ends.items())

    wait_until(
        committed_past_ends, timeout=60, what="offsets committed past every acknowledged message"
    )
    assert consumer.stop() == 0
    assert len(sent) == len(items)
    assert_applied_once(stack, documents)
    dead = letters(topics)
    assert set(dead) == set(poison), "every poison message dead-lettered, and only those"
    log = consumer.log()
    assert "Connection refused" in log, "the consumer saw the broker go"
    assert len(consumer.lines("partitions assigned")) >= 2, f"it rejoined:\n{log[-3000:]}"


def test_an_unreachable_dead_letter_topic_pauses_the_consumer_and_skips_nothing(
    stack, topics, consumers
):
    documents, poison, items = stream(600, poison=1)
    producer = RecordingProducer(topics.bootstrap, topics.events)
    for key, value in items:
        producer.send(value, key=key)
    sent = producer.flush()
    [where] = [s for s in sent if s.value == poison[0]]

    stack.endpoint.refuse_produce_to(topics.dlq)
    try:
        consumer = consumers()
        wait_until(
            lambda: consumer.alive() and consumer.lines("batch failed"),
            timeout=90,
            what="the batch with the poison message retried",
        )
        held = inbox_count(stack, documents)
        committed = consumer.committed()
        retried = len(consumer.lines("batch failed"))
        wait_until(
            lambda: consumer.alive() and len(consumer.lines("batch failed")) > retried,
            timeout=60,
            what="the same batch retried again",
        )
        assert inbox_count(stack, documents) == held, "nothing past the batch in hand"
        assert consumer.committed() == committed
        assert committed[where.partition] <= where.offset, "the poison's offset not committed"
        assert len(consumer.lines("batch failed")) > retried
        assert stack.endpoint.refused > 0
        assert read_topic(topics.bootstrap, topics.dlq, 1, settle=0.5) == []
    finally:
        stack.endpoint.refuse_produce_to(None)

    ends = producer.end_offsets()
    wait_until(
        lambda: consumer.committed() == ends,
        timeout=90,
        what="the consumer resumed and committed every partition",
    )
    assert consumer.stop() == 0
    assert_applied_once(stack, documents)
    dead = letters(topics)
    assert set(dead) == {poison[0]}
    assert dead[poison[0]] == 1, f"the dead letter was written {dead[poison[0]]} times"


# -- SIGTERM ----------------------------------------------------------------------------------


GRACEFUL_TIMEOUT = 10  # gunicorn.conf.py


def test_sigterm_to_gunicorn_under_load_finishes_what_it_accepted(stack, web, logins, tmp_path):
    dying = Web(stack, tmp_path / "gunicorn.log")
    prefix = f"term-{uuid.uuid4().hex[:8]}"
    batches = [quiz_events(f"{prefix}-{n}", 400, students=10) for n in range(40)]
    outcomes: list[tuple[int, Outcome]] = []
    lock = threading.Lock()
    turn = iter(range(len(batches)))
    term_at = [float("inf")]

    def post() -> None:
        while time.monotonic() < term_at[0] + GRACEFUL_TIMEOUT:
            with lock:
                n = next(turn, None)
            if n is None:
                return
            body = {"events": batches[n]}
            outcome = call(dying, "events", "POST", "/api/v1/events", body, logins.lms)
            with lock:
                outcomes.append((n, outcome))
            if outcome.answer is None:
                return  # the server is gone

    posters = [threading.Thread(target=post, daemon=True) for _ in range(6)]
    for poster in posters:
        poster.start()
    wait_until(lambda: len(outcomes) >= 6, timeout=60, what="the load got going")
    term_at[0] = time.monotonic()
    dying.process.send_signal(signal.SIGTERM)
    code = dying.process.wait(timeout=GRACEFUL_TIMEOUT + 20)
    exited = time.monotonic() - term_at[0]
    for poster in posters:
        poster.join(timeout=30)

    assert code == 0, dying.log()[-3000:]
    assert exited < GRACEFUL_TIMEOUT + 5
    answered = [(n, o) for n, o in outcomes if o.answer is not None]
    assert server_errors([o for _, o in answered]) == []
    assert {o.answer.status for _, o in answered} == {200}
    drained = [o for _, o in answered if o.started < term_at[0] < o.ended]
    assert drained, "a request in flight at SIGTERM was answered"
    refused = [n for n, o in outcomes if o.answer is None]
    for n in refused:  # never read by the server, so nothing of it was applied
        assert inbox_ids(stack, f"{prefix}-{n}") == Counter(), f"batch {n} applied unanswered"
    for n in {*refused, *(n for n in range(len(batches)) if n not in dict(outcomes))}:
        again = web.call("POST", "/api/v1/events", {"events": batches[n]}, token=logins.lms)
        assert (again.status, again.body["accepted"]) == (200, 400)
    stored = inbox_ids(stack, prefix)
    assert len(stored) == 400 * len(batches)
    assert set(stored.values()) == {1}


def test_sigterm_to_the_worker_mid_job_finishes_the_job_and_exits(stack, web, logins, tmp_path):
    prefix = f"w{uuid.uuid4().hex[:6]}"
    ids = [f"{prefix}-{n:04d}" for n in range(3000)]
    for start in range(0, len(ids), 1000):
        events = [
            {**event, "student_id": ids[start + n], "event_id": f"{prefix}-ev-{start + n}"}
            for n, event in enumerate(quiz_events(prefix, 1000))
        ]
        posted = web.call("POST", "/api/v1/events", {"events": events}, token=logins.lms)
        assert posted.status == 200, posted
    job_body = {"student_ids": ids, "priority": "high"}
    submitted = web.call("POST", "/api/v1/batch/mastery", job_body, token=logins.admin)
    assert submitted.status == 202, submitted
    job_id = submitted.body["batch_id"]
    jobs = BatchJob._meta.db_table

    def job() -> tuple:
        return stack.sql(
            f"SELECT status, done, failed, attempts FROM {jobs} WHERE id = %s", job_id
        )[0]

    log = tmp_path / "worker.log"
    command = ["run_worker", "--interval", "0.1", "--no-reload", "--no-startup-delay"]
    worker = stack.spawn([sys.executable, "manage.py", *command], log, BATCH_JOB_CHUNK="100")
    try:
        wait_until(lambda: job()[1] >= 200, timeout=60, what="the job got going")
        worker.send_signal(signal.SIGTERM)
        asked = time.monotonic()
        running = job()
        code = worker.wait(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    took = time.monotonic() - asked

    assert running[0] == "running", "SIGTERM came mid-job"
    assert running[1] < len(ids)
    assert code == 0, log.read_text()[-3000:]
    assert job() == ("completed", len(ids), 0, 1), "the job finished in the same run"
    positions = stack.sql(
        f"SELECT position FROM {BatchJobItem._meta.db_table} WHERE job_id = %s ORDER BY 1", job_id
    )
    assert [p for (p,) in positions] == list(range(len(ids))), "each student once"
    assert took < 120
