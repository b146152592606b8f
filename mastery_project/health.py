"""Service endpoints: index, liveness, readiness. No authentication, no sessions."""

import time
from concurrent.futures import ThreadPoolExecutor, wait

import psycopg
import redis
from confluent_kafka.admin import AdminClient
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

import mastery_project

READY_TIMEOUT = 2.0  # seconds for all checks together; /ready answers well within 3 s


def check_postgres() -> None:
    params = connection.get_connection_params()
    params["connect_timeout"] = 2
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as conn:
        conn.execute("SET statement_timeout = 1500")
        conn.execute("SELECT 1")


def check_redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=1.5, socket_connect_timeout=1.5
    )
    try:
        client.ping()
    finally:
        client.close()


def check_kafka() -> None:
    admin = AdminClient(
        {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "socket.timeout.ms": 1500}
    )
    admin.list_topics(timeout=1.5)


CHECKS = {"postgres": check_postgres, "redis": check_redis, "kafka": check_kafka}
# Shared across requests; a hung check occupies a thread only until its own timeout.
_executor = ThreadPoolExecutor(max_workers=6, thread_name_prefix="ready")


@require_safe
def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "name": "Mastery Engine",
            "version": mastery_project.__version__,
            "links": {
                "health": "/health",
                "ready": "/ready",
                "metrics": "/metrics",
                "api": "/api/v1/",
                "schema": "/api/schema/",
                "docs": "/api/docs/",
                "admin": "/admin/",
            },
        }
    )


@require_safe
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_safe
def ready(request: HttpRequest) -> JsonResponse:
    started = time.monotonic()
    futures = {name: _executor.submit(check) for name, check in CHECKS.items()}
    wait(futures.values(), timeout=READY_TIMEOUT)
    checks = {}
    for name, future in futures.items():
        if not future.done():
            checks[name] = {"ok": False, "error": "timed out"}
        elif future.exception() is not None:
            error = str(future.exception()).strip().splitlines()
            checks[name] = {"ok": False, "error": error[0] if error else "unreachable"}
        else:
            checks[name] = {"ok": True}
    failed = sorted(name for name, c in checks.items() if not c["ok"])
    body = {
        "status": "unavailable" if failed else "ready",
        "checks": checks,
        "failed": failed,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
    return JsonResponse(body, status=503 if failed else 200)
