"""The tree reduction of a run on the cluster: map partials combined ``fan_in`` at a time as they
are submitted, in item order, each round of reduce tasks in one call.

The run keeps a leaf's future only until the reduce task that consumes it has ended, so Dask
frees each partial once it is folded in; with the run's bound on map tasks in flight, a reduction
holds about ``fan_in`` + 2 x threads partials at once, whatever the number of items. A run that
follows its leaves on the scheduler (``Run.follow_leaves_on_scheduler``) lets go of them already
when their reduce task is submitted (``hand_over``).

A few small partials combined by a builtin reducer (``--reduce sum`` over a list cut into a few
batches) are folded at home instead (``home``): once the last leaf ends the kernel takes them
(sent ahead with their tasks' ends, else gathered) and folds them itself, which spares the last
reduce task's dispatch, its fetch of the other workers' partials and its report.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from distributed import Future

from . import plan
from .submit import Submitter


class TreeReduction:
    def __init__(self, submitter: Submitter, fan_in: int):
        self.submitter = submitter
        self.tree = plan.TreeReducer(fan_in)
        self.inputs: dict[Hashable, list[Hashable]] = {}  # reduce task -> the tasks it consumes
        self.root: Future | None = None
        # Called with the keys of leaves once a submitted reduce task consumes them (when the run
        # follows leaves on the scheduler rather than through their futures).
        self.hand_over: Callable[[list[Hashable]], None] | None = None
        self.home = False  # the leaves are folded in the kernel, not by reduce tasks
        self.home_leaves: list[Future] = []  # those leaves, in order, once folded

    @property
    def fan_in(self) -> int:
        return self.tree.fan_in

    @fan_in.setter
    def fan_in(self, value: int) -> None:
        self.tree.fan_in = value

    def add_leaves(self, futures: list[Future]) -> None:
        self._combine([group for future in futures for group in self.tree.add(future)])

    def fold(self) -> Future | None:
        """Combine what is left, level by level; returns the root (None without leaves, or
        when the leaves are folded at home: then they are in ``home_leaves``)."""
        if self.home:
            # in item order: a higher level's nodes combine the leaves before the lower's
            self.home_leaves = [node for level in reversed(self.tree.levels) for node in level]
            self.tree.levels.clear()
            return None
        while groups := self.tree.pending_groups():
            self._combine(groups)
        self.root = self.tree.root()
        return self.root

    def release(self) -> None:
        """Let go of the tree's futures once the value is home: the scheduler keeps every task of
        the tree (2,046 for 2,000 one-item tasks) until the root is released, and forgetting them
        while the next cell runs cost that cell 100-400 ms (bench/round3.py, target "after")."""
        self.root = None
        self.home_leaves = []
        self.tree.levels.clear()
        self.inputs.clear()

    def consumed_by(self, key: Hashable) -> list[Hashable]:
        """The tasks that the reduce task ``key`` consumed (no longer needed once it ended)."""
        return self.inputs.pop(key, [])

    def _combine(self, groups: list[tuple[int, list[Future]]]) -> None:
        """Submit a reduce task per group, add the results one level up, and repeat while that
        completes groups."""
        while groups:
            to_reduce = [(level, group) for level, group in groups if len(group) > 1]
            reduced = self.submitter.reduce(to_reduce)
            for (level, group), future in zip(to_reduce, reduced):
                keys = self.inputs[future.key] = [f.key for f in group]
                if level == 1 and self.hand_over is not None:
                    self.hand_over(keys)
            nodes = iter(reduced)
            placed = [(level, group[0] if len(group) == 1 else next(nodes)) for level, group in groups]
            groups = [up for level, node in placed for up in self.tree.add(node, level)]
