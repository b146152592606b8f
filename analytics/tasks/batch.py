"""The batch job as a django-tasks task, and the reaper that runs beside the worker.

The task row carries only the job's id; everything else is in `analytics.models.batch`.
"""

import logging
import threading

from django.db import close_old_connections, connection
from django_tasks import TaskContext, task

logger = logging.getLogger(__name__)


@task(takes_context=True)
def batch_mastery_run(context: TaskContext, batch_id: str) -> dict:
    """Run (or resume) the job. Returns its counts; the job's own row holds its outcome."""
    # The service enqueues this task, so it is imported here, when the task runs.
    from analytics.services.batch import batch_job_run

    return batch_job_run(batch_id=batch_id, task_id=context.task_result.id)


class BatchJobReaper(threading.Thread):
    """Runs `batch_jobs_reap` every `interval` seconds, from the worker's start on, so that
    a job whose worker died is re-queued (or failed) while any worker is up.

    A daemon thread with its own database connection: it dies with the worker process,
    and several reapers (one per worker) are safe, as each job is reaped under its lock.
    """

    def __init__(self, *, interval: float):
        super().__init__(name="batch-job-reaper", daemon=True)
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        from analytics.services.batch import batch_jobs_reap

        while True:
            close_old_connections()
            try:
                reaped = batch_jobs_reap()
            except Exception:
                # A database restart must not end the reaper: it tries again next round.
                logger.exception("batch job reaper round failed")
            else:
                if reaped.requeued or reaped.failed:
                    logger.warning(
                        "batch jobs whose worker died: %d re-queued, %d failed",
                        reaped.requeued,
                        reaped.failed,
                    )
            finally:
                connection.close()
            if self.stopping.wait(self.interval):
                return

    def stop(self) -> None:
        self.stopping.set()
