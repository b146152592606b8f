"""Mastery Engine: per-student, per-topic mastery tracking."""

__version__ = "0.1.0"
