"""The task graph of one run, laid out in layers from left (inputs) to right (the result).

Each task is a node while the monitor sends per-task states (a few hundred tasks); otherwise
each task group is one node with its counts. Pure: the picture (live and saved) draws what
:func:`layout` returns.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.monitor import CODES, STATES, GroupSnapshot, Snapshot
from .palette import STATE_COLOURS

_STATE_OF_CODE = dict(zip(CODES, STATES, strict=True))


@dataclass(frozen=True)
class Node:
    key: str  # "group[index]", or the group's name for a group node
    x: float
    y: float
    state: str
    label: str
    size: float  # relative marker size (group nodes grow with their task count)

    @property
    def colour(self) -> str:
        return STATE_COLOURS[self.state]


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[tuple[float, float, float, float]]  # x0, y0, x1, y1
    per_task: bool
    columns: int


def _group_state(g: GroupSnapshot) -> str:
    """The state a group node shows: the most advanced state any of its tasks has not left."""
    c = g.counts
    if c.get("erred"):
        return "erred"
    if c.get("processing"):
        return "processing"
    if g.total and c.get("memory", 0) == g.total:
        return "memory"
    for state in ("queued", "waiting"):
        if c.get(state):
            return state
    return "memory" if c.get("memory") else "released"


def _short(role: str) -> str:
    return role.replace("reduce", "reduce ")


def layout(snapshot: Snapshot) -> Graph:
    """Nodes and edges of the run's graph in a unit box (x: layer, y: position in the layer)."""
    groups = sorted(snapshot.groups, key=lambda g: (g.level, g.name))
    if not groups:
        return Graph([], [], False, 0)
    columns = max(g.level for g in groups) + 1
    if snapshot.per_task:
        return _task_graph(groups, columns)
    return _group_graph(groups, columns)


def _x(level: int, columns: int) -> float:
    return 0.5 if columns == 1 else level / (columns - 1)


def _task_graph(groups: list[GroupSnapshot], columns: int) -> Graph:
    where: dict[tuple[str, int], tuple[float, float]] = {}
    nodes: list[Node] = []
    edges: list[tuple[float, float, float, float]] = []
    for g in groups:
        states = g.states or ""
        x = _x(g.level, columns)
        n = len(states)
        for i, code in enumerate(states):
            deps = [where[d] for d in (g.edges or {}).get(i, []) if d in where]
            y = sum(p[1] for p in deps) / len(deps) if deps else (i + 0.5) / n
            where[(g.name, i)] = (x, y)
            state = _STATE_OF_CODE[code]
            nodes.append(Node(f"{g.role}[{i}]", x, y, state, f"{g.role}[{i}]", 1.0))
            edges.extend((px, py, x, y) for px, py in deps)
    return Graph(nodes, edges, True, columns)


def _group_graph(groups: list[GroupSnapshot], columns: int) -> Graph:
    per_level: dict[int, list[GroupSnapshot]] = {}
    for g in groups:
        per_level.setdefault(g.level, []).append(g)
    where: dict[str, tuple[float, float]] = {}
    nodes = []
    biggest = max(g.total for g in groups) or 1
    for level, members in per_level.items():
        for j, g in enumerate(members):
            x, y = _x(level, columns), (j + 0.5) / len(members)
            where[g.name] = (x, y)
            size = 1.0 + 2.0 * (g.total / biggest) ** 0.5
            nodes.append(Node(g.name, x, y, _group_state(g),
                              f"{_short(g.role)}: {g.done:,}/{g.total:,}", size))
    edges = [(*where[d], *where[g.name]) for g in groups for d in g.deps if d in where]
    return Graph(nodes, edges, False, columns)
