"""Reads a replica may serve, and the router that sends them there.

A read is replica-safe when it need not see what its own request or job wrote: the analytics
reads over the stored history (a student's history, the cohort comparison, the back-test,
the admin's charts) are. Such a call runs inside `replica_reads()` (a context manager and a
decorator). Inside it, and only when a `replica` database is configured
(`DATABASE_REPLICA_URL`), the ORM's reads go to the replica (`ReplicaRouter`) and raw SQL
takes `connections[read_alias()]`. Outside it everything is the primary's.

Two rules keep the replica away from reads that must see their own writes: a read made while
a transaction is open on the primary stays on the primary (the transaction may hold writes
of its own that no replica has), and every write goes to the primary, wherever its instance
was read from.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"

_replica_safe: ContextVar[bool] = ContextVar("replica_safe_reads", default=False)


@contextmanager
def replica_reads() -> Iterator[None]:
    """Mark the reads within as replica-safe (they need not see this request's writes)."""
    token = _replica_safe.set(True)
    try:
        yield
    finally:
        _replica_safe.reset(token)


def read_alias() -> str:
    """The database a read made now goes to: the replica inside `replica_reads()` when one
    is configured and no transaction is open on the primary, else the primary."""
    if (
        _replica_safe.get()
        and REPLICA in settings.DATABASES
        and not connections[DEFAULT_DB_ALIAS].in_atomic_block
    ):
        return REPLICA
    return DEFAULT_DB_ALIAS


class ReplicaRouter:
    """DATABASE_ROUTERS: reads by `read_alias()`, writes and migrations on the primary."""

    def db_for_read(self, model, **hints) -> str:
        return read_alias()

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        # The replica holds the primary's rows: an object read from either is the same row.
        if {obj1._state.db, obj2._state.db} <= {DEFAULT_DB_ALIAS, REPLICA}:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS
