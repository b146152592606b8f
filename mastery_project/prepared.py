"""Hot reads whose SQL is compiled once per process and shape, then run with new values.

Django compiles a queryset to SQL anew each time it is evaluated; for a read that runs on
every request (a student looked up under the visibility rule, with its records) that is
most of its Python time. `PreparedQuery(build)` calls `build` once per shape with
placeholder values, keeps the SQL and where each placeholder landed among its parameters,
and later runs the same SQL with the call's values in those places. The queryset is still
built by the ORM from the same selectors: only its compilation is reused.

A value must reach the SQL as one parameter, unchanged (an exact filter, a foreign key, a
primary key; not `icontains`, which rewrites it: `PreparedQuery` refuses a build that
rewrote a text placeholder). A value the query does not use is left out of it. A value
that is None changes the query (`IS NULL`, `.none()`), so it is part of the shape, as are
the `constants`.
"""

from collections.abc import Callable, Hashable
from typing import Any

from django.core.exceptions import EmptyResultSet, ImproperlyConfigured
from django.db.models import Model, QuerySet

# Two sets of placeholders, compiled both: the SQL and where each value landed must not
# depend on which (a value the ORM folded into the SQL, dropped, or rewritten would). Ints
# stay within a 32-bit column's range, so that no lookup treats one as out of range (which
# Django compiles to "matches nothing" or to no condition at all); PostgreSQL text cannot
# hold NUL, so no real value looks like a text placeholder.
_PLACEHOLDER_INTS = (2_000_000_000, 1_900_000_000)
_PLACEHOLDER_STR = "\x00placeholder-"


def _placeholder(value: object, index: int, variant: int) -> object:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ImproperlyConfigured(f"a prepared value must be an int or a str, not {value!r}")
    if isinstance(value, int):
        return _PLACEHOLDER_INTS[variant] - index
    return f"{_PLACEHOLDER_STR}{variant}-{index}"


class PreparedQuery:
    def __init__(self, build: Callable[..., QuerySet]):
        self.build = build
        self._compiled: dict[Hashable, tuple[type[Model], str, tuple, dict[int, str]] | None] = {}

    def first(self, constants: dict[str, Hashable], values: dict[str, Any]) -> Any:
        """The first row of `build(**constants, **values)` as a model instance with its
        annotations, or None."""
        given = {name: value for name, value in values.items() if value is not None}
        shape = (
            tuple(sorted(constants.items())),
            tuple(sorted((name, type(value)) for name, value in given.items())),
            tuple(sorted(name for name, value in values.items() if value is None)),
        )
        if shape not in self._compiled:
            self._compiled[shape] = self._compile(constants, values)
        compiled = self._compiled[shape]
        if compiled is None:  # the shape can match nothing (`.none()`)
            return None
        model, sql, params, slots = compiled
        bound = list(params)
        for position, name in slots.items():
            bound[position] = given[name]
        return next(iter(model._default_manager.raw(sql, bound)), None)

    def _compile(self, constants: dict, values: dict):
        compiled = [self._compile_with(constants, values, variant) for variant in (0, 1)]
        if compiled[0] is None or compiled[1] is None:
            if compiled[0] is not compiled[1]:
                raise ImproperlyConfigured("a prepared value decides whether the query is empty")
            return None
        (model, sql, params, slots), (_, other_sql, _, other_slots) = compiled
        if sql != other_sql or slots != other_slots:
            raise ImproperlyConfigured("a prepared value changed the SQL, not only its parameters")
        return model, sql, params, slots

    def _compile_with(self, constants: dict, values: dict, variant: int):
        placeholders = {
            name: None if value is None else _placeholder(value, index, variant)
            for index, (name, value) in enumerate(values.items())
        }
        queryset = self.build(**constants, **placeholders)[:1]
        try:
            sql, params = queryset.query.sql_with_params()
        except EmptyResultSet:
            return None
        names = {p: name for name, p in placeholders.items() if p is not None}
        slots = {}
        for position, param in enumerate(params):
            if type(param) in (int, str) and param in names:
                slots[position] = names[param]
            elif isinstance(param, str) and _PLACEHOLDER_STR in param:
                raise ImproperlyConfigured(f"a prepared value was rewritten in the SQL: {param!r}")
        return queryset.model, sql, tuple(params), slots
