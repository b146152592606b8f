"""Signals of the mastery core, for the apps that build on it.

`students_changed` is sent after the commit that changed students' mastery state (new
events applied, records rescored), with `student_ids` (external ids). Caches of derived
data (analytics' predictions) drop their entries on it; it carries no business rule.
"""

import logging
from collections.abc import Iterable

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

students_changed = Signal()


def students_changed_on_commit(student_ids: Iterable[str], *, sender: object) -> None:
    """Send `students_changed` once the current transaction commits (at once outside one);
    nothing is sent if it rolls back, or for no students."""
    ids = frozenset(student_ids)
    if ids:
        transaction.on_commit(lambda: _send(sender, ids))


def _send(sender: object, student_ids: frozenset[str]) -> None:
    """A receiver that fails (a cache that is down) must not fail the committed write."""
    for receiver, result in students_changed.send_robust(sender=sender, student_ids=student_ids):
        if isinstance(result, Exception):
            logger.warning("students_changed receiver %r failed: %s", receiver, result)
