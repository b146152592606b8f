"""Reads of analytics, one module per feature. Visibility comes from `mastery.selectors`."""
