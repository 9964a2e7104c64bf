"""Reproducible randomness in items: the global ``random`` state belongs to the user's code, and
``--seed S`` seeds every item from ``SeedSequence(S)`` and the item's index.

Runs on the workers. Dask itself draws from the global ``random`` module on a worker: its
heartbeat measures stored results with ``dask.sizeof``, which samples long lists with
``random.sample`` between two of the user's calls (2 of 20 items of ``random.seed(i)`` then
differed from a serial loop). :func:`isolate_dask_random` gives those modules a generator of
their own.
"""

from __future__ import annotations

import functools
import importlib.util
import random
import sys
import types
from typing import Any

#: Packages whose code runs in a worker's threads next to the items: Dask's sizeof (heartbeats,
#: result sizes), compression sampling (``from random import randint``), comm backoff, retries,
#: tornado's timer jitter. The user's own modules keep the global generator.
_DASK_PACKAGES = ("dask", "distributed", "tornado")
_private = random.Random()
_isolated: set[str] = set()


def _module_on(generator: random.Random) -> types.ModuleType:
    """A stand-in for the ``random`` module whose functions draw from ``generator``; its classes
    (``random.Random``, ``SystemRandom``) stay, as Dask makes its own generators with them."""
    module = types.ModuleType("random", random.__doc__)
    module.__dict__.update(random.__dict__)
    for attribute, value in random.__dict__.items():
        if getattr(value, "__self__", None) is random._inst:  # type: ignore[attr-defined]
            setattr(module, attribute, getattr(generator, value.__name__))
    return module


_private_module = _module_on(_private)


def isolate_dask_random() -> None:
    """Give Dask's modules their own ``random.Random``, so the global state is the user's alone.

    Rebinds, in every loaded module of Dask, distributed and tornado, the name ``random`` (the
    module) and names bound to the global generator's methods (``from random import randint``).
    Called by the worker preload and on each run's first task on a worker (remote workers
    started without the preload); modules seen before are skipped (about 50 us a call).
    """
    for name in [n for n in sys.modules if n not in _isolated and n.partition(".")[0] in _DASK_PACKAGES]:
        _isolated.add(name)
        namespace = getattr(sys.modules[name], "__dict__", None)
        if namespace is None:
            continue
        for attribute, value in list(namespace.items()):
            if value is random:
                namespace[attribute] = _private_module
            elif getattr(value, "__self__", None) is random._inst:  # type: ignore[attr-defined]
                namespace[attribute] = getattr(_private, value.__name__)


def check_seed(seed: Any) -> int | None:
    """``--seed`` / ``seed=``: a non-negative integer (or None); numpy is needed to use one."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        from .errors import SpecError

        raise SpecError(f"--seed takes a whole number of 0 or more, like --seed 42, not {seed!r}")
    if importlib.util.find_spec("numpy") is None:
        from .errors import SpecError

        raise SpecError("--seed derives each item's seed with numpy.random.SeedSequence: "
                        "install it with `pip install numpy`")
    return seed


@functools.cache
def _torch() -> Any:
    """torch, when installed (imported once: seeding it is part of what --seed promises)."""
    if importlib.util.find_spec("torch") is None:
        return None
    return importlib.import_module("torch")


def seed_item(seed: int, index: int) -> None:
    """Seed ``random``, ``numpy.random`` (and ``torch`` where installed) for item ``index`` of a
    run with ``--seed seed``.

    This is what each item of ``%%distribute x in items --seed S`` gets before it runs, whatever
    the batch, worker or retry; a serial loop that calls it gives the same values::

        for i, x in enumerate(items):
            ipydistribute.seed_item(S, i)
            ...  # the cell's code

    The item's seed is ``numpy.random.SeedSequence(seed, spawn_key=(index,))``, the same as
    ``SeedSequence(seed).spawn(index + 1)[index]``.
    """
    import numpy as np

    state = np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(4)  # 4 x uint32
    random.seed(int.from_bytes(state.tobytes(), "little"))
    np.random.seed(state)
    torch = _torch()
    if torch is not None:
        torch.manual_seed(int(state[0]) << 32 | int(state[1]))
