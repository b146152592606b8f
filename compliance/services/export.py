"""The GDPR export: everything held about one student, as one streamed JSON document.

The document's layout (its sections, in order) is this module's, versioned; what fills
each section comes from the apps' privacy declarations, so a new kind of student data is
exported by declaring it, and a section nobody declares is empty.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.utils import timezone

from compliance.services.audit import audit_log_write
from mastery.models import Student, User
from mastery_project import privacy

EXPORT_FORMAT = "mastery-engine.student-export"
EXPORT_VERSION = 1
CHUNK_ROWS = 2000


@dataclass(frozen=True)
class _Section:
    """A section of the document: an array of the rows declared for it; if `one`, the
    first row (or null); if `within` is given, an object: the first row's fields, then
    `note`, then the sections within."""

    name: str
    one: bool = False
    note: str = ""
    within: tuple["_Section", ...] = ()


LAYOUT = (
    _Section("student", within=(_Section("login", one=True),)),
    _Section("cohorts"),
    _Section("consent_history"),
    _Section("events"),
    _Section(
        "derived",
        note="computed by the engine from the events above",
        within=tuple(
            _Section(name)
            for name in (
                "mastery_records",
                "snapshots",
                "predictions",
                "recommendations",
                "feedback",
            )
        ),
    ),
    _Section("audit"),
)


def _paths(sections: Iterable[_Section], prefix: str = "") -> Iterator[str]:
    for section in sections:
        yield prefix + section.name
        yield from _paths(section.within, f"{prefix}{section.name}.")


def exported_sections() -> dict[str, list[privacy.StudentData]]:
    """Section path -> the declarations exported to it; a declared section the layout does
    not place is an error, never data silently left out."""
    placed = {path: [] for path in _paths(LAYOUT)}
    for data in privacy.declarations():
        if data.export is None:
            continue
        if data.export.section not in placed:
            raise ImproperlyConfigured(
                f"{data.kind}: export section {data.export.section!r} is not in the document"
            )
        placed[data.export.section].append(data)
    return placed


def _dump(value) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


def _rows(data: privacy.StudentData, student: Student) -> Iterator[dict]:
    rows = data.export.values(data.rows_for(student)).iterator(chunk_size=CHUNK_ROWS)
    return map(data.export.shape, rows) if data.export.shape else rows


def _first_row(declared: list[privacy.StudentData], student: Student) -> dict | None:
    for data in declared:
        row = data.export.values(data.rows_for(student)).first()
        if row is not None:
            return data.export.shape(row) if data.export.shape else row
    return None


def _section(section: _Section, path: str, placed: dict, student: Student) -> Iterator[bytes]:
    """One section's JSON, in pieces."""
    if not (section.one or section.within):
        yield b"["
        rows = (row for data in placed[path] for row in _rows(data, student))
        for position, row in enumerate(rows):
            yield (b"," if position else b"") + _dump(row)
        yield b"]"
        return
    row = _first_row(placed[path], student)
    if not section.within:
        yield _dump(row)
        return
    fields = {**(row or {}), **({"note": section.note} if section.note else {})}
    yield _dump(fields)[:-1] if fields else b"{"
    for position, inner in enumerate(section.within):
        yield (b"," if fields or position else b"") + _dump(inner.name) + b":"
        yield from _section(inner, f"{path}.{inner.name}", placed, student)
    yield b"}"


def student_export_stream(
    *,
    student: Student,
    actor: User | None,
    request: HttpRequest | None = None,
    actor_label: str = "",
) -> Iterator[bytes]:
    """The export document, as JSON bytes in pieces: rows are read in chunks, so a
    student with 100k events does not need them all in memory. Audited once, up front."""
    placed = exported_sections()
    audit_log_write(
        request=request,
        actor=actor,
        actor_label=actor_label,
        action="gdpr.export",
        student_refs=[student.student_id],
        resource="export",
    )
    header = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "generated_at": timezone.now()}
    yield _dump(header)[:-1]  # an open object: the sections follow
    for section in LAYOUT:
        yield b"," + _dump(section.name) + b":"
        yield from _section(section, section.name, placed, student)
    yield b"}"
