"""Analytics in the admin, one module per feature, imported here for registration. Pages of
other apps (the student and cohort pages) get analytics' sections through
`mastery_project.admin_access`."""

from analytics.admin import batch, cohorts, predictions, recommendations  # noqa: F401
