"""Reproducible randomness in items, on the real cluster: the global ``random`` is the user's
alone on the workers, and ``--seed`` gives the same values whatever the batches and workers."""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import pytest

import ipydistribute

# Each item reseeds the global random and draws slowly; the previous task's result (a list of
# more than 10 values) is measured by Dask's sizeof on the worker's event loop meanwhile.
DRAWS = """
import random, time
random.seed(i)
out = []
for _ in range(25):
    time.sleep(0.004)
    out.append(random.random())
out
"""


def serial_draws(i: int) -> list[float]:
    random.seed(i)
    return [random.random() for _ in range(25)]


def test_random_seed_in_items_equals_serial_in_every_item_of_five_runs(ip: Any) -> None:
    expected = [serial_draws(i) for i in range(20)]
    started = time.monotonic()
    differing = []
    for _ in range(5):
        values = ip.run_cell_magic("distribute", "i in range(20) --batch 1 --view none", DRAWS)
        differing.append([i for i in range(20) if values[i] != expected[i]])
    assert time.monotonic() - started > 2  # heartbeats and result sizing happened meanwhile
    assert differing == [[]] * 5


SEEDED = """
import random
import numpy as np
(random.random(), random.randrange(10**9), float(np.random.rand()), int(np.random.randint(10**9)), x)
"""


def seeded_serial(seed: int, items: list[int]) -> list[tuple[Any, ...]]:
    values = []
    for i, x in enumerate(items):
        ipydistribute.seed_item(seed, i)
        values.append((random.random(), random.randrange(10**9), float(np.random.rand()),
                       int(np.random.randint(10**9)), x))
    return values


@pytest.mark.parametrize("options", ["--batch 1", "--batch auto", "--batch 7", "--workers cpu-0",
                                     "--batch 3 --workers cpu-0,cpu-1"])
def test_seed_gives_the_seeded_serial_values_whatever_the_batches_and_workers(ip: Any, options: str) -> None:
    items = list(range(40))
    ip.user_ns["items"] = items
    values = ip.run_cell_magic("distribute", f"x in items --seed 2026 {options} --view none", SEEDED)
    assert values == seeded_serial(2026, items)
    assert len({v[0] for v in values}) == len(items)  # items differ from one another
    other = ip.run_cell_magic("distribute", f"x in items --seed 2027 {options} --view none", SEEDED)
    assert other != values


def test_seed_holds_for_one_expression_cells_and_the_python_api(ip: Any) -> None:
    items = list(range(300))
    expected = [v[0] for v in seeded_serial(5, items)]
    ip.user_ns.update(items=items, random=random)
    assert ip.run_cell_magic("distribute", "x in items --seed 5 --view none", "random.random()") == expected
    assert ipydistribute.distribute(lambda x: random.random(), items, seed=5, batch=11) == expected


@pytest.mark.parametrize("line, says", [("--seed -1", "--seed takes a whole number"),
                                        ("--seed many", "--seed")])
def test_a_bad_seed_is_one_line(ip: Any, line: str, says: str) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=says):
        ip.run_cell_magic("distribute", f"x in range(3) {line}", "x")
    with pytest.raises(ipydistribute.SpecError, match="--seed takes a whole number"):
        ipydistribute.distribute(abs, range(3), seed=1.5)  # type: ignore[arg-type]



RETRIED = """
import os, random
flag = f"{marker}-{x}"
if x % 5 == 3 and not os.path.exists(flag):
    open(flag, "w").close()
    random.random()
    raise RuntimeError("fails on its first try")
(random.random(), x)
"""


def test_seed_gives_the_same_values_when_tasks_are_retried(ip: Any, tmp_path: Any) -> None:
    items = list(range(20))
    ip.user_ns.update(items=items, marker=str(tmp_path / "tried"))
    values = ip.run_cell_magic("distribute", "x in items --seed 11 --batch 4 --retries 1 --view none", RETRIED)
    expected = []
    for i, x in enumerate(items):
        ipydistribute.seed_item(11, i)
        expected.append((random.random(), x))
    assert values == expected
    assert len(list(tmp_path.glob("tried-*"))) == 4  # four items failed once and were retried
