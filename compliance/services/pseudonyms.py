"""How an erased student is named afterwards: by a keyed hash of its id."""

import hashlib
import hmac

from django.conf import settings

ERASED_PREFIX = "erased:"


def student_hash(student_id: str) -> str:
    """Keyed hash of an external student id: stable, not reversible without the key."""
    key = settings.ERASURE_HASH_KEY.encode()
    return hmac.new(key, student_id.encode(), hashlib.sha256).hexdigest()
