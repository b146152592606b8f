"""The consumer's database adapter: the real pipeline, and a connection a failure may have
left unusable is closed so the next batch opens a fresh one."""

import orjson
import pytest
from django.db import OperationalError, connection

from ingest import consumer
from tests.factories import event_document

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_applies_a_batch_through_the_pipeline():
    result = consumer.pipeline_ingest([orjson.dumps(event_document())], source="kafka")
    assert result.accepted == 1


def test_a_failure_closes_the_connection_and_is_raised(monkeypatch):
    connection.ensure_connection()

    def down(values, *, source):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(consumer, "ingest_batch", down)
    with pytest.raises(OperationalError):
        consumer.pipeline_ingest([b"{}"], source="kafka")
    assert connection.connection is None
