"""`/metrics` (SPEC §3): the web's own counters, and the figures other processes keep.

The web's counters are those of all its gunicorn workers together (prometheus_client's
multiprocess mode, see gunicorn.conf.py), or of this process outside gunicorn. Figures that
another process produces (the worker scores predictions) are kept in the database and
exposed here by collectors that apps register with `database_collector`, read once per
scrape: every web process then shows the same values, and they survive restarts. The
consumer serves its own counters on its metrics port.
"""

import os
from collections.abc import Iterable
from typing import Protocol

from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric


class Collector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


_DATABASE_COLLECTORS: list[Collector] = []


def database_collector(collector: Collector) -> Collector:
    """Adds a collector of database-kept figures to `/metrics`; it must not raise when the
    database is down (the web's own counters are still served). One of each class."""
    if not any(type(known) is type(collector) for known in _DATABASE_COLLECTORS):
        _DATABASE_COLLECTORS.append(collector)
    return collector


def _own_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def metrics(request: HttpRequest) -> HttpResponse:
    stored = CollectorRegistry(auto_describe=False)
    for collector in _DATABASE_COLLECTORS:
        stored.register(collector)
    body = generate_latest(_own_registry()) + generate_latest(stored)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
