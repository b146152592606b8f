"""Thousands of shuffled events, duplicates and conflicts through HTTP end in the right state.

The expectation is computed independently: which items are accepted (the first of each
`event_id` in arrival order), each topic's effective size, and SPEC §2.1 over each pair's
accepted events with `reference_mastery`. Set `INGEST_TEST_SEED` to replay a run.
"""

import json
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone as django_timezone

from ingest.models import InboxEvent
from ingest.pipeline import ingest_batch
from mastery.domain.facts import PairEvent, reference_mastery
from mastery.domain.formula import COMPONENTS
from mastery.policy import current_policy
from tests.factories import UserFactory, iso

pytestmark = pytest.mark.django_db

EVENTS = 4000
STUDENTS = 60
TOPICS = 8
DAYS = 30
DUPLICATE_SHARE = 0.10
CONFLICT_SHARE = 0.03
INVALID_SHARE = 0.01
TOLERANCE = 1e-4


def _seed() -> int:
    chosen = os.environ.get("INGEST_TEST_SEED")
    return int(chosen) if chosen else random.SystemRandom().randrange(2**32)


def _canonical(document) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def _utc(document: dict) -> datetime:
    return datetime.fromisoformat(document["occurred_at"]).astimezone(UTC)


@dataclass
class Generator:
    """Events of a school month: ties in time, odd offsets, sizes reported now and then."""

    rng: random.Random
    now: datetime
    moments: list[datetime] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.students = [
            self.rng.choice(["s-", "S.", "learner:", "x@"]) + f"{i:03d}" for i in range(STUDENTS)
        ]
        self.topics = [f"topic-{i}.{self.rng.choice('abc')}" for i in range(TOPICS)]

    def moment(self) -> datetime:
        if self.moments and self.rng.random() < 0.08:
            return self.rng.choice(self.moments)  # a tie: ordered by event_id
        seconds = self.rng.uniform(60, DAYS * 86400)
        moment = (self.now - timedelta(seconds=seconds)).replace(microsecond=0)
        self.moments.append(moment)
        return moment

    def render(self, moment: datetime) -> str:
        if self.rng.random() < 0.2:
            offset = timezone(timedelta(minutes=15 * self.rng.randint(-48, 56)))
            return moment.astimezone(offset).isoformat()
        return iso(moment)

    def payload(self, event_type: str) -> dict:
        rng = self.rng
        if event_type == "exercise.completed":
            payload = {"exercise_id": f"ex-{rng.randint(1, 16)}"}
            if rng.random() < 0.15:
                payload["exercises_total"] = rng.randint(4, 20)
            return payload
        if event_type == "quiz.submitted":
            max_score = rng.choice([5, 10, 20, 7.5])
            score = rng.choice(
                [rng.randint(0, int(max_score)), round(rng.uniform(0, max_score), 2)]
            )
            return {"quiz_id": f"q-{rng.randint(1, 30)}", "score": score, "max_score": max_score}
        if event_type == "code.reviewed":
            return {"submission_id": f"sub-{rng.getrandbits(40):x}", "quality_score": rng.random()}
        return {"duration_minutes": rng.randint(0, 120)}

    def event(self) -> dict:
        event_type = self.rng.choices(
            ["exercise.completed", "quiz.submitted", "code.reviewed", "session.completed"],
            [0.4, 0.3, 0.2, 0.1],
        )[0]
        document = {
            "event_id": self.rng.choice(["E", "e", "a", "Z", "0"])
            + f"-{self.rng.getrandbits(48):x}",
            "event_type": event_type,
            "student_id": self.rng.choice(self.students),
            "topic": self.rng.choice(self.topics),
            "occurred_at": self.render(self.moment()),
            "payload": self.payload(event_type),
        }
        if self.rng.random() < 0.05:
            document["source_system"] = "lms-7"  # unknown fields are kept and hashed
        return document

    def invalid(self) -> dict:
        document = self.event()
        kind = self.rng.choice(["expired", "unknown_event_type", "missing_field", "future"])
        if kind == "expired":
            days = settings.RETENTION_EVENTS_DAYS + 1
            document["occurred_at"] = (self.now - timedelta(days=days)).isoformat()
        elif kind == "unknown_event_type":
            document["event_type"] = "video.watched"
        elif kind == "missing_field":
            del document["topic"]
        else:
            document["occurred_at"] = (self.now + timedelta(hours=1)).isoformat()
        return document

    def reordered(self, document: dict) -> dict:
        keys = list(document)
        self.rng.shuffle(keys)
        copy = {key: document[key] for key in keys}
        payload_keys = list(document["payload"])
        self.rng.shuffle(payload_keys)
        copy["payload"] = {key: document["payload"][key] for key in payload_keys}
        return copy

    def conflicting(self, document: dict) -> dict:
        """Same id, another score (another exercise or duration where there is no score)."""
        payload = dict(document["payload"])
        if document["event_type"] == "quiz.submitted":
            payload["score"] = 0 if payload["score"] else payload["max_score"]
        elif document["event_type"] == "code.reviewed":
            payload["quality_score"] = 1.0 if payload["quality_score"] < 0.5 else 0.0
        elif document["event_type"] == "exercise.completed":
            payload["exercise_id"] += "-other"
        else:
            payload["duration_minutes"] += 1
        return {**document, "payload": payload}


@dataclass
class Model:
    """What the spec says happens to each arriving item, in arrival order."""

    accepted: dict[str, dict] = field(default_factory=dict)

    def arrive(self, document: dict, valid: bool) -> str:
        if not valid:
            return "rejected"
        first = self.accepted.get(document["event_id"])
        if first is None:
            self.accepted[document["event_id"]] = document
            return "accepted"
        return "duplicate" if _canonical(first) == _canonical(document) else "conflict"

    def exercises_total(self, topic: str) -> int:
        reports = [
            (_utc(d), d["event_id"], d["payload"]["exercises_total"])
            for d in self.accepted.values()
            if d["topic"] == topic
            and d["event_type"] == "exercise.completed"
            and "exercises_total" in d["payload"]
        ]
        return max(reports)[2] if reports else settings.MASTERY_DEFAULT_EXERCISES_TOTAL

    def pairs(self) -> dict[tuple[str, str], list[PairEvent]]:
        pairs: dict[tuple[str, str], list[PairEvent]] = defaultdict(list)
        for d in self.accepted.values():
            pairs[(d["student_id"], d["topic"])].append(
                PairEvent(d["event_id"], d["event_type"], _utc(d), d["payload"])
            )
        return pairs


def _arrivals(gen: Generator) -> list[tuple[dict, bool]]:
    originals = [gen.event() for _ in range(EVENTS)]
    rng = gen.rng
    items = [(d, True) for d in originals]
    items += [
        (gen.reordered(rng.choice(originals)), True) for _ in range(int(EVENTS * DUPLICATE_SHARE))
    ]
    items += [
        (gen.conflicting(rng.choice(originals)), True) for _ in range(int(EVENTS * CONFLICT_SHARE))
    ]
    items += [(gen.invalid(), False) for _ in range(int(EVENTS * INVALID_SHARE))]
    rng.shuffle(items)
    return items


def _batches(rng: random.Random, items: list) -> list[list]:
    batches, start = [], 0
    while start < len(items):
        size = rng.randint(300, 1000)
        batches.append(items[start : start + size])
        start += size
    return batches


@override_settings(RATE_LIMIT_MASTERY="100000/m")
def test_shuffled_duplicated_conflicting_events_end_in_the_reference_state(client_for):
    seed = _seed()
    print(f"INGEST_TEST_SEED={seed}")
    started = time.monotonic()
    rng = random.Random(seed)
    gen = Generator(rng, django_timezone.now())
    model = Model()
    client = client_for(UserFactory(role="service"))

    count_mismatches = []
    for number, batch in enumerate(_batches(rng, _arrivals(gen))):
        expected = [model.arrive(document, valid) for document, valid in batch]
        response = client.post("/api/v1/events", {"events": [d for d, _ in batch]}, format="json")
        assert response.status_code == 200, (seed, number, response.content[:500])
        body = response.json()
        assert body["accepted"] + body["duplicates"] + len(body["rejected"]) == len(batch)
        got = (body["accepted"], body["duplicates"])
        want = (expected.count("accepted"), expected.count("duplicate"))
        got_rejected = {r["index"]: r["code"] for r in body["rejected"]}
        want_rejected = {
            i: status for i, status in enumerate(expected) if status in ("rejected", "conflict")
        }
        differing = sorted(
            (i, batch[i][0]["event_id"], expected[i], got_rejected.get(i))
            for i in set(got_rejected) ^ set(want_rejected)
            | {
                i
                for i in got_rejected
                if (got_rejected[i] == "conflict") != (expected[i] == "conflict")
            }
        )
        if got != want or differing:
            count_mismatches.append((number, got, want, differing))

    # The Kafka path: the same events again as other bytes, some of them changed.
    replay = []
    for document in rng.sample(list(model.accepted.values()), 300):
        if rng.random() < 0.1:
            replay.append((gen.conflicting(document), "conflict"))
        else:
            text = json.dumps(gen.reordered(document), indent=rng.choice([None, 2]))
            replay.append((text.encode(), "duplicate"))
    result = ingest_batch([raw for raw, _ in replay], source=InboxEvent.Source.KAFKA)
    assert [o.code or o.status for o in result.outcomes] == [want for _, want in replay], seed
    assert InboxEvent.objects.count() == len(model.accepted), seed

    policy = current_policy()
    totals = {topic: model.exercises_total(topic) for topic in gen.topics}
    pairs = model.pairs()
    print(f"{len(model.accepted)} accepted events, {len(pairs)} pairs, sizes {totals}")
    score_mismatches = []
    for (student, topic), events in sorted(pairs.items()):
        components, score = reference_mastery(events, totals[topic], policy)
        response = client.post(
            "/api/v1/mastery/query", {"student_id": student, "topic": topic}, format="json"
        )
        assert response.status_code == 200, (seed, student, topic, response.content[:300])
        [item] = response.json()["topics"]
        expected = {"mastery": score, **components.as_dict()}
        actual = {"mastery": item["mastery"], **item["components"]}
        if any(abs(actual[k] - expected[k]) > TOLERANCE for k in ("mastery", *COMPONENTS)):
            score_mismatches.append((student, topic, totals[topic], actual, expected))

    assert score_mismatches == [], f"seed {seed}: {len(score_mismatches)} pairs differ"
    assert count_mismatches == [], f"seed {seed}: batch outcomes differ from the spec"
    assert time.monotonic() - started < 60, seed
