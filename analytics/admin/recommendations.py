"""Recommendations in the admin: the student page's section (current recommendations and
the learning path, with the locked topics and what blocks them) and the topic page's
prerequisite graph, drawn as inline SVG (no script) with the same edges as a list.

Both are sections of mastery's pages (`admin_section_for`); the student page has already
looked its student up through the audited read, so the section only computes.
"""

from dataclasses import dataclass

from django.http import HttpRequest

from analytics.domain.recommendations import (
    prerequisite_cycles,
    prerequisite_depths,
    prerequisite_neighbourhood,
)
from analytics.selectors.recommendations import prerequisite_graph
from analytics.services.recommendations import learning_path_current
from mastery.models import Student, Topic
from mastery_project.admin_access import admin_section_for

NODE_WIDTH, NODE_HEIGHT = 170, 30
COLUMN_GAP, ROW_GAP, MARGIN = 56, 14, 8
LABEL_CHARS = 22


@admin_section_for(Student, template="admin/analytics/recommendations/student.html", order=20)
def student_recommendations_section(request: HttpRequest, student: Student) -> dict:
    result = learning_path_current(student=student)
    return {
        "threshold": result.threshold,
        "recommendations": result.of_started_topics,
        "steps": [
            {
                "step": step,
                "name": result.names.get(step.topic, ""),
                "recommendations": result.recommendations.get(step.topic, [])
                if step.status == "unlocked"
                else [],
            }
            for step in result.path.steps
        ],
        "mastered": result.path.mastered,
        "problems": result.path.problems,
    }


@dataclass(frozen=True)
class Node:
    slug: str
    label: str
    x: int
    y: int
    current: bool
    width: int = NODE_WIDTH
    height: int = NODE_HEIGHT

    @property
    def text_x(self) -> int:
        return self.x + NODE_WIDTH // 2

    @property
    def text_y(self) -> int:
        return self.y + NODE_HEIGHT // 2


@dataclass(frozen=True)
class Edge:
    prerequisite: str
    topic: str
    x1: int
    y1: int
    x2: int
    y2: int
    in_cycle: bool


@dataclass(frozen=True)
class Drawing:
    width: int
    height: int
    nodes: list[Node]
    edges: list[Edge]
    cycles: list[tuple[str, ...]]


def prerequisite_drawing(graph: dict[str, list[str]], topic: str) -> Drawing:
    """Where to draw `topic`'s part of the graph: one column per depth (prerequisites to
    the left), topics of a column by slug, an arrow from each prerequisite to its topic."""
    part = prerequisite_neighbourhood(graph, topic)
    depth = prerequisite_depths(part)
    columns: dict[int, list[str]] = {}
    for slug in sorted(part):
        columns.setdefault(depth[slug], []).append(slug)
    place = {
        slug: (
            MARGIN + column * (NODE_WIDTH + COLUMN_GAP),
            MARGIN + row * (NODE_HEIGHT + ROW_GAP),
        )
        for column, slugs in columns.items()
        for row, slug in enumerate(slugs)
    }
    cycles = prerequisite_cycles(part)
    cycle_of = {slug: n for n, group in enumerate(cycles) for slug in group}
    nodes = [
        Node(
            slug,
            slug if len(slug) <= LABEL_CHARS else f"{slug[: LABEL_CHARS - 1]}…",
            *place[slug],
            current=slug == topic,
        )
        for slug in sorted(part)
    ]
    edges = [
        Edge(
            prerequisite,
            slug,
            place[prerequisite][0] + NODE_WIDTH,
            place[prerequisite][1] + NODE_HEIGHT // 2,
            place[slug][0],
            place[slug][1] + NODE_HEIGHT // 2,
            in_cycle=slug in cycle_of and cycle_of.get(prerequisite) == cycle_of[slug],
        )
        for slug, prerequisites in part.items()
        for prerequisite in prerequisites
    ]
    edges.sort(key=lambda e: (e.x1, e.y1, e.x2, e.y2))  # left to right, as drawn
    rows = max(len(slugs) for slugs in columns.values())
    return Drawing(
        width=2 * MARGIN + len(columns) * NODE_WIDTH + (len(columns) - 1) * COLUMN_GAP,
        height=2 * MARGIN + rows * NODE_HEIGHT + (rows - 1) * ROW_GAP,
        nodes=nodes,
        edges=edges,
        cycles=cycles,
    )


@admin_section_for(Topic, template="admin/analytics/recommendations/topic.html", order=20)
def topic_prerequisites_section(request: HttpRequest, topic: Topic) -> dict:
    return {"drawing": prerequisite_drawing(prerequisite_graph(), topic.slug)}
