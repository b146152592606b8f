"""A school day against the Mastery Engine, for locust (`make load` runs it headless).

Three kinds of people, each a locust user with a login of its own (from the file that
`manage.py load_accounts` writes, named by $LOAD_ACCOUNTS), so that the per-user rate limit
(RATE_LIMIT_MASTERY, 50 a minute) applies as it would in a school:

- `Student` (24 of every 25 people): reads its own mastery, predictions, recommendations,
  learning path and history, and now and then says whether a recommendation helped.
- `Teacher` (1 in 25, a class of about 25): browses its cohorts' students, opens a
  student's mastery and history, lists and compares its cohorts, asks who needs help.
- `Lms` (2, whatever the user count): the LMS's service account posting batches of
  learning events to `/api/v1/events` as its students work.

The Kafka producer beside it is `manage.py produce_events --rate`, which `tests/load/run.py`
runs at a steady rate for the same time.

People act at human pace: a student thinks 5-20 s between two actions, a teacher 5-15 s.
No action spends the rate limit more than twice, so no one can reach 50 in a minute
(`tests/load/test_locustfile.py` proves the bound from these figures and the views' own
rate-limit markers): a 429 is therefore a failure, like any status an action does not expect.

Request names are the OpenAPI operations (`POST /mastery/query`), so the statistics group
by endpoint whatever the ids. Run by hand against a running stack with
`PYTHONPATH=. LOAD_ACCOUNTS=accounts.json .venv/bin/locust -f tests/load/locustfile.py
--host http://127.0.0.1:8000`.
"""

import os
import random
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from locust import FastHttpUser, between, task

from ingest.synthetic import synthetic_events

API = "/api/v1"
# Access tokens live 15 minutes (JWT_ACCESS_MINUTES); a user renews its own after 10.
TOKEN_RENEW_SECONDS = 600
AUTH_NAMES = frozenset({"POST /auth/token", "POST /auth/token/refresh"})

Check = Callable[[Any], str | None]  # a failure message for an unexpected body, or None

_pools: dict[str, Any] = {}


def accounts() -> dict[str, Any]:
    """The load accounts, read once per process from $LOAD_ACCOUNTS."""
    if not _pools:
        path = os.environ.get("LOAD_ACCOUNTS")
        if not path:
            raise RuntimeError("LOAD_ACCOUNTS must name the file `manage.py load_accounts` wrote")
        document = orjson.loads(Path(path).read_bytes())
        _pools.update(document)
        _pools["free"] = {kind: deque(document[kind]) for kind in ("students", "teachers")}
    return _pools


def take(kind: str) -> dict[str, Any]:
    """A login no other user of this run holds: two users sharing one would also share its
    rate limit."""
    free = accounts()["free"][kind]
    if not free:
        raise RuntimeError(f"no {kind} login left: create more with load_accounts")
    return free.popleft()


class BodyHas:
    """A body that is an object with these keys (`keys` is read by the locustfile's test,
    which holds them to the OpenAPI response schema)."""

    def __init__(self, *keys: str) -> None:
        self.keys = keys

    def __call__(self, document: Any) -> str | None:
        missing = [k for k in self.keys if not isinstance(document, dict) or k not in document]
        return f"body lacks {', '.join(missing)}" if missing else None


def has(*keys: str) -> BodyHas:
    return BodyHas(*keys)


def is_list(document: Any) -> str | None:
    return None if isinstance(document, list) else "body is not a list"


class ApiUser(FastHttpUser):
    """A person with a bearer token, calling the API and checking what comes back."""

    abstract = True
    network_timeout = 30.0  # gunicorn's own worker timeout
    connection_timeout = 10.0

    access = ""
    token_at = 0.0

    def renew(self) -> None:
        raise NotImplementedError

    def call(
        self,
        method: str,
        path: str,
        *,
        name: str,
        body: Any = None,
        ok: tuple[int, ...] = (200,),
        check: Check | None = None,
    ) -> Any:
        """One request under `name`; its JSON body when the status is one of `ok` and
        `check` finds nothing wrong, else None, reported as a failure with the status and
        the error envelope's code."""
        if name not in AUTH_NAMES and time.monotonic() - self.token_at > TOKEN_RENEW_SECONDS:
            self.renew()
        headers = {"Authorization": f"Bearer {self.access}"} if self.access else {}
        with self.client.request(
            method, f"{API}{path}", name=name, json=body, headers=headers, catch_response=True
        ) as response:
            try:
                document = orjson.loads(response.content or b"")
            except orjson.JSONDecodeError:
                document = None
            if response.status_code not in ok:
                error = document.get("error") if isinstance(document, dict) else None
                code = error.get("code") if isinstance(error, dict) else "no error envelope"
                response.failure(f"{response.status_code} {code}")
                return None
            problem = "body is not JSON" if document is None else check and check(document)
            if problem:
                response.failure(f"{response.status_code} {problem}")
                return None
            response.success()
            return document

    def tokens(self, document: Any) -> None:
        if document is not None:
            self.access, self.token_at = document["access"], time.monotonic()
            self.refresh = document["refresh"]

    def login(self, username: str) -> None:
        self.access = ""
        credentials = {"username": username, "password": accounts()["password"]}
        self.tokens(
            self.call(
                "POST", "/auth/token", name="POST /auth/token", body=credentials,
                check=has("access", "refresh"),
            )
        )  # fmt: skip


class Student(ApiUser):
    """Opens the app between lessons and reads about itself.

    Weights: the landing page is its mastery overview (6) and a topic's detail (3); what to
    do next, the recommendations (4), comes right after; the week's prediction (3) is
    looked at less often, the learning path (2) and the 30-day history (1) rarely, and
    feedback on a recommendation (1) is the rare click.
    """

    weight = 24
    think_seconds = (5.0, 20.0)
    wait_time = between(*think_seconds)

    def on_start(self) -> None:
        account = take("students")
        self.student_id = account["student_id"]
        self.refresh = account["refresh"]
        self.recommendation_ids: list[str] = []
        self.renew()

    def renew(self) -> None:
        """A signed-in app resuming: the refresh token it holds for a new access token."""
        self.access = ""
        self.tokens(
            self.call(
                "POST", "/auth/token/refresh", name="POST /auth/token/refresh",
                body={"refresh": self.refresh}, check=has("access", "refresh"),
            )
        )  # fmt: skip

    @task(6)
    def my_mastery(self) -> None:
        self.call(
            "POST", "/mastery/query", name="POST /mastery/query",
            body={"student_id": self.student_id}, check=has("overall_mastery", "topics"),
        )  # fmt: skip

    @task(3)
    def topic_mastery(self) -> None:
        topic = random.choice(accounts()["topics"])
        self.call(
            "POST", "/mastery/query", name="POST /mastery/query",
            body={"student_id": self.student_id, "topic": topic}, check=has("topics"),
        )  # fmt: skip

    @task(4)
    def recommendations(self) -> None:
        found = self.call(
            "POST", "/recommendations/adaptive", name="POST /recommendations/adaptive",
            body={"student_id": self.student_id}, check=is_list,
        )  # fmt: skip
        if found:
            self.recommendation_ids = [r["id"] for r in found]

    @task(3)
    def next_week(self) -> None:
        self.call(
            "POST", "/predictions/next-week", name="POST /predictions/next-week",
            body={"student_id": self.student_id}, check=has("predicted_mastery", "confidence"),
        )  # fmt: skip

    @task(2)
    def learning_path(self) -> None:
        self.call(
            "POST", "/recommendations/learning-path", name="POST /recommendations/learning-path",
            body={"student_id": self.student_id}, check=has("steps"),
        )  # fmt: skip

    @task(1)
    def history(self) -> None:
        self.call(
            "GET", f"/analytics/history/{self.student_id}",
            name="GET /analytics/history/{student_id}", check=has("series", "summary"),
        )  # fmt: skip

    @task(1)
    def recommendation_feedback(self) -> None:
        """On a recommendation it was shown; one it has not seen yet first, if none."""
        if not self.recommendation_ids:
            self.recommendations()
            return
        self.call(
            "POST", "/recommendations/feedback", name="POST /recommendations/feedback",
            body={
                "recommendation_id": random.choice(self.recommendation_ids),
                "helpful": random.random() < 0.7,
                "completed": random.random() < 0.3,
            },
            ok=(200, 201), check=has("recommendation_id", "helpful"),
        )  # fmt: skip


class Teacher(ApiUser):
    """Between classes, looks at its two cohorts.

    Weights: the class list (4) and a student's mastery from it (4) are the daily routine;
    a student's history (2), the cohort list with means (2) and the comparison of its two
    cohorts (2) are the weekly review; who needs an intervention (1) and the plain cohort
    list (1) now and then.
    """

    weight = 1
    think_seconds = (5.0, 15.0)
    wait_time = between(*think_seconds)

    def on_start(self) -> None:
        account = take("teachers")
        self.username = account["username"]
        self.cohorts: list[str] = account["cohorts"]
        self.students: list[str] = account["students"]
        self.renew()

    def renew(self) -> None:
        self.login(self.username)

    @task(4)
    def cohort_students(self) -> None:
        cohort = random.choice(self.cohorts)
        self.call("GET", f"/students?cohort={cohort}", name="GET /students", check=has("results"))

    @task(4)
    def student_mastery(self) -> None:
        self.call(
            "POST", "/mastery/query", name="POST /mastery/query",
            body={"student_id": random.choice(self.students)}, check=has("topics"),
        )  # fmt: skip

    @task(2)
    def student_history(self) -> None:
        self.call(
            "GET", f"/analytics/history/{random.choice(self.students)}",
            name="GET /analytics/history/{student_id}", check=has("series"),
        )  # fmt: skip

    @task(2)
    def cohort_means(self) -> None:
        self.call(
            "GET", "/analytics/cohorts/list", name="GET /analytics/cohorts/list",
            check=has("results"),
        )  # fmt: skip

    @task(2)
    def compare(self) -> None:
        self.call(
            "POST", "/analytics/cohorts/compare", name="POST /analytics/cohorts/compare",
            body={"cohort_ids": self.cohorts}, check=has("cohorts", "pairs"),
        )  # fmt: skip

    @task(1)
    def intervention(self) -> None:
        self.call(
            "POST", "/predictions/intervention", name="POST /predictions/intervention",
            body={"cohort_id": random.choice(self.cohorts)}, check=has("students"),
        )  # fmt: skip

    @task(1)
    def cohorts_page(self) -> None:
        self.call("GET", "/cohorts", name="GET /cohorts", check=has("results"))


class Lms(ApiUser):
    """The LMS flushing what its students just did: 10-50 events every 2-5 s, each batch a
    handful of students' last ten minutes, from the project's synthetic generator."""

    fixed_count = 2
    think_seconds = (2.0, 5.0)
    wait_time = between(*think_seconds)
    batch_sizes = (10, 50)
    students_per_batch = 8

    def on_start(self) -> None:
        self.rng = random.Random()
        self.student_ids = [s["student_id"] for s in accounts()["students"]]
        self.renew()

    def renew(self) -> None:
        self.login(accounts()["service"])

    @task
    def post_events(self) -> None:
        now = datetime.now(UTC)
        count = self.rng.randint(*self.batch_sizes)
        events = list(
            synthetic_events(
                student_ids=self.rng.sample(
                    self.student_ids, min(self.students_per_batch, len(self.student_ids))
                ),
                topics=accounts()["topics"],
                start=now - timedelta(minutes=10),
                end=now - timedelta(seconds=1),
                count=count,
                rng=self.rng,
            )
        )

        def all_taken(summary: Any) -> str | None:
            if not isinstance(summary, dict):
                return "body is not an ingest summary"
            if summary.get("rejected"):
                return f"rejected: {summary['rejected'][:3]}"
            taken = summary.get("accepted", 0) + summary.get("duplicates", 0)
            return None if taken == count else f"{taken} of {count} events taken"

        self.call("POST", "/events", name="POST /events", body={"events": events}, check=all_taken)
