"""The scoring policy in force, built from settings (weights, windows, default size)."""

from functools import lru_cache

from django.conf import settings

from mastery.domain.formula import ScoringPolicy, Weights


@lru_cache(maxsize=4)
def _policy(weights: tuple[tuple[str, float], ...], default_total: int) -> ScoringPolicy:
    return ScoringPolicy(
        weights=Weights.from_mapping(dict(weights)), default_exercises_total=default_total
    )


def current_policy() -> ScoringPolicy:
    """Cached per distinct settings, so `override_settings` in tests takes effect."""
    return _policy(
        tuple(sorted(settings.MASTERY_WEIGHTS.items())),
        settings.MASTERY_DEFAULT_EXERCISES_TOTAL,
    )
