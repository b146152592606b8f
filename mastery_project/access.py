"""Who may do what through the API: the role permission, and (below) the one lookup of a
student the caller may see, audited whether it is found or refused."""

from collections.abc import Callable, Sequence

from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework.permissions import BasePermission

from mastery.models import Student, User
from mastery.selectors import students_visible_to
from mastery_project.audit import audit_sink
from mastery_project.errors import NotFound
from mastery_project.prepared import PreparedQuery


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


def student_read(
    request: HttpRequest,
    *,
    action: str,
    student_id: str | None = None,
    pk: object = None,
    queryset: QuerySet[Student] | None = None,
    audit_found: bool = True,
    with_data: Callable[..., QuerySet[Student]] | None = None,
    **data_args: str | int | None,
) -> Student:
    """The student this caller may see, by external id (the API) or primary key (the admin).

    Every API view and `/process` intent that names a student reads it through here, and so
    does the admin's student page (the record and event pages are the admin's own change
    views over querysets built on the same visibility rule). A student
    that does not exist and one the caller may not see are alike `NotFound` (404, never
    403: existence is not revealed). The attempt is audited either way: a refusal as
    `not_found`, naming the student asked for (by its hash when it was erased); a success
    unless `audit_found` is False (when the service handed over to audits it itself).
    `queryset`, when given, must be built on `students_visible_to(request.user)`.

    Without a `queryset`, a student named by id is read in one round trip whose SQL is
    compiled once per process and shape (`visible_student`); `with_data(students,
    **data_args)`, when given, annotates the visible students with what the caller reads
    of them (`mastery.selectors.student_with_mastery`), in the same query.
    """
    if student_id is not None and queryset is None:
        student = visible_student(request.user, student_id, with_data, data_args)
    elif student_id is not None:
        student = queryset.filter(student_id=student_id).first()
    else:
        students = queryset if queryset is not None else students_visible_to(request.user)
        key = _pk_of(pk)
        student = students.filter(pk=key).first() if key is not None else None
    if student is None:
        audit_sink().read(
            request=request,
            action=action,
            student_refs=[_asked_for(student_id, pk)],
            resource=request.path,
            outcome="not_found",
        )
        raise NotFound("No such student.", code="student_not_found")
    if audit_found:
        audit_sink().read(
            request=request, action=action, student_refs=[student.student_id], resource=request.path
        )
    return student


_prepared: dict[Callable | None, PreparedQuery] = {}


def visible_student(
    user: User,
    student_id: str,
    with_data: Callable[..., QuerySet[Student]] | None = None,
    data_args: dict | None = None,
) -> Student | None:
    """`students_visible_to(user)` (annotated by `with_data`) filtered to `student_id`:
    the same rows the querysets give, in SQL compiled once per role and shape."""
    prepared = _prepared.get(with_data)
    if prepared is None:

        def build(*, role, viewer_pk, viewer_student, student_id, **args):
            viewer = User(pk=viewer_pk, role=role, student_id=viewer_student)
            students = students_visible_to(viewer).filter(student_id=student_id)
            return with_data(students, **args) if with_data else students

        prepared = _prepared[with_data] = PreparedQuery(build)
    return prepared.first(
        {"role": user.role},
        {
            "viewer_pk": user.pk,
            "viewer_student": user.student_id,
            "student_id": student_id,
            **(data_args or {}),
        },
    )


def _pk_of(value: object) -> int | None:
    """A primary key as an int, or None for anything a bigint column cannot hold."""
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if number < 2**63 else None


def _asked_for(student_id: str | None, pk: object) -> str:
    """How a refused read names the student it aimed at (in the audit log only, never shown):
    its id, or by hash an erased one's; for a primary key, the id of that row if any."""
    if student_id is not None:
        return audit_sink().ref_for_missing(student_id)
    key = _pk_of(pk)
    if key is None:
        return ""
    return Student.objects.filter(pk=key).values_list("student_id", flat=True).first() or ""


def students_read_audit(
    request: HttpRequest, *, action: str, student_refs: Sequence[str], resource: str = ""
) -> None:
    """Audit one read that showed several students (a list page): one row each, one INSERT.
    Nothing is written when the page showed none."""
    if student_refs:
        audit_sink().read(
            request=request,
            action=action,
            student_refs=student_refs,
            resource=resource or request.path,
        )


def aggregate_read_audit(request: HttpRequest, *, action: str, resource: str = "") -> None:
    """Audit a read that showed figures over many students but no one student's own (a
    cohort comparison): one entry that names no student; `resource` says what was read."""
    audit_sink().read(
        request=request, action=action, student_refs=[""], resource=resource or request.path
    )


def students_audit(
    *,
    actor: User | None,
    action: str,
    student_refs: Sequence[str],
    refused_ids: Sequence[str] = (),
    resource: str,
) -> None:
    """Audit work done for `actor` away from any request (a batch job in the worker): one
    row per student it read or changed, and a `not_found` row per id it was refused,
    named as `student_read` names a refusal (an erased student by its hash)."""
    if student_refs:
        audit_sink().write(
            request=None, actor=actor, action=action, student_refs=student_refs, resource=resource
        )
    if refused_ids:
        audit_sink().write(
            request=None,
            actor=actor,
            action=action,
            student_refs=[audit_sink().ref_for_missing(s) for s in refused_ids],
            resource=resource,
            outcome="not_found",
        )
