"""Runs every user class of the locustfile once, on a recording client, and prints as JSON
what each `on_start` and each task sent: `test_locustfile.py` runs it in a process of its
own, because importing locust monkey-patches the interpreter (gevent) for good.

    LOAD_ACCOUNTS=accounts.json PYTHONPATH=. python tests/load/probe.py

Each answer is the smallest one the call accepts: the keys its check names, a one-item list
of recommendations, an ingest summary taking every event; its status is the first one the
call expects.
"""

import inspect
import sys
from pathlib import Path

import orjson
from locust import User
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).parent))
import locustfile

RECOMMENDATION_ID = "00000000-0000-4000-8000-000000000001"
WAIT_SAMPLES = 500


class Answer:
    """What `client.request(..., catch_response=True)` gives: a context manager with the
    status, the body, and `success()` / `failure()`."""

    def __init__(self, status: int, body: object, record: dict) -> None:
        self.status_code = status
        self.content = orjson.dumps(body)
        self.record = record

    def __enter__(self) -> "Answer":
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def success(self) -> None:
        self.record["outcome"] = "success"

    def failure(self, message: str) -> None:
        self.record["outcome"] = f"failure: {message}"


class RecordingClient:
    def __init__(self, calls: list[dict]) -> None:
        self.calls = calls
        self.expect: dict = {}

    def request(self, method, url, *, name, json=None, headers=None, catch_response=False):
        record = {"method": method, "url": url, "name": name, "body": json, **self.expect}
        record["authorized"] = bool(headers and headers.get("Authorization"))
        self.calls.append(record)
        check = self.expect.get("check")
        if isinstance(check, list):
            body = dict.fromkeys(check, "x")
        elif check == "list":
            body = [{"id": RECOMMENDATION_ID}]
        else:  # the LMS's batch: every event accepted
            body = {"accepted": len(json["events"]), "duplicates": 0, "rejected": []}
        return Answer(self.expect["ok"][0], body, record)


def probe_user(cls: type[User], environment: Environment) -> dict:
    calls: list[dict] = []
    client = RecordingClient(calls)
    user = cls(environment)
    user.client = client
    call = user.call

    def recording_call(method, path, *, name, body=None, ok=(200,), check=None):
        kind = check.keys if isinstance(check, locustfile.BodyHas) else check
        client.expect = {
            "ok": list(ok),
            "check": list(kind) if isinstance(kind, tuple) else
            "list" if kind is locustfile.is_list else "custom",
        }  # fmt: skip
        return call(method, path, name=name, body=body, ok=ok, check=check)

    user.call = recording_call
    phases = {}
    user.on_start()
    phases["on_start"] = calls[:]
    tasks = {t.__name__: t for t in cls.tasks}
    for task_name, function in tasks.items():
        calls.clear()
        function(user)
        phases[task_name] = calls[:]
    return {
        "weight": getattr(cls, "weight", None),
        "fixed_count": getattr(cls, "fixed_count", 0),
        "think_seconds": list(cls.think_seconds),
        "wait": [min(w := [user.wait_time() for _ in range(WAIT_SAMPLES)]), max(w)],
        "task_weights": {name: cls.tasks.count(function) for name, function in tasks.items()},
        "phases": phases,
    }


def main() -> None:
    classes = [
        cls
        for _, cls in inspect.getmembers(locustfile, inspect.isclass)
        if issubclass(cls, User) and not cls.abstract and cls.__module__ == locustfile.__name__
    ]
    for cls in classes:
        cls.host = "http://127.0.0.1:9"  # what --host sets; nothing is sent there
    environment = Environment(user_classes=classes)
    report = {cls.__name__: probe_user(cls, environment) for cls in classes}
    sys.stdout.buffer.write(orjson.dumps(report))


if __name__ == "__main__":
    main()
