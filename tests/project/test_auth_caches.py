"""The per-process caches of `mastery_project.authentication` through the real API: a
verified token (`token_cache`, until it expires) and the user it names (`user_cache`, for
AUTH_USER_CACHE_SECONDS). A user saved or deleted through the ORM is seen at once; one
changed where no signal reaches this process (a bulk update, as another process's would be)
within the documented window; an expired or badly signed token is refused whatever was
cached."""

import time
from contextlib import contextmanager
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.db import connection
from django.db.models.signals import post_delete, post_save
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from compliance.models import AuditLog
from mastery.models import User
from mastery_project import authentication
from mastery_project.authentication import token_cache, user_cache
from tests.factories import StudentFactory, two_cohort_school

pytestmark = pytest.mark.django_db

QUERY = "/api/v1/mastery/query"


@pytest.fixture
def school():
    students = {sid: StudentFactory(student_id=sid) for sid in ("s-a1", "s-a2", "s-b1")}
    users, cohorts = two_cohort_school(students)
    return users, cohorts


def bearer(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def query(client: APIClient, student_id: str = "s-a1") -> int:
    return client.post(QUERY, {"student_id": student_id}, format="json").status_code


def refused(client: APIClient) -> str:
    response = client.post(QUERY, {"student_id": "s-a1"}, format="json")
    assert response.status_code == 401, response.content
    return response.json()["error"]["code"]


def move_clock(monkeypatch, seconds: float) -> None:
    """`user_cache` reads its clock `seconds` ahead of the real one from now on."""
    monkeypatch.setattr(user_cache, "clock", lambda: time.monotonic() + seconds)


def test_a_user_deactivated_with_save_is_refused_at_once(school, client_for):
    user = school[0]["teacher"]
    client = client_for(user)
    assert query(client) == 200
    assert user_cache.get(user.pk) is not None  # served from the cache from here on
    user.is_active = False
    user.save()
    assert refused(client) == "authentication_failed"


def test_a_deleted_user_is_refused_at_once(school, client_for):
    user = school[0]["admin"]
    client = client_for(user)
    assert query(client) == 200
    assert user_cache.get(user.pk) is not None
    user.delete()
    assert refused(client) == "authentication_failed"


def test_a_bulk_deactivation_is_seen_once_the_window_has_passed(school, client_for, monkeypatch):
    """No signal reaches the cache (as when another process deactivates the user): the user
    is still served within AUTH_USER_CACHE_SECONDS, and refused once they have passed."""
    window = settings.AUTH_USER_CACHE_SECONDS
    user = school[0]["admin"]
    client = client_for(user)
    assert query(client) == 200
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert query(client) == 200
    move_clock(monkeypatch, window - 1)
    assert query(client) == 200
    move_clock(monkeypatch, window + 1)
    assert refused(client) == "authentication_failed"


@contextmanager
def signals_do_not_reach_this_process():
    """The user cache's receivers disconnected: a save or delete here is then as one done
    by another process, whose signals never reach this process's cache."""
    receivers = {"user-cache": post_save, "user-cache-del": post_delete}
    for uid, signal in receivers.items():
        assert signal.disconnect(sender=User, dispatch_uid=uid)
    try:
        yield
    finally:
        for uid, signal in receivers.items():
            signal.connect(authentication._forget_user, sender=User, dispatch_uid=uid)


def test_a_deletion_in_another_process_is_refused_once_the_window_has_passed(
    school, client_for, monkeypatch
):
    user = school[0]["service"]
    client = client_for(user)
    assert query(client) == 200
    with signals_do_not_reach_this_process():
        User.objects.get(pk=user.pk).delete()
    assert not User.objects.filter(pk=user.pk).exists()
    assert user_cache.get(user.pk) is not None  # this process still holds the user
    move_clock(monkeypatch, settings.AUTH_USER_CACHE_SECONDS + 1)
    assert refused(client) == "authentication_failed"


@pytest.mark.django_db(transaction=True)
def test_a_read_within_the_window_by_a_user_deleted_elsewhere_is_audited_or_refused(
    school, client_for
):
    """Within the window the read may be served (the documented window) or refused, but
    never a 500, and a served read is audited."""
    user = school[0]["service"]
    client = client_for(user)
    assert query(client) == 200
    with signals_do_not_reach_this_process():
        User.objects.get(pk=user.pk).delete()
    response = client.post(QUERY, {"student_id": "s-a1"}, format="json")
    assert response.status_code in (200, 401), response.content
    if response.status_code == 200:
        audited = AuditLog.objects.filter(
            action="mastery.query", correlation_id=response["X-Request-ID"]
        )
        assert audited.values_list("actor_username", "student_ref").get() == ("lms", "s-a1")


@pytest.mark.django_db(transaction=True)
def test_a_change_within_the_window_by_a_user_deleted_elsewhere_is_refused_not_a_500(
    school, client_for
):
    """A change writes a row that links its author: with the author gone, the write fails
    its foreign key, and the answer is 401 (the user no longer exists), not a 500. The
    process then forgets the user, so the next call is refused by authentication."""
    user = school[0]["student"]  # s-a1's own login; consent changes record who made them
    client = client_for(user)
    consent = "/api/v1/compliance/student/s-a1/consent"
    assert client.put(consent, {"analytics": False}, format="json").status_code == 200
    with signals_do_not_reach_this_process():
        User.objects.get(pk=user.pk).delete()
    assert user_cache.get(user.pk) is not None
    refused = client.put(consent, {"analytics": True}, format="json")
    assert refused.status_code == 401, refused.content
    assert refused.json()["error"]["code"] == "authentication_failed"
    assert user_cache.get(user.pk) is None


def test_a_role_change_by_save_is_seen_at_once(school, client_for):
    users, cohorts = school
    user = users["student"]  # s-a1's login
    client = client_for(user)
    assert (query(client, "s-a1"), query(client, "s-a2")) == (200, 404)
    user.role = User.Role.TEACHER
    user.save()
    cohorts["cohort-a"].teachers.add(user)
    assert (query(client, "s-a1"), query(client, "s-a2"), query(client, "s-b1")) == (200, 200, 404)


def test_a_role_change_by_bulk_update_is_seen_once_the_window_has_passed(
    school, client_for, monkeypatch
):
    users, _ = school
    user = users["student"]
    client = client_for(user)
    assert query(client, "s-b1") == 404
    User.objects.filter(pk=user.pk).update(role=User.Role.ADMIN)
    assert query(client, "s-b1") == 404  # the cached student, within the window
    move_clock(monkeypatch, settings.AUTH_USER_CACHE_SECONDS + 1)
    assert query(client, "s-b1") == 200


def test_a_cached_user_is_not_read_again_within_the_window(school, client_for):
    client = client_for(school[0]["admin"])
    assert query(client) == 200
    with CaptureQueriesContext(connection) as captured:
        assert query(client) == 200
    assert any('FROM "mastery_student"' in q["sql"] for q in captured)  # the read itself
    assert not any('FROM "mastery_user"' in q["sql"] for q in captured)


def test_an_expired_token_is_refused_even_after_it_was_cached(school):
    user = school[0]["admin"]
    access = RefreshToken.for_user(user).access_token
    # exp is whole seconds: this one lapses between 1 and 2 seconds from now.
    access.set_exp(lifetime=timedelta(seconds=2))
    raw = str(access)
    client = bearer(raw)
    assert query(client) == 200
    assert token_cache.get(raw.encode()) is not None
    time.sleep(max(0.0, access["exp"] - time.time()) + 0.2)
    assert refused(client) == "authentication_failed"


def test_a_token_with_a_bad_signature_is_never_cached(school):
    user = school[0]["admin"]
    claims = dict(RefreshToken.for_user(user).access_token.payload)
    forged = jwt.encode(claims, "not-the-signing-key-" + "x" * 32, algorithm="HS256")
    client = bearer(forged)
    assert refused(client) == "authentication_failed"
    assert token_cache.get(forged.encode()) is None
    assert refused(client) == "authentication_failed"
    assert token_cache.get(forged.encode()) is None
    # The same claims correctly signed are served, and cached.
    genuine = jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    assert query(bearer(genuine)) == 200
    assert token_cache.get(genuine.encode()) is not None
