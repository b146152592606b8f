"""Load `.devservices/urls.env` (written by `mastery_project.devservices`) for dev and test.

Imported before `base` so that the URLs are in the environment when base reads them.
Variables already in the environment win, so external servers stay in charge.
`.devservices/ports.env` (the ports of a running `make run`) is not loaded: a process
started beside the stack, such as a test run, must not try to bind the stack's ports.
"""

import os
from pathlib import Path

import environ

ROOT = Path(__file__).resolve().parent.parent.parent
URLS_ENV = Path(os.environ.get("DEVSERVICES_DIR", ROOT / ".devservices")) / "urls.env"

if URLS_ENV.exists():
    environ.Env.read_env(URLS_ENV, overwrite=False)
