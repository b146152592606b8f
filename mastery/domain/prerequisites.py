"""The prerequisite graph's one rule: no topic may depend on itself, directly or not."""

from collections.abc import Iterable, Mapping


def prerequisites_cycle(
    topic: int, chosen: Iterable[int], graph: Mapping[int, Iterable[int]]
) -> str | None:
    """Why giving `topic` the prerequisites `chosen` would make a cycle, or None.

    `graph` maps each topic to its current direct prerequisites (the topic's own entry is
    ignored: `chosen` replaces it).
    """
    chosen = list(chosen)
    if topic in chosen:
        return "A topic cannot be its own prerequisite."
    stack, seen = chosen, set()
    while stack:
        current = stack.pop()
        if current == topic:
            return "These prerequisites would make a cycle."
        if current not in seen:
            seen.add(current)
            stack.extend(graph.get(current, ()))
    return None
