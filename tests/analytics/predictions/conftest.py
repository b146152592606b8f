"""A small school for the prediction tests: two cohorts, one login per role, and histories
ingested through the real pipeline on a pinned clock (noon UTC yesterday, see
tests/conftest.py), so that days ago and today's UTC date agree at any hour of a run."""

from dataclasses import dataclass

import pytest
from django.test import Client

from mastery.models import Cohort, Student, User
from tests.analytics.predictions.support import BASICS, LOOPS, declining, rising, seed
from tests.factories import TopicFactory, two_cohort_school
from tests.ingest.kafka.conftest import (  # noqa: F401  (the process tests' Kafka fixtures)
    consumer_env_for,
    consumer_processes,
    group_id,
    group_ids,
    test_database_url,
    topics,
)


@dataclass
class School:
    students: dict[str, Student]
    cohorts: dict[str, Cohort]
    users: dict[str, User]


@pytest.fixture
def school(db, pinned_clock) -> School:
    """Cohort A: s-a1 (declining in loops: flagged) and s-a2 (rising), taught by `teacher`;
    cohort B: s-b1 (declining), taught by `other_teacher`. The `student` login is s-a1."""
    TopicFactory(slug=LOOPS)
    TopicFactory(slug=BASICS)
    seed(declining("s-a1") + rising("s-a2") + declining("s-b1"))
    students = {s.student_id: s for s in Student.objects.all()}
    users, cohorts = two_cohort_school(students)
    return School(students=students, cohorts=cohorts, users=users)


@pytest.fixture
def admin_client_for():
    """`admin_client_for(user)`: a test client with the user's admin-site session."""

    def make(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make
