"""Writes of the mastery app. Keyword-only, transactional, named `<entity>_<action>`."""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import orjson
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.utils import timezone

from mastery.domain.facts import (
    FoldEvent,
    PairEvent,
    PairFacts,
    ReportedTotal,
    components_of,
    daily_states,
    effective_exercises_total,
    facts_from_record,
    facts_json,
    fold,
    latest_reported_total,
)
from mastery.domain.formula import Components, ScoringPolicy, level_for, mastery_score
from mastery.models import Cohort, MasteryRecord, Snapshot, Student, Topic, User
from mastery.policy import current_policy
from mastery.selectors import StudentMastery, mastery_for_students
from mastery.signals import students_changed_on_commit
from mastery_project.errors import NotFound
from mastery_project.pgcopy import copy_to_temp

_ROLE_FLAGS = {
    User.Role.STUDENT: (False, False),
    User.Role.TEACHER: (True, False),
    User.Role.ADMIN: (True, True),
    User.Role.SERVICE: (False, False),
}

RECORDS = MasteryRecord._meta.db_table
SNAPSHOTS = Snapshot._meta.db_table
TOPICS = Topic._meta.db_table
STUDENTS = Student._meta.db_table

Pair = tuple[int, int]  # (student pk, topic pk)


@transaction.atomic
def account_create_or_update(
    *,
    username: str,
    role: str,
    password: str | None = None,
    student_id: str | None = None,
    cohort_ids: Sequence[str] = (),
) -> tuple[User, bool]:
    """Create the login or update its role; admin-site access follows the role.

    `student_id` links a student login to its Student (created if new); `cohort_ids` makes
    a student join, or a teacher teach, those cohorts (created if new).
    """
    user, created = User.objects.get_or_create(username=username, defaults={"role": role})
    user.role = role
    user.is_staff, user.is_superuser = _ROLE_FLAGS[User.Role(role)]
    if password is not None:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    if student_id is not None:
        if role != User.Role.STUDENT:
            raise ValueError("only a student login can be linked to a student")
        student, _ = Student.objects.get_or_create(student_id=student_id)
        student.full_clean()
        user.student = student
    elif role != User.Role.STUDENT:
        user.student = None
    user.full_clean(exclude=["password"])
    user.save()
    for cohort_id in cohort_ids:
        cohort, _ = Cohort.objects.get_or_create(cohort_id=cohort_id, defaults={"name": cohort_id})
        cohort.full_clean()
        if role == User.Role.TEACHER:
            cohort.teachers.add(user)
        elif role == User.Role.STUDENT and user.student is not None:
            cohort.students.add(user.student)
        else:
            raise ValueError("--cohort needs a teacher, or a student linked with --student-id")
    return user, created


@dataclass
class TopicState:
    """What applying needs of a topic row: its size settings."""

    pk: int
    admin_total: int | None
    reported: ReportedTotal | None

    def total(self, policy: ScoringPolicy) -> int:
        return effective_exercises_total(
            self.admin_total, self.reported, policy.default_exercises_total
        )


def topic_states(topic_pks: Iterable[int]) -> dict[int, TopicState]:
    topics = Topic.objects.filter(pk__in=list(topic_pks)).only(
        "exercises_total", "reported_exercises_total", "reported_at", "reported_event_id"
    )
    return {t.pk: TopicState(t.pk, t.exercises_total, t.reported) for t in topics}


def _scored(facts: PairFacts, total: int, policy: ScoringPolicy) -> tuple[Components, float]:
    components = components_of(facts, total, policy)
    return components, mastery_score(components, policy.weights)


def _update_reported_totals(
    events_by_topic: Mapping[int, list[FoldEvent]], topics: dict[int, TopicState]
) -> set[int]:
    """Move each topic's reported size forward; return topics whose effective size changed.

    One statement per topic, in pk order (the lock order: no deadlocks), sent in one
    pipeline: a time-ordered stream moves every active topic forward in every batch."""
    moves = []
    for topic_pk, events in sorted(events_by_topic.items()):
        candidate = latest_reported_total(topics[topic_pk].reported, events)
        if candidate is not None and candidate != topics[topic_pk].reported:
            at, event_id, total = candidate
            moves.append((topic_pk, [total, at, event_id, topic_pk, at, event_id]))
    if not moves:
        return set()
    changed = set()
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own: executemany pipelines and keeps each RETURNING
        # Conditional on recency, so concurrent writers can only move it forward.
        raw.executemany(
            f"""UPDATE {TOPICS} SET reported_exercises_total = %s, reported_at = %s,
                    reported_event_id = %s
                WHERE id = %s AND (reported_at IS NULL OR (reported_at, reported_event_id)
                    < (%s::timestamptz, %s::varchar))
                RETURNING reported_exercises_total, reported_at, reported_event_id""",
            [params for _, params in moves],
            returning=True,
        )
        for topic_pk, _ in moves:
            row = raw.fetchone()
            raw.nextset()
            if row is None:
                continue
            state = topics[topic_pk]
            before = state.reported[2] if state.reported else None
            state.reported = (row[1], row[2], row[0])
            if state.admin_total is None and before != row[0]:
                changed.add(topic_pk)
    return changed


StoredEvents = Callable[[Mapping[Pair, datetime]], Mapping[Pair, list[PairEvent]]]
"""Reads each pair's stored events that occurred at or after its instant (ingest owns them)."""


def _replay_bases(
    late: Mapping[Pair, date], stored_events: StoredEvents
) -> dict[Pair, tuple[PairFacts, list[PairEvent]]]:
    """For each late pair: its facts at the end of the last snapshot day before the late
    event's day, and its stored events after that day. Replaying those rebuilds the later
    snapshots exactly, even after older events were purged, reading only what is needed.
    (A pair without such a snapshot replays all its stored events.)"""
    pairs = list(late)
    students, topics = [p[0] for p in pairs], [p[1] for p in pairs]
    bases: dict[Pair, tuple[PairFacts, list[PairEvent]]] = {
        pair: (PairFacts(), []) for pair in pairs
    }
    starts = {pair: datetime.min.replace(tzinfo=UTC) for pair in pairs}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT DISTINCT ON (s.student_id, s.topic_id) s.student_id, s.topic_id, s.day,
                    s.facts
                FROM {SNAPSHOTS} s JOIN unnest(%s::bigint[], %s::bigint[], %s::date[])
                    AS p(st, tp, d) ON s.student_id = p.st AND s.topic_id = p.tp AND s.day < p.d
                WHERE s.facts <> '{{}}'::jsonb
                ORDER BY s.student_id, s.topic_id, s.day DESC""",
            [students, topics, [late[p] for p in pairs]],
        )
        for student_pk, topic_pk, day, facts in cursor.fetchall():
            raw = orjson.loads(facts) if isinstance(facts, str) else facts
            bases[(student_pk, topic_pk)] = (facts_from_record(raw), [])
            starts[(student_pk, topic_pk)] = datetime.combine(
                day + timedelta(days=1), datetime.min.time(), tzinfo=UTC
            )
    for pair, events in stored_events(starts).items():
        bases[pair][1].extend(events)
    return bases


def mastery_records_apply_events(
    *,
    events_by_pair: Mapping[Pair, Sequence[FoldEvent]],
    now: datetime,
    stored_events: StoredEvents,
) -> None:
    """Apply newly accepted events (already in the inbox) to records and daily snapshots.

    Set-based: one read of the records, one upsert of records, one of snapshots. Events that
    are not older than the pair's latest day extend the record's facts day by day; a late
    event (an earlier day) rewrites that pair's snapshots from its day on, by replaying
    the pair's stored events (read through `stored_events`). Each pair-day's facts are
    encoded once: the record of a pair that moved forward stores its last snapshot's JSON.
    Must run inside the caller's transaction.
    """
    if not events_by_pair:
        return
    policy = current_policy()
    pairs = sorted(events_by_pair)
    events_by_topic: dict[int, list[FoldEvent]] = defaultdict(list)
    for (_, topic_pk), events in events_by_pair.items():
        events_by_topic[topic_pk].extend(events)
    topics = topic_states(events_by_topic)
    resized = _update_reported_totals(events_by_topic, topics)
    stored = _locked_record_facts(pairs)

    record_rows: list[tuple] = []
    snapshot_rows: dict[tuple[int, int, date], tuple] = {}
    late: dict[Pair, date] = {}
    empty = PairFacts.empty()
    for pair in pairs:
        events = events_by_pair[pair]
        before = stored.get(pair, empty)
        first_new_day = min(event.occurred_at for event in events).date()
        total = topics[pair[1]].total(policy)
        if before.latest_at is not None and first_new_day < before.latest_at.date():
            late[pair] = first_new_day
            after = fold(before, events, policy)
            components, score = _scored(after, total, policy)
            record_rows.append((*pair, components, score, facts_json(after)))
        else:
            for day, facts in daily_states(before, events, policy):
                row = _snapshot_row(pair, day, facts, total, policy)
                snapshot_rows[(*pair, day)] = row
            _, _, _, components, score, _, text = row  # the last day's state is current
            record_rows.append((*pair, components, score, text))

    if late:
        for pair, (base, events) in _replay_bases(late, stored_events).items():
            total = topics[pair[1]].total(policy)
            for day, facts in daily_states(base, events, policy):
                if day >= late[pair]:
                    snapshot_rows[(*pair, day)] = _snapshot_row(pair, day, facts, total, policy)

    _upsert_record_rows(record_rows, policy, now)
    _upsert_snapshots(snapshot_rows.values())
    if resized:
        topic_sizes_rescore(topic_pks=resized)


def _locked_record_facts(pairs: Sequence[Pair]) -> dict[Pair, PairFacts]:
    """The pairs' stored facts, their records locked (in id order, as rescoring does).

    Each pair is found through the (student, topic) index: a batch costs what it holds,
    not what the table holds (a hash join would scan every record, and spill)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT r.student_id, r.topic_id, r.facts FROM unnest(%s::bigint[], %s::bigint[])
                    AS p(s, t)
                CROSS JOIN LATERAL (SELECT id, student_id, topic_id, facts FROM {RECORDS}
                    WHERE student_id = p.s AND topic_id = p.t) AS r
                ORDER BY r.id FOR UPDATE OF r""",
            [[p[0] for p in pairs], [p[1] for p in pairs]],
        )
        return {
            (s, t): facts_from_record(orjson.loads(f) if isinstance(f, str) else f)
            for s, t, f in cursor.fetchall()
        }


def _snapshot_row(
    pair: Pair, day: date, facts: PairFacts, total: int, policy: ScoringPolicy
) -> tuple:
    """(student, topic, day, components, score, exercises done, facts as JSON)."""
    components, score = _scored(facts, total, policy)
    return (*pair, day, components, score, len(facts.exercise_ids), facts_json(facts))


def _upsert_records(rows: list[tuple], policy: ScoringPolicy, now: datetime) -> None:
    """Rows of (student, topic, facts, components, score)."""
    _upsert_record_rows(
        [(s, t, components, score, facts_json(facts)) for s, t, facts, components, score in rows],
        policy,
        now,
    )


def _upsert_record_rows(rows: list[tuple], policy: ScoringPolicy, now: datetime) -> None:
    """Rows of (student, topic, components, score, facts as JSON)."""
    if not rows:
        return
    with connection.cursor() as cursor:
        copy_to_temp(
            cursor,
            "incoming_records",
            "student_id bigint, topic_id bigint, completion float8, quiz float8, quality float8,"
            " consistency float8, mastery float8, level varchar, facts jsonb",
            (
                (
                    student_pk, topic_pk, c.completion, c.quiz, c.quality, c.consistency,
                    score, level_for(score), text,
                )
                for student_pk, topic_pk, c, score, text in rows
            ),
        )  # fmt: skip
        cursor.execute(
            f"""INSERT INTO {RECORDS} (student_id, topic_id, completion, quiz, quality,
                    consistency, mastery, level, facts, policy_hash, updated_at)
                SELECT student_id, topic_id, completion, quiz, quality, consistency, mastery,
                    level, facts, %s, %s FROM incoming_records
                ON CONFLICT (student_id, topic_id) DO UPDATE SET
                    completion = EXCLUDED.completion, quiz = EXCLUDED.quiz,
                    quality = EXCLUDED.quality, consistency = EXCLUDED.consistency,
                    mastery = EXCLUDED.mastery, level = EXCLUDED.level, facts = EXCLUDED.facts,
                    policy_hash = EXCLUDED.policy_hash, updated_at = EXCLUDED.updated_at""",
            [policy.policy_hash, now],
        )


def _upsert_snapshots(rows: Iterable[tuple]) -> None:
    rows = list(rows)
    if not rows:
        return
    with connection.cursor() as cursor:
        copy_to_temp(
            cursor,
            "incoming_snapshots",
            "student_id bigint, topic_id bigint, day date, completion float8, quiz float8,"
            " quality float8, consistency float8, mastery float8, exercises_done int4,"
            " facts jsonb",
            (
                (s, t, day, c.completion, c.quiz, c.quality, c.consistency, score, done, text)
                for s, t, day, c, score, done, text in rows
            ),
        )  # fmt: skip
        cursor.execute(
            f"""INSERT INTO {SNAPSHOTS} (student_id, topic_id, day, completion, quiz, quality,
                    consistency, mastery, exercises_done, facts)
                SELECT * FROM incoming_snapshots
                ON CONFLICT (student_id, topic_id, day) DO UPDATE SET
                    completion = EXCLUDED.completion, quiz = EXCLUDED.quiz,
                    quality = EXCLUDED.quality, consistency = EXCLUDED.consistency,
                    mastery = EXCLUDED.mastery, exercises_done = EXCLUDED.exercises_done,
                    facts = EXCLUDED.facts"""
        )


def topic_sizes_rescore(*, topic_pks: Iterable[int]) -> tuple[int, int]:
    """Completion divides by a topic's size: after it changes, bring the topics' records and
    their history to the new one. Returns (records, snapshots) rewritten."""
    topic_pks = list(topic_pks)
    return mastery_records_rescore(topic_pks=topic_pks), snapshots_rescore(topic_pks=topic_pks)


def snapshots_rescore(*, topic_pks: Iterable[int] | None = None) -> int:
    """Follow a change of the topics' size (or, for every topic, of the weights) through
    their history: completion and mastery of each snapshot are recomputed from its stored
    exercise count and components. Rare, and done in chunks.
    """
    policy = current_policy()
    snapshots = Snapshot.objects.all()
    if topic_pks is not None:
        snapshots = snapshots.filter(topic_id__in=list(topic_pks))
    topics = topic_states(
        topic_pks if topic_pks is not None else Topic.objects.values_list("pk", flat=True)
    )
    rewritten = 0
    snapshots = snapshots.values_list(
        "id", "topic_id", "exercises_done", "quiz", "quality", "consistency"
    ).order_by("id")
    ids, completions, masteries = [], [], []
    for pk, topic_pk, done, quiz, quality, consistency in snapshots.iterator(chunk_size=5000):
        completion = min(1.0, done / topics[topic_pk].total(policy))
        components = Components(completion, quiz, quality, consistency)
        ids.append(pk)
        completions.append(completion)
        masteries.append(mastery_score(components, policy.weights))
        if len(ids) >= 5000:
            rewritten += _update_snapshot_scores(ids, completions, masteries)
            ids, completions, masteries = [], [], []
    return rewritten + _update_snapshot_scores(ids, completions, masteries)


def _update_snapshot_scores(
    ids: list[int], completions: list[float], masteries: list[float]
) -> int:
    if not ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {SNAPSHOTS} s SET completion = x.c, mastery = x.m
                FROM unnest(%s::bigint[], %s::float8[], %s::float8[]) AS x(id, c, m)
                WHERE s.id = x.id""",
            [ids, completions, masteries],
        )
    return len(ids)


def mastery_records_rescore(
    *,
    topic_pks: Iterable[int] | None = None,
    student_pks: Iterable[int] | None = None,
    only_stale: bool = False,
    chunk: int = 5000,
) -> int:
    """Bring records to the current policy and topic sizes from their stored facts.

    Used after a topic's size changes, after a scoring-policy change (weights) and by the
    batch jobs (`student_pks`); no event is re-read. `only_stale` skips records already
    scored by the current policy. Works in chunks of `chunk` records (by id), so memory
    stays flat; each chunk locks its records while it rewrites them, so an event applied
    meanwhile is not overwritten by the facts read before it. Sends `students_changed`
    for the students rewritten. Returns the records rewritten.
    """
    policy = current_policy()
    records = MasteryRecord.objects.all()
    if topic_pks is not None:
        records = records.filter(topic_id__in=list(topic_pks))
    if student_pks is not None:
        records = records.filter(student_id__in=list(student_pks))
    if only_stale:
        records = records.exclude(policy_hash=policy.policy_hash)
    topics: dict[int, TopicState] = {}
    now = timezone.now()
    rewritten, after_id = 0, 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            query = (
                records.filter(id__gt=after_id)
                .order_by("id")
                .select_for_update(of=("self",))
                .values_list("id", "student_id", "topic_id", "facts", "student__student_id")[:chunk]
            )
            # Read raw, as the pipeline does: orjson decodes the facts several times faster.
            try:
                cursor.execute(*query.query.sql_with_params())
            except EmptyResultSet:  # no topic or no student to rescore
                return rewritten
            rows = cursor.fetchall()
            if not rows:
                return rewritten
            missing = {t for _, _, t, _, _ in rows} - set(topics)
            topics.update(topic_states(missing))
            batch = []
            for _, student_pk, topic_pk, raw, _ in rows:
                facts = facts_from_record(orjson.loads(raw) if isinstance(raw, str) else raw)
                components, score = _scored(facts, topics[topic_pk].total(policy), policy)
                batch.append((student_pk, topic_pk, facts, components, score))
            _upsert_records(batch, policy, now)
            students_changed_on_commit({row[4] for row in rows}, sender=mastery_records_rescore)
        rewritten += len(rows)
        after_id = rows[-1][0]


def students_rescore(
    *, students: Sequence[Student], topic: str | None = None
) -> dict[int, StudentMastery]:
    """Bring these students' records (or only the topic's) to the current policy from their
    stored facts, and return each one's mastery as `mastery/query` reads it, by pk. The
    batch jobs' step (SPEC §3.4); `rescore_mastery` runs `mastery_records_rescore` too.
    An unknown topic is NotFound, as in `mastery/query`."""
    topic_pks = None
    if topic is not None:
        topic_pks = list(Topic.objects.filter(slug=topic).values_list("pk", flat=True))
        if not topic_pks:
            raise NotFound("No such topic.", code="topic_not_found")
    with transaction.atomic():
        mastery_records_rescore(student_pks=[s.pk for s in students], topic_pks=topic_pks)
        return mastery_for_students(students, topic=topic)
