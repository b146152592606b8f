"""Background work of analytics (django-tasks, run by `db_worker`), one module per feature."""
