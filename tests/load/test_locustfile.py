"""The load test cannot rot silently: every task of every user class of the locustfile runs
once on a recording client (`probe.py`, in a process of its own), and what it sent is held
to the API as it is now: the URLconf resolves each path with its method, each request is
named after its OpenAPI operation, each body matches the operation's request schema, the
keys each task checks are in the documented answer, and no user can spend the per-user rate
limit within a minute. No stack, no database."""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import orjson
import pytest
from django.conf import settings
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
API = "/api/v1"
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SAMPLE_ACCOUNTS = {
    "password": "load-password",
    "service": "load-lms",
    "topics": ["python.basics", "python.loops"],
    "cohorts": ["load-01", "load-02"],
    "students": [
        {"username": "load-s-001", "student_id": "s-001", "cohort": "load-01", "refresh": "r1"},
        {"username": "load-s-002", "student_id": "s-002", "cohort": "load-02", "refresh": "r2"},
    ],
    "teachers": [
        {"username": "load-teacher-001", "cohorts": ["load-01", "load-02"],
         "students": ["s-001", "s-002"]},
    ],
}  # fmt: skip


def run_probe(accounts: Path) -> dict:
    result = subprocess.run(
        [sys.executable, str(HERE / "probe.py")],
        env={**os.environ, "LOAD_ACCOUNTS": str(accounts), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return orjson.loads(result.stdout)


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> dict:
    accounts = tmp_path_factory.mktemp("load") / "accounts.json"
    accounts.write_bytes(orjson.dumps(SAMPLE_ACCOUNTS))
    return run_probe(accounts)


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def every_call(probe: dict):
    for user, figures in probe.items():
        for phase, calls in figures["phases"].items():
            for call in calls:
                yield user, phase, call


def path_of(call: dict) -> str:
    return call["url"].split("?")[0]


def operation(schema: dict, call: dict) -> tuple[str, dict]:
    """The OpenAPI path template the call's path matches, and the call's operation."""
    found = []
    for template in schema["paths"]:
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template.rstrip("/")))
        if re.fullmatch(f"{pattern}/?", path_of(call)):
            found.append(template)
    assert len(found) == 1, (call["url"], found)
    operations = schema["paths"][found[0]]
    assert call["method"].lower() in operations, (call["method"], found[0])
    return found[0], operations[call["method"].lower()]


def dereferenced(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def view_handler(call: dict):
    """The view method that answers the call (a viewset's action, or an APIView's method)."""
    match = resolve(path_of(call))
    actions = getattr(match.func, "actions", None)
    method = call["method"].lower()
    if actions is not None:
        assert method in actions, (call["url"], actions)
        return getattr(match.func.cls, actions[method])
    assert method in match.func.cls.http_method_names, call["url"]
    return getattr(match.func.cls, method)


def test_the_school_day_has_students_teachers_and_the_lms(probe):
    assert set(probe) == {"Student", "Teacher", "Lms"}
    assert probe["Student"]["weight"] > 10 * probe["Teacher"]["weight"]
    assert probe["Lms"]["fixed_count"] >= 1
    for user, figures in probe.items():
        assert figures["task_weights"], user
        assert all(weight >= 1 for weight in figures["task_weights"].values()), user
        for phase, calls in figures["phases"].items():
            assert calls, f"{user}.{phase} sends nothing"


def test_every_call_is_accepted_on_an_answer_it_expects_and_carries_a_token(probe):
    for user, phase, call in every_call(probe):
        assert call["outcome"] == "success", (user, phase, call["name"], call["outcome"])
        if not call["url"].startswith(f"{API}/auth/"):
            assert call["authorized"], (user, phase, call["name"])


def test_every_path_resolves_to_a_view_that_takes_its_method(probe):
    for _user, _phase, call in every_call(probe):
        assert callable(view_handler(call)), call["url"]


def test_request_names_are_the_openapi_operations(probe, schema):
    for _user, _phase, call in every_call(probe):
        template, _operation = operation(schema, call)
        assert call["name"] == f"{call['method']} {template.removeprefix(API).rstrip('/')}"


def test_request_bodies_match_the_operations_request_schemas(probe, schema):
    for _user, phase, call in every_call(probe):
        template, op = operation(schema, call)
        if call["body"] is None:
            assert "requestBody" not in op or not op["requestBody"].get("required"), template
            continue
        body_schema = op["requestBody"]["content"]["application/json"]["schema"]
        root = {"allOf": [body_schema], "components": schema["components"]}
        try:
            jsonschema.Draft7Validator(root).validate(call["body"])
        except jsonschema.ValidationError as exc:
            pytest.fail(f"{phase}: {call['name']} sends a body its schema refuses: {exc.message}")


def test_the_keys_a_task_checks_are_in_the_documented_answer(probe, schema):
    checked = 0
    for _user, _phase, call in every_call(probe):
        _template, op = operation(schema, call)
        for status in call["ok"]:
            answer = op["responses"][str(status)]["content"]["application/json"]["schema"]
            answer = dereferenced(schema, answer)
            if call["check"] == "list":
                assert answer["type"] == "array", call["name"]
            elif isinstance(call["check"], list):
                assert set(call["check"]) <= set(answer["properties"]), (call["name"], status)
            checked += 1
    assert checked > 10


def test_no_user_can_spend_the_rate_limit_within_a_window(probe):
    """A user starts at most ⌊window / shortest think⌋ + 1 tasks in one fixed window, each
    spending the budget at most as often as its costliest task: at most the limit, so a 429
    is a bug, not the script's pace."""
    count, per = settings.RATE_LIMIT_MASTERY.split("/")
    window = PERIODS[per[-1]] * int(per[:-1] or 1)
    spenders = set()
    for user, figures in probe.items():
        think_min, think_max = figures["think_seconds"]
        assert think_min <= figures["wait"][0] <= figures["wait"][1] <= think_max, user
        spent = {
            phase: [c["name"] for c in calls if hasattr(view_handler(c), "rate_limit_group")]
            for phase, calls in figures["phases"].items()
        }
        spenders.update(name for names in spent.values() for name in names)
        per_task = max(len(names) for phase, names in spent.items() if phase != "on_start")
        tasks_in_window = math.floor(window / think_min) + 1
        worst = len(spent["on_start"]) + tasks_in_window * per_task
        assert worst <= int(count), (user, worst, settings.RATE_LIMIT_MASTERY)
    assert {"POST /mastery/query", "POST /predictions/next-week"} <= spenders


def test_locust_itself_loads_the_file_and_finds_the_three_users():
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("locust")),
            "-f",
            str(HERE / "locustfile.py"),
            "--list",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) >= {"Student", "Teacher", "Lms"}
