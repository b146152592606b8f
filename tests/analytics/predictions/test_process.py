"""Predictions across processes, against the real broker, worker, PostgreSQL and Redis:
events consumed by `consume_events` change the prediction this process serves (the
consumer retires the cached one), and the worker scores served predictions whose day has
passed, which this process's `/metrics` then shows."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.db import connection

from analytics.models.predictions import PredictionRecord
from analytics.services.predictions import today_utc
from analytics.tasks.predictions import prediction_errors_score_task
from mastery.models import Student, User
from tests.analytics.predictions.support import LOOPS, declining, quizzes, seed
from tests.factories import TopicFactory, UserFactory
from tests.ingest.kafka.harness import (
    ROOT,
    RecordingProducer,
    database_url_named,
    event_bytes,
    event_key,
)

NEXT_WEEK = "/api/v1/predictions/next-week"


@pytest.fixture
def admin(transactional_db, pinned_clock) -> User:
    """s-p1's declining history, committed (the subprocesses read it), and an admin."""
    TopicFactory(slug=LOOPS)
    seed(declining("s-p1"))
    return UserFactory(username="process-admin", role=User.Role.ADMIN)


@pytest.mark.kafka
def test_events_through_kafka_change_the_prediction_served_here(
    admin, client_for, topics, group_id, consumer_env_for, consumer_processes
):
    client = client_for(admin)
    before = client.post(NEXT_WEEK, {"student_id": "s-p1"}, format="json").json()
    assert before["intervention_needed"] is True
    assert client.post(NEXT_WEEK, {"student_id": "s-p1"}, format="json").json() == before

    producer = RecordingProducer(topics.bootstrap, topics.events)
    for document in quizzes("s-p1", LOOPS, {0: 1.0, 1: 1.0}):
        producer.send(event_bytes(document), key=event_key(document))
    producer.flush()
    consumer = consumer_processes(consumer_env_for(group_id), "--max-messages", "2")
    assert consumer.wait(timeout=60) == 0, consumer.log()[-3000:]

    after = client.post(NEXT_WEEK, {"student_id": "s-p1"}, format="json").json()
    assert after["current_mastery"] > before["current_mastery"]
    assert after["predicted_mastery"] > before["predicted_mastery"]
    assert after["data_points"] == before["data_points"] + 1  # yesterday's quiz: a new day


def test_the_worker_scores_due_predictions_and_the_web_shows_the_histogram(admin, client):
    student = Student.objects.get(student_id="s-p1")
    today = today_utc()
    PredictionRecord.objects.create(
        student=student,
        topic=None,
        made_on=today - timedelta(days=9),
        target_day=today - timedelta(days=2),
        predicted=0.9,
        method="components",
    )
    prediction_errors_score_task.enqueue()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mastery_project.settings.test",
        "DATABASE_URL": database_url_named(connection.settings_dict["NAME"]),
    }
    worker = subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "--no-reload"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr[-3000:]
    record = PredictionRecord.objects.get()
    assert record.scored_at is not None
    assert record.abs_error == pytest.approx(abs(0.9 - record.actual), abs=1e-6)
    text = client.get("/metrics").content.decode()
    assert 'mastery_prediction_abs_error_count{method="components",scope="overall"} 1.0' in text
