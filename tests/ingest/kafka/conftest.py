"""Fixtures of the Kafka process tests: fresh topics and group ids per test, the test
database URL for subprocesses, and consumer subprocesses that never outlive their test."""

import uuid

import pytest
from django.conf import settings
from django.db import connection

from tests.ingest.kafka.harness import (
    EVENT_PARTITIONS,
    ConsumerProcess,
    Topics,
    consumer_env,
    create_topics,
    database_url_named,
    delete_groups,
    delete_topics,
    unique_name,
)


@pytest.fixture
def topics():
    """A learning-events topic (3 partitions) and a DLQ (1 partition) of this test only."""
    created = Topics(
        bootstrap=settings.KAFKA_BOOTSTRAP_SERVERS,
        events=unique_name("events"),
        dlq=unique_name("dlq"),
    )
    create_topics(created.bootstrap, {created.events: EVENT_PARTITIONS, created.dlq: 1})
    yield created
    delete_topics(created.bootstrap, [created.events, created.dlq])


@pytest.fixture
def group_ids():
    """`group_ids()` hands out a fresh consumer group id; all are deleted afterwards."""
    handed_out = []

    def make() -> str:
        handed_out.append(f"test.group.{uuid.uuid4().hex}")
        return handed_out[-1]

    yield make
    delete_groups(settings.KAFKA_BOOTSTRAP_SERVERS, handed_out)


@pytest.fixture
def group_id(group_ids) -> str:
    return group_ids()


@pytest.fixture
def test_database_url(transactional_db) -> str:
    """The test database (committed data, so that subprocesses see it)."""
    return database_url_named(connection.settings_dict["NAME"])


@pytest.fixture
def consumer_processes(tmp_path, transactional_db):
    """`start(env, *args)` runs `consume_events`; whatever still runs is killed at the end,
    before the test database is flushed."""
    started: list[ConsumerProcess] = []

    def start(env: dict, *args: str) -> ConsumerProcess:
        log = tmp_path / f"consumer-{len(started)}.log"
        started.append(ConsumerProcess(env, log, tuple(args)).start())
        return started[-1]

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def consumer_env_for(test_database_url, topics):
    """`consumer_env_for(group_id)`: a subprocess environment on this test's topics and DB."""

    def make(group_id: str, database_url: str | None = None) -> dict:
        return consumer_env(
            database_url=database_url or test_database_url, topics=topics, group_id=group_id
        )

    return make
