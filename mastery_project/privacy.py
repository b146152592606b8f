"""What each app stores about a student, declared beside its models.

Every installed app may have a `privacy` module whose `STUDENT_DATA` lists one
`StudentData` per kind of row that names a student. `declarations()` collects them
through Django's app registry, so the compliance services (export, erasure, retention)
iterate them without importing the apps, and a new table is declared where it is defined
instead of remembered elsewhere. No domain rule lives here: only the shape of a
declaration and the defaults that need none.
"""

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model, Q, QuerySet
from django.utils.module_loading import module_has_submodule


@dataclass(frozen=True)
class Erasure:
    """The erasure in progress, as an erase function sees it: whose rows, and the name
    that replaces the student's id in a row that is kept."""

    student: Model
    pseudonym: str


def delete(rows: QuerySet, erasure: Erasure) -> int:
    """The default erasure: the student's rows go. Counts this model's rows only, so a
    cascade is not counted twice."""
    return rows.delete()[1].get(rows.model._meta.label, 0)


@dataclass(frozen=True)
class Export:
    """Where a kind goes in the export document, and what of it.

    `values(rows)` turns the student's rows into an ordered `.values()` queryset (the
    export streams it in chunks); `shape`, if given, rewrites each row (e.g. to rename a
    joined column). `section` is a path of the document, such as "events",
    "derived.snapshots" or "student.login"; the document's layout belongs to the export.
    """

    section: str
    values: Callable[[QuerySet], QuerySet]
    shape: Callable[[dict], dict] | None = None


@dataclass(frozen=True)
class StudentData:
    """One kind of row that names a student, and what export, erasure and retention do
    with it.

    - `student_field`: the column of `model` that names the student: a relation to
      `mastery.Student`, a column holding the external id, or what `rows` reads.
    - `rows(student)`: the student's rows, when a filter `student_field=student` cannot
      say it (an external id, a generic relation, an indirect reference).
    - `export`: where the rows go in the export; None keeps them out of it.
    - `erase(rows, erasure)`: deletes by default; a function that keeps the rows and
      pseudonymises them (reporting its count as `erased_as`) or does something else,
      returning how many rows it changed.
    - `retention_setting`, `retention_field`, `retention_filter`: rows whose
      `retention_field` is older than the setting's number of days, and match the
      filter, are purged.
    """

    kind: str
    model: type[Model]
    student_field: str
    rows: Callable[[Model], QuerySet] | None = None
    export: Export | None = None
    erase: Callable[[QuerySet, Erasure], int] = delete
    erased_as: str = ""
    retention_setting: str = ""
    retention_field: str = ""
    retention_filter: Q | None = None

    def __post_init__(self) -> None:
        if bool(self.retention_setting) != bool(self.retention_field):
            raise ImproperlyConfigured(
                f"{self.kind}: a retention window needs both its setting and its field"
            )

    @property
    def erasure_key(self) -> str:
        """The name of this kind's count in an erasure's result."""
        return self.erased_as or self.kind

    def rows_for(self, student: Model) -> QuerySet:
        """The rows of this kind that name `student` (the base manager: none hidden)."""
        if self.rows is not None:
            return self.rows(student)
        return self.model._base_manager.filter(**{self.student_field: student})


def declarations() -> tuple[StudentData, ...]:
    """Every installed app's declarations: apps in INSTALLED_APPS order, each app's in the
    order it lists them (a kind after the kinds its rows rely on). Erasure goes through
    them backwards, so a row is erased while the rows it relies on still exist."""
    found: list[StudentData] = []
    for config in apps.get_app_configs():
        if module_has_submodule(config.module, "privacy"):
            module = import_module(f"{config.module.__name__}.privacy")
            found.extend(getattr(module, "STUDENT_DATA", ()))
    for name, keys in (
        ("kind", [d.kind for d in found]),
        ("erasure count", [d.erasure_key for d in found]),
    ):
        if repeated := sorted({k for k in keys if keys.count(k) > 1}):
            raise ImproperlyConfigured(f"student data declared twice ({name}): {repeated}")
    return tuple(found)
