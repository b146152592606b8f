"""Recommendations in the admin: the student page's section (current recommendations, the
learning path, locked topics with their blockers) and the topic page's prerequisite graph."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analytics.admin.recommendations import prerequisite_drawing, student_recommendations_section
from analytics.models.recommendations import Recommendation
from compliance.models import AuditLog
from tests.analytics.recommendations.conftest import (
    BASICS,
    FUNCTIONS,
    LOOPS,
    STRINGS,
    seed,
    work,
)

pytestmark = pytest.mark.django_db


def admin_page(user, url: str) -> tuple[int, str]:
    client = Client()
    client.force_login(user)
    response = client.get(url)
    return response.status_code, response.content.decode()


def student_page(school, role: str, student_id: str = "s-a1") -> tuple[int, str]:
    url = reverse("admin:mastery_student_change", args=[school.students[student_id].pk])
    return admin_page(school.users[role], url)


def section(page: str, section_id: str) -> str:
    match = re.search(rf'<section class="me-section" id="{section_id}">(.*?)</section>', page, re.S)
    assert match, f"no section {section_id}"
    return match.group(1)


@pytest.mark.parametrize("role", ["teacher", "admin"])
def test_the_student_page_shows_its_recommendations_by_impact(school, role):
    status, page = student_page(school, role)

    assert status == 200
    assert "Not available yet" not in page
    recommendations = section(page, "recommendations")
    rows = re.findall(r"<tr>\s*<th scope=\"row\">(.*?)</th>\s*<td>(\w+)", recommendations)
    assert rows == [
        (LOOPS, "completion"),
        (LOOPS, "quiz"),
        (LOOPS, "quality"),
        (LOOPS, "consistency"),
    ]
    assert (
        "3 more exercises in python.loops would lift completion from 0.40 to 0.70, +0.12 mastery."
        in recommendations
    )
    assert 'class="me-priority me-priority-high">high' in recommendations


def test_the_student_page_shows_the_path_with_locked_topics_and_their_blockers(school):
    _, page = student_page(school, "teacher")

    path = section(page, "learning-path")
    steps = re.findall(r'<li class="me-path-(\w+)">\s*<strong>([\w.]+)</strong>', path)
    assert steps == [("unlocked", STRINGS), ("unlocked", LOOPS), ("locked", FUNCTIONS)]
    assert "blocked by python.loops (0.40)" in path
    assert f"Done (at or above 0.7): {BASICS}" in path
    assert "7 more exercises in python.strings" in path


def test_the_page_shows_the_ids_the_api_gives(school, client_for):
    student_page(school, "admin")
    ids = set(Recommendation.objects.values_list("pk", flat=True))

    client = client_for(school.users["student"])
    api = client.post("/api/v1/recommendations/adaptive", {"student_id": "s-a1"}, format="json")

    assert {item["id"] for item in api.json()} <= {str(pk) for pk in ids}
    assert Recommendation.objects.filter(superseded_at__isnull=False).count() == 0


def test_a_student_below_the_threshold_in_basics_starts_the_path_with_it(school):
    _, page = student_page(school, "admin", "s-b1")

    path = section(page, "learning-path")
    assert re.findall(r'<li class="me-path-(\w+)">\s*<strong>([\w.]+)</strong>', path)[0] == (
        "unlocked",
        BASICS,
    )


def test_a_teacher_cannot_read_another_cohorts_recommendations(school):
    status, page = student_page(school, "teacher", "s-b1")

    assert status == 404
    assert "Learning path" not in page
    assert not Recommendation.objects.filter(student__student_id="s-b1").exists()
    refused = AuditLog.objects.get(action="admin.student.view")
    assert (refused.student_ref, refused.outcome) == ("s-b1", "not_found")


def section_queries(student) -> int:
    with CaptureQueriesContext(connection) as captured:
        student_recommendations_section(None, student)
    return len(captured)


def test_the_sections_queries_do_not_grow_with_topics(school):
    student = school.students["s-a2"]
    with_few = section_queries(student)  # writes its recommendations
    seed([e for n in range(8) for e in work("s-a2", f"topic.{n}", exercises=2, quizzes=(0.5,))])

    assert section_queries(student) <= with_few  # writes the new topics' ones
    assert section_queries(student) < with_few  # nothing to write
    assert Recommendation.objects.filter(student=student, topic__slug="topic.7").count() == 4


def test_a_cycle_in_the_data_shows_as_a_problem_on_the_student_page(school):
    school.topics[BASICS].prerequisites.add(school.topics[FUNCTIONS])

    status, page = student_page(school, "admin", "s-a2")

    assert status == 200
    assert "These topics depend on each other" in section(page, "learning-path")


# --- the topic page -------------------------------------------------------------------------


def topic_page(school, slug: str, role: str = "admin") -> tuple[int, str]:
    url = reverse("admin:mastery_topic_change", args=[school.topics[slug].pk])
    return admin_page(school.users[role], url)


@pytest.mark.parametrize("role", ["teacher", "admin"])
def test_the_topic_page_draws_its_prerequisites_and_what_it_unlocks(school, role):
    status, page = topic_page(school, LOOPS, role)

    assert status == 200
    graph = section(page, "prerequisite-graph")
    assert "<svg" in graph
    assert re.findall(r"<li>([\w.]+) → ([\w.]+)</li>", graph) == [
        (BASICS, LOOPS),
        (LOOPS, FUNCTIONS),
    ]
    assert graph.count('<line class="me-edge"') == 2
    assert graph.count('class="me-node me-node-current"') == 1
    assert STRINGS not in graph  # neither a prerequisite of loops nor unlocked by it
    assert "mastery/admin.css" in page


def test_a_topic_alone_says_so(school):
    alone = type(school.topics[BASICS]).objects.create(slug="solo.topic")
    school.topics["solo.topic"] = alone

    _, page = topic_page(school, "solo.topic")

    assert "solo.topic has no prerequisites and unlocks no topic." in page


def test_the_topic_form_still_refuses_a_cycle(school):
    client = Client()
    client.force_login(school.users["admin"])
    basics = school.topics[BASICS]
    url = reverse("admin:mastery_topic_change", args=[basics.pk])

    response = client.post(
        url,
        {"name": "Basics", "exercises_total": 10, "prerequisites": [school.topics[FUNCTIONS].pk]},
    )

    assert response.status_code == 200  # the form again, with its error
    assert "These prerequisites would make a cycle." in response.content.decode()
    assert not basics.prerequisites.exists()


def test_the_drawing_puts_prerequisites_left_and_marks_cycle_edges():
    graph = {"a": [], "b": ["a"], "c": ["b", "d"], "d": ["c"], "x": []}

    drawing = prerequisite_drawing(graph, "b")

    nodes = {node.slug: node for node in drawing.nodes}
    assert set(nodes) == {"a", "b", "c", "d"}
    assert nodes["a"].x < nodes["b"].x < nodes["c"].x
    assert [n.slug for n in drawing.nodes if n.current] == ["b"]
    assert {(e.prerequisite, e.topic, e.in_cycle) for e in drawing.edges} == {
        ("a", "b", False),
        ("b", "c", False),
        ("d", "c", True),
        ("c", "d", True),
    }
    assert drawing.cycles == [("c", "d")]
    assert all(
        n.x >= 0 and n.x + n.width <= drawing.width and n.y + n.height <= drawing.height
        for n in drawing.nodes
    )


def test_a_long_slug_is_shortened_on_its_node_and_kept_in_its_title():
    slug = "a-very-long-topic-slug-indeed"
    drawing = prerequisite_drawing({slug: [], "b": [slug]}, "b")

    label = next(n.label for n in drawing.nodes if n.slug == slug)
    assert len(label) == 22
    assert label.endswith("…")
