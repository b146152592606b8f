"""Test settings: the same real PostgreSQL, Redis and Kafka as production, fast hashing."""

import copy
import os
import tempfile
from pathlib import Path

from . import devservices_env  # noqa: F401  (must run before base reads the URLs)
from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGH"
SIMPLE_JWT["SIGNING_KEY"] = "test-jwt-signing-key-0123456789-abcdefghijklmnopqrstuv"  # noqa: F405
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES["default"]["KEY_PREFIX"] = env("CACHE_KEY_PREFIX", default="mastery-test")  # noqa: F405
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
LOG_FORMAT = "json"
# Static files come from the apps through WhiteNoise's finders; no collectstatic needed.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Lets several test runs share one server (e.g. two checkouts) without dropping each other's DB.
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default=None)}  # noqa: F405
# The replica alias is always there, a mirror of the test database (Django's TEST MIRROR):
# the analytics reads take the router's replica path in every test that allows it.
DATABASES["replica"] = {  # noqa: F405
    **copy.deepcopy(DATABASES["default"]),  # noqa: F405
    "TEST": {"MIRROR": "default"},
}
# Reads are audited in the request, so that a test sees the entry when the answer comes back;
# the buffered writer has tests of its own (tests/compliance/test_read_audit_buffer.py).
AUDIT_READ_FLUSH_MS = 0
ERASURE_HASH_KEY = "test-erasure-hash-key-0123456789-abcdefghijkl"
ERASURE_LEDGER_FILE = Path(tempfile.gettempdir()) / f"mastery-test-ledger-{os.getpid()}.jsonl"
