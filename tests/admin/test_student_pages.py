"""The teacher's pages: the student list (filters, sorting), the student page (mastery,
components, history chart), the cohort page, their audit entries and query counts."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from compliance.models import AuditLog
from mastery import selectors
from mastery.models import Cohort, Student
from tests.admin.support import BASICS, LOOPS, learning_event, progress_events, seed
from tests.factories import CohortFactory

pytestmark = pytest.mark.django_db

STUDENTS = reverse("admin:mastery_student_changelist")


def student_ids(response) -> list[str]:
    return [s.student_id for s in response.context["cl"].result_list]


def column_index(response, name: str) -> int:
    return list(response.context["cl"].list_display).index(name)


# --- the student list ------------------------------------------------------------------


def test_at_risk_filter_finds_the_student_with_a_weak_topic(school, admin_client_for):
    client = admin_client_for(school.users["teacher"])

    at_risk = client.get(STUDENTS, {"at_risk": "yes"})
    safe = client.get(STUDENTS, {"at_risk": "no"})

    assert student_ids(at_risk) == ["s-a1"]
    assert student_ids(safe) == ["s-a2"]
    page = at_risk.content.decode()
    assert f"{LOOPS} (0.20)" in page  # the weakest topic says why


@pytest.mark.parametrize(
    ("level", "expected"),
    [("beginner", []), ("developing", ["s-a1"]), ("proficient", []), ("mastered", ["s-a2"])],
)
def test_level_filter_uses_the_overall_level(school, admin_client_for, level, expected):
    client = admin_client_for(school.users["teacher"])

    assert student_ids(client.get(STUDENTS, {"level": level})) == expected


def test_student_without_records_counts_as_beginner(school, admin_client_for):
    newcomer = Student.objects.create(student_id="s-a3")
    school.cohorts["cohort-a"].students.add(newcomer)
    client = admin_client_for(school.users["teacher"])

    assert student_ids(client.get(STUDENTS, {"level": "beginner"})) == ["s-a3"]


def test_cohort_filter(school, admin_client_for):
    client = admin_client_for(school.users["admin"])

    assert student_ids(client.get(STUDENTS, {"cohort": "cohort-b"})) == ["s-b1"]
    assert student_ids(client.get(STUDENTS, {"cohort": "cohort-a"})) == ["s-a1", "s-a2"]


def test_list_sorts_by_overall_mastery_and_last_activity(school, admin_client_for):
    seed([learning_event("s-a1", LOOPS, "session.completed", {"duration_minutes": 5})])
    client = admin_client_for(school.users["teacher"])
    first = client.get(STUDENTS)
    overall = column_index(first, "overall")
    activity = column_index(first, "last_activity_at")

    by_mastery = client.get(STUDENTS, {"o": f"-{overall}"})
    by_activity = client.get(STUDENTS, {"o": f"-{activity}"})

    assert student_ids(by_mastery) == ["s-a2", "s-a1"]
    assert student_ids(by_activity) == ["s-a1", "s-a2"]


def test_list_shows_overall_mastery_with_level_and_own_cohorts_only(school, admin_client_for):
    shared = CohortFactory(cohort_id="cohort-c", students=[school.students["s-a1"]])
    client = admin_client_for(school.users["teacher"])

    page = client.get(STUDENTS).content.decode()

    assert "0.93 (mastered)" in page
    assert "cohort-a" in page
    assert shared.cohort_id not in page  # s-a1's other cohort is not the teacher's


# --- the student page ------------------------------------------------------------------


def test_student_page_shows_mastery_components_and_a_history_chart(school, admin_client_for):
    student = school.students["s-a1"]
    client = admin_client_for(school.users["teacher"])

    response = client.get(reverse("admin:mastery_student_change", args=[student.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert [t.topic for t in response.context["mastery"].topics] == [BASICS, LOOPS]
    assert "Mastery per topic" in page
    assert "at risk" in page
    for component in ("Completion", "Quiz", "Quality", "Consistency"):
        assert component in page
    assert 'class="me-bar"' in page
    assert "<svg" in page
    assert page.count('class="me-overall-line"') == 1
    assert page.count('class="me-dot"') == 5  # five days of activity
    assert "Recommendations" in page
    assert "more exercises in python.loops would lift completion" in page
    assert "cdn" not in page.lower()
    assert 'name="_save"' not in page  # read-only for a teacher


def test_history_carries_each_topic_forward_and_averages_topics(school):
    student = school.students["s-a2"]
    seed(
        [
            learning_event(
                "s-a2", "python.new", "exercise.completed", {"exercise_id": "x"}, days_ago=10
            )
        ]
    )
    now = timezone.now()

    history = selectors.student_daily_series(
        student, start=now.date() - timedelta(days=29), end=now.date()
    )

    assert len(history.days) == 30
    assert history.days[-1] == now.date()
    history_index = history.days.index((now - timedelta(days=10, minutes=1)).date())
    new_topic = history.topics["python.new"]
    assert new_topic[:history_index] == [None] * history_index
    first = new_topic[history_index]
    assert first == new_topic[-1] == pytest.approx(0.4 * 0.1 + 0.1 / 14, abs=1e-4)
    loops = history.topics[LOOPS]
    assert history.overall[-1] == pytest.approx(
        (loops[-1] + history.topics[BASICS][-1] + new_topic[-1]) / 3, abs=1e-4
    )
    assert history.overall[history_index] == pytest.approx(first, abs=1e-4)  # the only topic


def test_history_starts_from_the_snapshot_before_the_window(school):
    seed(progress_events("s-b1", "python.old", exercises=5, quiz=0.5, quality=0.5, days=1))
    student = school.students["s-b1"]
    later = timezone.now().date() + timedelta(days=40)

    history = selectors.student_daily_series(student, start=later - timedelta(days=29), end=later)

    assert all(v is not None for v in history.topics["python.old"])
    assert history.topics["python.old"][0] == history.topics["python.old"][-1]


def test_empty_history_says_so(school, admin_client_for):
    newcomer = Student.objects.create(student_id="s-a3")
    school.cohorts["cohort-a"].students.add(newcomer)
    client = admin_client_for(school.users["teacher"])

    page = client.get(reverse("admin:mastery_student_change", args=[newcomer.pk])).content

    assert b"No history in the last 30 days" in page
    assert b"No mastery yet" in page


# --- the cohort page -------------------------------------------------------------------


def test_cohort_page_lists_its_students_weakest_first(school, admin_client_for):
    cohort = school.cohorts["cohort-a"]
    client = admin_client_for(school.users["teacher"])

    response = client.get(reverse("admin:mastery_cohort_change", args=[cohort.pk]))

    rows = response.context["cohort_students"]
    assert [r["student"].student_id for r in rows] == ["s-a1", "s-a2"]
    assert rows[0]["level"] == "developing"
    assert rows[1]["overall"] == pytest.approx(rows[1]["student"].overall_mastery)
    assert b"Year 10 A" in response.content


def test_cohort_list_shows_size_and_mean(school, admin_client_for):
    client = admin_client_for(school.users["admin"])

    response = client.get(reverse("admin:mastery_cohort_changelist"))

    cohorts = {c.cohort_id: c for c in response.context["cl"].result_list}
    assert cohorts["cohort-a"].student_count == 2
    assert cohorts["cohort-b"].mean_mastery == pytest.approx(0.926, abs=0.01)


# --- audit -------------------------------------------------------------------------------


def test_viewing_a_student_is_audited(school, admin_client_for):
    student = school.students["s-a1"]
    teacher = school.users["teacher"]
    url = reverse("admin:mastery_student_change", args=[student.pk])

    admin_client_for(teacher).get(url)

    entry = AuditLog.objects.get(action="admin.student.view")
    assert (entry.actor, entry.actor_role, entry.student_ref) == (teacher, "teacher", "s-a1")
    assert (entry.resource, entry.outcome) == (url, "ok")


def test_a_teacher_probing_another_cohort_is_audited_as_not_found(school, admin_client_for):
    other = school.students["s-b1"]

    admin_client_for(school.users["teacher"]).get(
        reverse("admin:mastery_student_change", args=[other.pk])
    )

    entry = AuditLog.objects.get(action="admin.student.view")
    assert (entry.student_ref, entry.outcome) == ("s-b1", "not_found")


def test_listing_students_is_audited_once_per_listed_student(school, admin_client_for):
    admin_client_for(school.users["teacher"]).get(STUDENTS, {"at_risk": "no"})

    entries = AuditLog.objects.filter(action="admin.student.list")
    assert [e.student_ref for e in entries] == ["s-a2"]
    assert entries[0].resource == f"{STUDENTS}?at_risk=no"


def test_viewing_a_cohort_audits_its_listed_students(school, admin_client_for):
    cohort = school.cohorts["cohort-a"]

    admin_client_for(school.users["teacher"]).get(
        reverse("admin:mastery_cohort_change", args=[cohort.pk])
    )

    refs = AuditLog.objects.filter(action="admin.cohort.view").values_list("student_ref", flat=True)
    assert sorted(refs) == ["s-a1", "s-a2"]


def test_event_and_record_pages_are_audited(school, admin_client_for):
    client = admin_client_for(school.users["admin"])

    client.get(reverse("admin:ingest_inboxevent_changelist"), {"q": "s-b1"})
    client.get(reverse("admin:mastery_masteryrecord_changelist"), {"q": "s-b1"})

    assert set(
        AuditLog.objects.filter(action__in=["admin.event.list", "admin.record.list"]).values_list(
            "action", "student_ref"
        )
    ) == {("admin.event.list", "s-b1"), ("admin.record.list", "s-b1")}


# --- query counts ------------------------------------------------------------------------


def enrol(count: int, cohort: Cohort, start: int) -> None:
    """`count` more students in `cohort`, each with two topics of history."""
    ids = [f"s-load-{start + n:03d}" for n in range(count)]
    events = []
    for n, sid in enumerate(ids):
        events += progress_events(sid, LOOPS, exercises=n % 10, quiz=0.5, quality=0.5, days=2)
        events += progress_events(sid, BASICS, exercises=3, quiz=0.9, quality=0.7, days=2)
    seed(events)
    cohort.students.add(*Student.objects.filter(student_id__in=ids))


def queries_for(client, url: str, params: dict) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize("role", ["teacher", "admin"])
@pytest.mark.parametrize(
    ("url", "params"),
    [
        (STUDENTS, {}),
        (STUDENTS, {"at_risk": "yes", "o": "-3"}),
        (STUDENTS, {"cohort": "cohort-a", "level": "developing"}),
        (reverse("admin:mastery_masteryrecord_changelist"), {}),
        (reverse("admin:mastery_cohort_changelist"), {}),
    ],
)
def test_changelist_queries_do_not_grow_with_students(
    school, admin_client_for, django_assert_max_num_queries, role, url, params
):
    cohort = school.cohorts["cohort-a"]
    client = admin_client_for(school.users[role])
    enrol(3, cohort, start=0)  # 5 students in the teacher's cohort
    with_five = queries_for(client, url, params)
    enrol(45, cohort, start=100)  # 50

    with django_assert_max_num_queries(with_five):
        response = client.get(url, params)

    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1


@pytest.mark.parametrize(
    "url",
    [
        reverse("admin:ingest_inboxevent_changelist"),
        reverse("admin:compliance_auditlog_changelist"),
    ],
)
def test_admin_browsing_queries_do_not_grow(
    school, admin_client_for, django_assert_max_num_queries, url
):
    client = admin_client_for(school.users["admin"])
    client.get(STUDENTS)  # some audit entries
    with_few = queries_for(client, url, {})
    enrol(45, school.cohorts["cohort-b"], start=200)
    client.get(STUDENTS)

    with django_assert_max_num_queries(with_few):
        assert client.get(url).status_code == 200


def test_student_page_queries_do_not_grow_with_topics(
    school, admin_client_for, django_assert_max_num_queries
):
    student = school.students["s-a2"]
    url = reverse("admin:mastery_student_change", args=[student.pk])
    client = admin_client_for(school.users["teacher"])
    with_two = queries_for(client, url, {})
    seed(
        [
            e
            for n in range(8)
            for e in progress_events("s-a2", f"topic.{n}", exercises=2, quiz=0.5, quality=0.5)
        ]
    )

    with django_assert_max_num_queries(with_two):
        assert client.get(url).status_code == 200
