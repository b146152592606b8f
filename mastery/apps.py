from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class MasteryConfig(AppConfig):
    name = "mastery"
    verbose_name = "Mastery"

    def ready(self) -> None:
        """A bad MASTERY_WEIGHTS or default size stops every process at start-up, not the
        first request or batch (which would dead-letter every event)."""
        from mastery.policy import current_policy

        try:
            current_policy()
        except ValueError as exc:
            raise ImproperlyConfigured(f"MASTERY_WEIGHTS / MASTERY_DEFAULT_*: {exc}") from exc
