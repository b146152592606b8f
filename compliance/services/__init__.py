"""Privacy and audit, one module per job: audit, consent, export, erasure, retention.

Each function is the one path for its job: the API, the admin and the commands call
these, so an export is the same document and an erasure the same transaction wherever it
is started.
"""
