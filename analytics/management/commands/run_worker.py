"""The background worker: django-tasks' database worker (`db_worker`, every option of
it), with the batch-job reaper running beside it (SPEC §3.4).

`db_worker` alone runs tasks but never notices a task whose worker was killed: its row
stays `RUNNING`. The reaper re-queues or fails such batch jobs every
BATCH_JOB_REAP_SECONDS, from the worker's start on, so that restarting a crashed worker
also recovers the job it was running.

It works on BATCH_TASKS_BACKEND: the one database backend with TASKS_BACKEND=db, where it
runs every task; with TASKS_BACKEND=rq, the batch jobs' own database backend, and the other
tasks go to RQ, whose worker runs beside it: `manage.py rqworker default --with-scheduler`.
"""

import logging
from argparse import ArgumentParser

from django.conf import settings
from django_tasks_db.management.commands.db_worker import Command as DatabaseWorkerCommand

from analytics.tasks.batch import BatchJobReaper

logger = logging.getLogger(__name__)


class Command(DatabaseWorkerCommand):
    help = "Run the database task worker, with the batch-job reaper beside it."

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.set_defaults(backend_name=settings.BATCH_TASKS_BACKEND)

    def handle(self, *args, **options) -> None:
        if settings.TASKS_BACKEND == "rq":
            logger.info(
                "batch jobs only: the other tasks are RQ's, run them with"
                " `manage.py rqworker default --with-scheduler`"
            )
        reaper = BatchJobReaper(interval=settings.BATCH_JOB_REAP_SECONDS)
        reaper.start()
        try:
            super().handle(*args, **options)
        finally:
            reaper.stop()
