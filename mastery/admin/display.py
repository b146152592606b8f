"""How the admin pages print a score and a level."""

from mastery.domain.formula import LEVELS, level_for


def score_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def overall_level(value: float | None) -> str | None:
    """Level of a mean of scores (a float sum may land a hair above 1)."""
    return None if value is None else level_for(min(1.0, value))


def level_bands() -> list[tuple[str, float, float | None]]:
    """(name, lower, upper or None) of each level, ascending (SPEC §2.1)."""
    uppers = [lower for lower, _ in LEVELS[1:]] + [None]
    return [(name, lower, upper) for (lower, name), upper in zip(LEVELS, uppers, strict=True)]
