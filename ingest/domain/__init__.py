"""Pure learning-event schema and validation (no Django)."""
