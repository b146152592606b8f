"""The API benchmark's settings: production's, with the bench's URLconf (which adds the
bare baseline view). Only `bench/api.py` starts gunicorn with these."""

from mastery_project.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
