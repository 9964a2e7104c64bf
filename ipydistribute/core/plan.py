"""How a run is cut into tasks: batch sizes, batches, and the shape of the tree reduction.

Pure functions and small classes, no Dask: the run feeds them and submits what they produce.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from . import number_lists
from .errors import SpecError
from .wire import Batch

#: Tasks per worker thread that auto batching aims for at least, so stragglers even out.
TASKS_PER_THREAD = 4
#: ... unless tasks would then be shorter than this: Dask's cost per task (a few ms between the
#: kernel, the scheduler and the worker) would take more than about a tenth of the run.
MIN_TASK_SECONDS = 0.025
#: Share of each thread's items that the timing probe may run, and the most items it runs.
PROBE_SHARE = 16
PROBE_MAX_ITEMS = 256


def sized_length(items: Any) -> int | None:
    """The number of items when it is known without consuming them (None for generators)."""
    if isinstance(items, Iterator):
        return None
    try:
        return len(items)
    except TypeError:  # no len(): consumed as a stream
        return None
    except OverflowError:
        raise SpecError("the iterable has more items than len() can count (a range that large?): "
                        "give fewer items, or a generator") from None
    except Exception as exc:
        raise SpecError(f"len() of the iterable failed: {type(exc).__name__}: {exc}") from None


def probe_size(remaining: int | None, threads: int) -> int:
    """Items per thread that the timing probe runs: enough to time items of a microsecond
    (a single item mostly times the loop's own start), never more than a small share of the work."""
    if remaining is None:
        return 1
    return max(1, min(PROBE_MAX_ITEMS, remaining // (max(threads, 1) * PROBE_SHARE)))


def auto_batch_size(remaining: int | None, threads: int, seconds_per_item: float | None,
                    target_seconds: float, max_batch: int) -> int:
    """Items per task: long enough that the scheduler's overhead is small, with enough tasks
    that every thread stays busy.

    ``seconds_per_item`` comes from the first tasks of the run (None before they finish).
    A known number of items is cut into tasks of equal size, a multiple of ``threads`` of them.
    """
    threads = max(threads, 1)
    if seconds_per_item is None:
        return 1
    per_item = max(seconds_per_item, 1e-9)
    size = min(max(1, round(target_seconds / per_item)), max_batch)  # round: ceil made 0.19 s items 0.38 s tasks
    if remaining is None or remaining <= 0:
        return max(1, size)
    by_balance = math.ceil(remaining / (threads * TASKS_PER_THREAD))
    by_overhead = min(math.ceil(MIN_TASK_SECONDS / per_item), max(1, remaining // threads))
    size = max(1, min(size, max(by_balance, by_overhead)))
    tasks = math.ceil(remaining / size)
    tasks = math.ceil(tasks / threads) * threads if tasks > threads else tasks
    return max(1, math.ceil(remaining / tasks))


def tapered_sizes(remaining: int, size: int, threads: int, seconds_per_item: float) -> list[int]:
    """Sizes of the batches for ``remaining`` items: about ``size`` each, then a round of half
    and a round of quarter batches (one per thread each), so that the threads finish together:
    the Dask scheduler hands tasks out in order, and a thread that ends early now waits for a
    quarter of a task at most, not a whole one. No taper when quarter tasks would be shorter
    than ``MIN_TASK_SECONDS``, or when the items do not fill a full round before the taper."""
    threads = max(threads, 1)
    half, quarter = size // 2, size // 4
    tail = threads * (half + quarter)
    if quarter * seconds_per_item < MIN_TASK_SECONDS or remaining < tail + threads * size:
        return _even(remaining, math.ceil(remaining / max(size, 1)))
    body = remaining - tail
    rounds = math.ceil(math.ceil(body / size) / threads)
    return _even(body, rounds * threads) + [half] * threads + [quarter] * threads


def _even(count: int, parts: int) -> list[int]:
    """``count`` items in ``parts`` batches whose sizes differ by one at most."""
    parts = max(1, min(parts, count))
    base, extra = divmod(count, parts)
    return [base + 1] * extra + [base] * (parts - extra)


def _sliceable(items: Any) -> bool:
    """Inputs cut by slicing (a list copy, a small range object, one array) rather than item by item."""
    kind = type(items)
    return isinstance(items, (list, tuple, range)) or (kind.__module__ == "numpy" and kind.__name__ == "ndarray")


class Batcher:
    """Cuts an iterable into consecutive :class:`Batch` objects of a size that may change.

    With ``ranges`` (``[(start, stop), ...]`` of a sized, sliceable input) only those items are
    cut, and no batch spans two ranges: a resumed run computes only what its checkpoint lacks.
    """

    def __init__(self, items: Iterable[Any], ranges: list[tuple[int, int]] | None = None):
        self._length = sized_length(items)
        self._sequence: Any = items if self._length is not None and _sliceable(items) else None
        self._iterator = iter(items) if self._sequence is None else None
        if ranges is not None and self._sequence is None:
            raise SpecError("only a list, tuple, range or array can be resumed item by item")
        self._ranges = list(ranges) if ranges is not None else None
        self.position = self._ranges[0][0] if self._ranges else 0
        self.exhausted = self._ranges == []
        self._packer: number_lists.Packer | None = None  # the input as machine numbers, front to back

    def start_packing(self) -> bool:
        """Pack the input as machine numbers from here on if it looks like plain numbers
        (core/number_lists.py): batches taken after are views of the packed values, whatever
        their sizes, so packing need not wait for them to be known."""
        if self._packer is None and self._sequence is not None and number_lists.likely(self._sequence):
            self._packer = number_lists.Packer(self._sequence)
        return self._packer is not None

    def pack_piece(self) -> bool:
        """Pack the next piece of the input ahead of the batches; False when nothing is left."""
        return self._packer is not None and self._packer.pack_piece()

    @property
    def left_to_pack(self) -> int:
        """Items of the input still to be packed as numbers (0 when it is not packed so)."""
        return 0 if self._packer is None else self._packer.left

    @property
    def remaining(self) -> int | None:
        if self._ranges is not None:
            return sum(stop - max(start, self.position) for start, stop in self._ranges)
        return None if self._length is None else self._length - self.position

    def take(self, size: int) -> Batch | None:
        if self.exhausted:
            return None
        end = None
        if self._ranges is not None:
            start, end = self._ranges[0]
            self.position = max(self.position, start)
        if self._sequence is not None:
            stop = self.position + size if end is None else min(self.position + size, end)
            batch = self._packed(stop)
            if batch is None:
                batch = Batch(self.position, self._sequence[self.position : stop])
        else:
            assert self._iterator is not None
            batch = Batch(self.position, list(islice(self._iterator, size)))
        if not batch.count:
            self.exhausted = True
            return None
        self.position += batch.count
        if self._ranges is not None:
            if self.position >= self._ranges[0][1]:
                self._ranges.pop(0)
            self.exhausted = not self._ranges
        elif batch.count < size:
            self.exhausted = True
        return batch

    def _packed(self, stop: int) -> Batch | None:
        """Items up to ``stop`` as a view of the packed input (None if they cannot be)."""
        if self._packer is None:
            return None
        start, stop = self.position, min(stop, len(self._sequence))
        values = self._packer.view(start, stop) if stop > start else None
        if values is None:  # nothing left, or not all plain numbers up to ``stop``
            return None
        return Batch(start, None, stop - start, values, numbers=self._packer.code, first=self._sequence[start])


def open_ranges(length: int, done: Iterable[int]) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: the runs of indices below ``length`` that are not in ``done``."""
    finished = set(done)
    ranges: list[tuple[int, int]] = []
    start = None
    for index in range(length):
        if index in finished:
            if start is not None:
                ranges.append((start, index))
                start = None
        elif start is None:
            start = index
    if start is not None:
        ranges.append((start, length))
    return ranges


def fan_in_for(leaves: int, minimum: int) -> int:
    """Partials per reduce task: ``minimum``, or about the square root of the number of leaves
    when that is larger, so many tiny tasks get a two-level tree (10,000 leaves: 100 + 1 reduce
    tasks instead of 1,429) and the reduction adds ~1% to the scheduler's work, not 14%."""
    return max(minimum, math.ceil(math.sqrt(max(leaves, 1))))


#: What a reduce task costs (a dispatch, a fetch of its inputs from the other workers, its
#: transitions) in partials it folds: a tree of small partials is cheapest with about
#: sqrt(leaves x this) of them per task, the last group being the tail after the last leaf.
REDUCE_TASK_IN_PARTIALS = 150


def wide_fan_in(leaves: int) -> int:
    """Partials per reduce task for ``leaves`` small partials (2,000 leaves: 548, so 4 + 1 reduce
    tasks, against 45 + 1 with :func:`fan_in_for`)."""
    return math.ceil(math.sqrt(max(leaves, 1) * REDUCE_TASK_IN_PARTIALS))


class TreeReducer:
    """Lays out a tree reduction over a stream of ordered leaves, ``fan_in`` at a time.

    Leaves are added in input order; adjacent nodes are combined, so the reducer only has to be
    associative. ``add`` returns the groups ready to be combined now (each becomes a task, whose
    result is added one level up with ``add``); ``finish`` returns the remaining groups level by
    level. Works the same for a list known in advance and for a generator.
    """

    def __init__(self, fan_in: int = 8):
        if fan_in < 2:
            raise ValueError("fan_in must be at least 2")
        self.fan_in = fan_in
        self.levels: list[list[Any]] = []

    def add(self, node: Any, level: int = 0) -> list[tuple[int, list[Any]]]:
        while len(self.levels) <= level:
            self.levels.append([])
        self.levels[level].append(node)
        if len(self.levels[level]) >= self.fan_in:  # >=: the fan-in may shrink while leaves come
            group, self.levels[level] = self.levels[level], []
            return [(level + 1, group)]
        return []

    def pending_groups(self) -> list[tuple[int, list[Any]]]:
        """The lowest level with nodes left, as one group to combine (empty when one node is left)."""
        for level, nodes in enumerate(self.levels):
            higher = any(self.levels[level + 1 :])
            if nodes and (len(nodes) > 1 or higher):
                group, self.levels[level] = nodes, []
                return [(level + 1, group)]
        return []

    def root(self) -> Any:
        """The single node left once ``pending_groups`` returns nothing (None if no leaves)."""
        nodes = [n for level in self.levels for n in level]
        if len(nodes) > 1:
            raise RuntimeError("the tree is not folded yet")
        return nodes[0] if nodes else None
