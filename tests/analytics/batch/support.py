"""What the batch job tests share: the school, its events, and running a queued job."""

from dataclasses import dataclass

from analytics.models.batch import BatchJob
from analytics.services.batch import batch_job_run
from mastery.models import Student, User
from tests.factories import event_document

# Weights other than the defaults: a batch job brings records to them.
NEW_WEIGHTS = {"completion": 0.1, "quiz": 0.6, "quality": 0.2, "consistency": 0.1}


@dataclass
class School:
    students: dict[str, Student]
    users: dict[str, User]


def learning_events(student_id: str, topic: str, *, score: int) -> list[dict]:
    """A completed exercise and a quiz (`score` of 10): a record with two components."""
    return [
        event_document("exercise.completed", student_id=student_id, topic=topic),
        event_document("quiz.submitted", student_id=student_id, topic=topic, score=score),
    ]


def run_job(job: BatchJob) -> BatchJob:
    """Run the job's queued task in this process, as the worker would, and reload it."""
    batch_job_run(batch_id=str(job.pk), task_id=str(job.task_id))
    job.refresh_from_db()
    return job
