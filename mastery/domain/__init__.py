"""Pure mastery rules: the scoring formula, levels and the per-pair facts (no Django)."""
