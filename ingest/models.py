from django.contrib.postgres.indexes import BrinIndex
from django.db import models

from mastery.models import Student, Topic


class InboxEvent(models.Model):
    """The inbox: every accepted event, once. `event_id` is unique forever (xAPI semantics).

    Named apart from the domain's `ingest.domain.events.LearningEvent` (a parsed, valid
    event); the table keeps its first name.
    """

    class Source(models.TextChoices):
        KAFKA = "kafka", "Kafka"
        HTTP = "http", "HTTP"

    event_id = models.CharField(max_length=100, primary_key=True)
    event_type = models.CharField(max_length=32)
    # No index of its own: `event_pair_time` leads with it (migration 0004).
    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="events")
    occurred_at = models.DateTimeField()
    payload = models.JSONField()
    # sha256 of the canonical event: same id + same hash = duplicate, else conflict.
    content_hash = models.CharField(max_length=64)
    source = models.CharField(max_length=8, choices=Source.choices)
    received_at = models.DateTimeField()

    class Meta:
        db_table = "ingest_learningevent"
        verbose_name = "learning event"
        indexes = [
            models.Index(fields=["student", "topic", "occurred_at"], name="event_pair_time"),
            # Events arrive roughly in time order: a BRIN index serves the retention purge
            # at a fraction of a B-tree's write cost.
            BrinIndex(fields=["occurred_at"], name="event_occurred_at_brin"),
        ]

    def __str__(self) -> str:
        return self.event_id
