"""The admin site for teachers and admins (issue 6), one module per kind of page.

A teacher views students, mastery records, cohorts and topics, and only those of its own
cohorts; an admin manages topics, cohorts and accounts. The role rules, the audited reads
and the shared filters are `mastery_project.admin_access`; other apps add their own pages
(events, the audit log) and actions (GDPR, from compliance) without importing this package.
"""

from mastery.admin import accounts, cohorts, students, topics

__all__ = ["accounts", "cohorts", "students", "topics"]
