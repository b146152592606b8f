"""Bulk writes through binary COPY: rows go into a session temp table, then one INSERT ...
SELECT (which keeps `ON CONFLICT` semantics).

Measured: COPY is about four times cheaper than binding 5,000-element arrays to `unnest`
(8 vs 28 µs a row for mastery records), and binary COPY about four times cheaper again in
Python, and half the server's time, than text COPY: no number, date or timestamp is
formatted here and parsed there.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg.types.json import set_json_dumps


def _as_given(text: str) -> str:
    return text


def copy_to_temp(cursor, table: str, definition: str, rows: Iterable[Sequence]) -> None:
    """Fill the temp table `table` (created once per connection, emptied at commit and
    before each use, since one transaction may fill it more than once).

    `definition` lists `name type` pairs in type names psycopg knows (int4, int8, float8,
    varchar, date, timestamptz, jsonb...); a jsonb value is given as its JSON text."""
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({definition});TRUNCATE {table}")
    columns = [part.split() for part in definition.split(",")]
    psycopg_cursor: Any = getattr(cursor, "cursor", cursor)  # under Django's wrapper
    set_json_dumps(_as_given, context=psycopg_cursor)  # this cursor's adapters only
    names = ", ".join(name for name, _ in columns)
    with psycopg_cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([kind for _, kind in columns])
        for row in rows:
            copy.write_row(row)
