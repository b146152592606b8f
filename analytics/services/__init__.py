"""Writes of analytics, one module per feature: keyword-only, transactional, `<entity>_<action>`."""
