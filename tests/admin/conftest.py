import pytest
from django.test import Client

from mastery.models import User
from tests.admin.support import School, build_school


@pytest.fixture
def school(db, pinned_clock) -> School:
    """The school, its events dated from a pinned clock: the student page's history ends
    on the clock's day, so "days ago" and the chart's days agree at any hour of a run."""
    return build_school()


@pytest.fixture
def admin_client_for():
    """`admin_client_for(user)`: a test client with the user's admin-site session."""

    def make(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make
