"""The prerequisite graph's rule: no cycle, direct or indirect."""

import pytest

from mastery.domain.prerequisites import prerequisites_cycle

# 1 <- 2 <- 3 (3 needs 2, 2 needs 1); 4 stands alone.
GRAPH = {2: {1}, 3: {2}}


def test_a_topic_cannot_be_its_own_prerequisite():
    assert prerequisites_cycle(4, [4], GRAPH) == "A topic cannot be its own prerequisite."


@pytest.mark.parametrize(("topic", "chosen"), [(1, [2]), (1, [3]), (2, [3, 4])])
def test_a_prerequisite_that_depends_on_the_topic_makes_a_cycle(topic, chosen):
    assert prerequisites_cycle(topic, chosen, GRAPH) == "These prerequisites would make a cycle."


@pytest.mark.parametrize(("topic", "chosen"), [(3, [1, 2]), (4, [3]), (1, []), (2, [4])])
def test_prerequisites_that_do_not_lead_back_are_accepted(topic, chosen):
    assert prerequisites_cycle(topic, chosen, GRAPH) is None


def test_the_topics_own_current_edges_are_replaced_not_followed():
    # 2 currently needs 1; choosing 4 instead is no cycle even though 1 is reachable today.
    assert prerequisites_cycle(2, [4], {**GRAPH, 4: set()}) is None
