import io

import pytest
from django.core.management import CommandError, call_command

from mastery.models import User

pytestmark = pytest.mark.django_db


def run(*args, stdin: str = "") -> str:
    out = io.StringIO()
    import sys

    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command("create_account", *args, stdout=out)
    finally:
        sys.stdin = old
    return out.getvalue()


@pytest.mark.parametrize(
    ("role", "staff", "superuser"),
    [
        ("student", False, False),
        ("teacher", True, False),
        ("admin", True, True),
        ("service", False, False),
    ],
)
def test_role_decides_admin_site_access(role, staff, superuser):
    run("alice", "--role", role)
    user = User.objects.get(username="alice")
    assert (user.role, user.is_staff, user.is_superuser) == (role, staff, superuser)
    assert not user.has_usable_password()


def test_password_is_read_from_stdin_and_validated():
    run("bob", "--role", "service", "--password-stdin", stdin="a-long-enough-passphrase\n")
    assert User.objects.get(username="bob").check_password("a-long-enough-passphrase")
    with pytest.raises(CommandError, match="too short"):
        run("bob", "--role", "service", "--password-stdin", stdin="short\n")


def test_running_again_updates_the_role():
    run("carol", "--role", "teacher")
    out = run("carol", "--role", "admin")
    assert "updated carol" in out
    assert User.objects.get(username="carol").is_superuser


def test_an_unknown_role_is_refused():
    with pytest.raises(CommandError):
        run("dave", "--role", "janitor")
