"""The background worker: django-tasks' database worker (`db_worker`, every option of
it), with the batch-job reaper running beside it (SPEC §3.4).

`db_worker` alone runs tasks but never notices a task whose worker was killed: its row
stays `RUNNING`. The reaper re-queues or fails such batch jobs every
BATCH_JOB_REAP_SECONDS, from the worker's start on, so that restarting a crashed worker
also recovers the job it was running.
"""

from django.conf import settings
from django_tasks_db.management.commands.db_worker import Command as DatabaseWorkerCommand

from analytics.tasks.batch import BatchJobReaper


class Command(DatabaseWorkerCommand):
    help = "Run the database task worker, with the batch-job reaper beside it."

    def handle(self, *args, **options) -> None:
        reaper = BatchJobReaper(interval=settings.BATCH_JOB_REAP_SECONDS)
        reaper.start()
        try:
            super().handle(*args, **options)
        finally:
            reaper.stop()
