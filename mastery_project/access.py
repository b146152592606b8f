"""Who may do what through the API: the role permission, and (below) the one lookup of a
student the caller may see, audited whether it is found or refused."""

from rest_framework.permissions import BasePermission

from mastery.models import User


def role_in(*roles: str) -> type[BasePermission]:
    """A permission class letting only the given roles act (others get 403)."""

    class RoleIn(BasePermission):
        message = f"This action needs one of the roles: {', '.join(roles)}."

        def has_permission(self, request, view) -> bool:
            user = request.user
            return bool(user and user.is_authenticated and user.role in roles)

    RoleIn.__name__ = f"RoleIn_{'_'.join(roles)}"
    return RoleIn


IsServiceOrAdmin = role_in(User.Role.SERVICE, User.Role.ADMIN)
IsTeacherOrAdmin = role_in(User.Role.TEACHER, User.Role.ADMIN)
