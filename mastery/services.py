"""Writes of the mastery app. Keyword-only, transactional, named `<entity>_<action>`."""

from django.db import transaction

from mastery.models import User

_ROLE_FLAGS = {
    User.Role.STUDENT: (False, False),
    User.Role.TEACHER: (True, False),
    User.Role.ADMIN: (True, True),
    User.Role.SERVICE: (False, False),
}


@transaction.atomic
def account_create_or_update(
    *, username: str, role: str, password: str | None = None
) -> tuple[User, bool]:
    """Create the login or update its role; admin-site access follows the role."""
    user, created = User.objects.get_or_create(username=username, defaults={"role": role})
    user.role = role
    user.is_staff, user.is_superuser = _ROLE_FLAGS[User.Role(role)]
    if password is not None:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user, created
