"""Background work of analytics (django-tasks, run by `run_worker`: `db_worker` with the
batch-job reaper beside it), one module per feature."""
