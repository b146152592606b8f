"""The whole API fuzzed from its own OpenAPI schema (issue 16), with schemathesis.

Every operation of `/api/schema/`, as an admin, a teacher and a student, against the live
test server (a real HTTP server over the real PostgreSQL and Redis), through schemathesis'
examples, coverage and fuzzing phases, with all its checks: no server error; the status, the
content type, the headers and the body of every response are the ones the schema documents;
data the schema calls valid is not refused as invalid (but see SEMANTIC_REFUSALS), data it
calls invalid is refused; and methods the schema does not list answer 405.

Generated ids rarely name anything, so the run knows the school's ids (schemathesis'
dictionaries, bound in BINDINGS): in half of the positive cases a student, cohort, topic,
batch or recommendation id, a username, password or refresh token is a real one, and the
operations reach the answers behind their lookups. After each role's run, every operation
must have answered it a 2xx at least once, except what its role may never do
(NEVER_SUCCEEDS), which must never have.

The rate limit is lifted for the run, or most cases would be 429s (the 429 is documented,
and checked against a real one in tests/project/test_schema.py). Deterministic: a fixed
seed, derandomized, no example database, so CI runs the same cases every time.
"""

from collections import Counter
from datetime import timedelta

import pytest
import schemathesis
from django.test import override_settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis import GenerationMode

from analytics.services.batch import batch_job_submit
from analytics.services.recommendations import recommendations_current
from tests.factories import (
    PASSWORD,
    CohortFactory,
    StudentFactory,
    TopicFactory,
    event_document,
    ingest_all,
    iso,
    two_cohort_school,
)

ROLES = ("admin", "teacher", "student")
SEED = 16
MAX_EXAMPLES = 30
STUDENTS = ("s-a1", "s-a2", "s-b1")
TOPICS = ("python.basics", "python.loops")
# Many cohorts, so that a list of them drawn one id at a time is often of distinct ones.
EMPTY_COHORTS = tuple(f"cohort-{letter}" for letter in "defghijk")
COHORTS = ("cohort-a", "cohort-b", "cohort-c", *EMPTY_COHORTS)
ERASED = "s-a3"
COMPARE = "/api/v1/analytics/cohorts/compare/"

# schemathesis' default for data the schema calls valid, plus 422 where the operation refuses
# by a rule JSON Schema cannot state; each is written in the operation's description.
ACCEPTED_OR_REFUSED_BY_A_RULE = ["2xx", "401", "403", "404", "409", "422", "429"]
SEMANTIC_REFUSALS = (
    # start_date <= end_date, the range ends by today (UTC), at most 366 days long.
    "POST /api/v1/analytics/history/",
    # An event's ids are printable, its quiz score at most its max_score, its occurred_at
    # within the retention window and at most 5 minutes ahead.
    "POST /api/v1/events/",
    # It routes to the endpoints above, with their rules.
    "POST /api/v1/process/",
)

# What never succeeds for a role, whatever the input: its role is refused (403), or the one
# thing there is to read is not its own (404: the student is given the admin's batch job).
NEVER_SUCCEEDS = {
    "admin": set(),
    "teacher": {
        "POST /api/v1/events/",
        "DELETE /api/v1/compliance/student/{student_id}/",
        "GET /api/v1/compliance/student/{student_id}/export/",
        "PUT /api/v1/compliance/student/{student_id}/consent/",
    },
    "student": {
        "POST /api/v1/events/",
        "DELETE /api/v1/compliance/student/{student_id}/",
        "POST /api/v1/analytics/cohorts/compare/",
        "GET /api/v1/analytics/cohorts/list/",
        "POST /api/v1/batch/mastery/",
        "POST /api/v1/predictions/intervention/",
        "POST /api/v1/predictions/intervention/feedback/",
        "GET /api/v1/batch/status/{batch_id}/",
    },
}

# Where the school's ids go: "<location>.<name>", a body path with `[*]` for any list item.
BINDINGS = {
    "students": (
        "path.student_id",
        "body.student_id",
        "body.student_ids[*]",
        "body.data.student_id",
        "body.data.student_ids[*]",
        "body.events[*].student_id",
    ),
    "cohorts": (
        "path.cohort_id",
        "body.cohort_id",
        "body.cohort_ids[*]",
        "body.data.cohort_ids[*]",
    ),
    "topics": ("path.slug", "body.topic", "body.data.topic", "body.events[*].topic"),
    "moments": ("body.occurred_at", "body.events[*].occurred_at"),
    "usernames": ("body.username",),
    "passwords": ("body.password",),
    "refresh_tokens": ("body.refresh",),
    "recommendations": ("body.recommendation_id",),
    "batches": ("path.batch_id",),
}
# Bindings of one operation (by its name), as (dictionary, probability), over the ones above.
OPERATION_BINDINGS = {
    # Only the erasure names this student, so the other operations keep theirs.
    "DELETE /api/v1/compliance/student/{student_id}/": {"path.student_id": ("erased", 0.5)},
    # A comparison needs two or more distinct known cohorts; a list with half of its ids
    # known hardly ever is one.
    f"POST {COMPARE}": {"body.cohort_ids[*]": ("cohorts", 1.0)},
}

# The live server's requests run outside a transaction, so the analytics reads take the
# replica alias (a mirror of the test database in the test settings): both are allowed.
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])
schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(params=ROLES)
def role(request) -> str:
    return request.param


@pytest.fixture
def school(role) -> dict:
    """Cohort A (s-a1, s-a2, s-a3), cohort C (s-a2) and eight empty ones of one teacher,
    cohort B (s-b1) of another; the student login is s-a1's. Three weeks of quizzes,
    exercises and reviews on two topics, the second with the first as its prerequisite:
    records, histories, predictions and paths to answer with. s-a1's recommendations, and a
    batch job of the caller's (the admin's for a student, who may not submit one). Returns
    the dictionaries of known values, and the logins."""
    topics = [TopicFactory(slug=slug) for slug in TOPICS]
    topics[1].prerequisites.add(topics[0])
    students = {sid: StudentFactory(student_id=sid) for sid in (*STUDENTS, ERASED)}
    users, cohorts = two_cohort_school(students)
    cohorts["cohort-a"].students.add(students[ERASED])
    CohortFactory(cohort_id="cohort-c", students=[students["s-a2"]], teachers=[users["teacher"]])
    for cohort_id in EMPTY_COHORTS:
        CohortFactory(cohort_id=cohort_id, teachers=[users["teacher"]])
    now = timezone.now()
    ingest_all(
        event_document(
            kind, student_id=sid, topic=topic.slug, occurred_at=now - timedelta(days=day, hours=1)
        )
        for sid in students
        for topic in topics
        for day in range(0, 21, 3)
        for kind in ("quiz.submitted", "exercise.completed", "code.reviewed")
    )
    known = {
        "students": list(STUDENTS),
        "cohorts": list(COHORTS),
        "topics": list(TOPICS),
        "moments": [iso(now - timedelta(hours=hours)) for hours in (1, 30, 200)],
        "usernames": sorted(user.username for user in users.values()),
        "passwords": [PASSWORD],
        "refresh_tokens": [str(RefreshToken.for_user(users[role]))],
        "recommendations": [
            str(r.pk) for r in recommendations_current(student=students["s-a1"], now=now)
        ],
        "erased": [ERASED],
    }
    submitter = users["admin" if role == "student" else role]
    job = batch_job_submit(submitter=submitter, student_ids=list(STUDENTS), priority="normal")
    known["batches"] = [str(job.pk)]
    return {"known": known, "users": users}


def fuzz_config(school: dict, role: str) -> schemathesis.Config:
    token = RefreshToken.for_user(school["users"][role]).access_token
    refusals = {
        "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED_OR_REFUSED_BY_A_RULE}}
    }
    bindings = [
        {
            "include-name": label,
            "parameters": {
                key: {"dictionary": name, "probability": probability}
                for key, (name, probability) in keys.items()
            },
        }
        for label, keys in OPERATION_BINDINGS.items()
    ]
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "phases": {"stateful": {"enabled": False}},
            "dictionaries": {name: {"values": values} for name, values in school["known"].items()},
            "parameters": {
                key: {"dictionary": name, "probability": 0.5}
                for name, keys in BINDINGS.items()
                for key in keys
            },
            # One filter each: an operation's name is "METHOD path" (separate method and path
            # filters would match every operation with either).
            "operations": [
                *({"include-name": label, **refusals} for label in SEMANTIC_REFUSALS),
                *bindings,
            ],
        }
    )


@pytest.fixture
def api_schema(request, live_server, school, role):
    # schemathesis 4.32.5 reads the item's `_nodeid`, which pytest 9.2 no longer has (it
    # keeps `_id`); what it writes back there only names its subtests.
    request.node._nodeid = request.node.nodeid
    loaded = schemathesis.openapi.from_url(
        f"{live_server.url}/api/schema/", config=fuzz_config(school, role)
    )
    loaded.hook("filter_case")(names_each_id_once)
    with override_settings(RATE_LIMIT_MASTERY="100000/m"):
        yield loaded


def names_each_id_once(context, case) -> bool:
    """schemathesis' dictionaries draw each item of a list alone, so a positive case may
    name a known id twice, which the schema forbids (`uniqueItems`) and the views refuse
    (422): such a case is drawn again."""
    if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
        return True
    body = case.body if isinstance(case.body, dict) else {}
    for container in (body, body.get("data")):
        for key in ("cohort_ids", "student_ids"):
            ids = container.get(key) if isinstance(container, dict) else None
            if isinstance(ids, list) and len(set(map(str, ids))) < len(ids):
                return False
    return True


@pytest.fixture
def answers(api_schema, role):
    """The statuses each operation answered this role. Afterwards: every operation has
    answered it a 2xx (the known values lead somewhere), but those of NEVER_SUCCEEDS, which
    never have."""
    seen: dict[str, Counter] = {}
    yield seen
    operations = {result.ok().label for result in api_schema.get_all_operations()}
    succeeded = {label for label, codes in seen.items() if any(200 <= c < 300 for c in codes)}
    never = NEVER_SUCCEEDS[role]
    assert never <= operations
    assert succeeded & never == set(), {label: seen[label] for label in succeeded & never}
    missing = operations - never - succeeded
    assert not missing, {label: dict(seen.get(label, {})) for label in sorted(missing)}


@schema.parametrize()
def test_the_api_answers_as_its_schema_says(case, answers):
    response = case.call_and_validate()
    if case.method == case.operation.method.upper():  # not a method the schema does not list
        answers.setdefault(case.operation.label, Counter())[response.status_code] += 1
