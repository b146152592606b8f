"""How an erased student is named afterwards: by a keyed hash of its id."""

import hashlib
import hmac
import re
from urllib.parse import quote_plus

from django.conf import settings

ERASED_PREFIX = "erased:"
# Advisory lock key: erasure takes it exclusively; ingestion and every audit write share it,
# so that none of them commits a row naming a student between its check of the ledger and
# an erasure's commit.
ERASURE_LOCK = 0x6D61_7374_6572_7901


def student_hash(student_id: str) -> str:
    """Keyed hash of an external student id: stable, not reversible without the key."""
    key = settings.ERASURE_HASH_KEY.encode()
    return hmac.new(key, student_id.encode(), hashlib.sha256).hexdigest()


def resource_rewrites(student_id: str, pseudonym: str) -> list[tuple[str, str]]:
    """(pattern, replacement) pairs, in PostgreSQL's and Python's common regex syntax, that
    replace the student's id in an audited resource: where a path names the student
    (/students/<id>, /compliance/student/<id>/…, /analytics/history/<id>; a short id such as
    "v1" must not mangle "/api/v1/…"),
    and where a query value is the id (an admin search, ?q=<id>, audited re-encoded as
    `QueryDict.urlencode` writes it; older rows as sent)."""
    spellings = sorted({student_id, quote_plus(student_id)})
    return [
        (rf"(/(?:students?|history)/){re.escape(student_id)}(/|$)", rf"\1{pseudonym}\2"),
        (
            rf"([?&][^=&#]*=)(?:{'|'.join(re.escape(s) for s in spellings)})(?=[&#]|$)",
            rf"\1{pseudonym}",
        ),
    ]
