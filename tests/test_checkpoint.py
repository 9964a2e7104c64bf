"""The --checkpoint store without a cluster: keys, item hashes, atomic records, resuming."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

from ipydistribute.core.cellfunc import CellCode
from ipydistribute.core.checkpoint import CheckpointStore, check_directory, resume, run_key
from ipydistribute.core.errors import SpecError
from ipydistribute.core.fingerprint import fingerprint
from ipydistribute.core.task import Payload

REPO = Path(__file__).resolve().parents[1]

# Values as a notebook makes them: a helper function and a class compiled from a "cell file"
# whose name holds the kernel's pid (as ipykernel's does), so each process compiles them anew.
MAKE_VALUES = textwrap.dedent("""
    import os
    import numpy as np

    def make_values(pid):
        cell = f"/tmp/ipykernel_{pid}/cell.py"
        ns = {"__name__": "__main__"}
        source = ("\\n" * (pid % 7) + "from dataclasses import dataclass\\n"
                  "def helper(v):\\n    return v + 1\\n"
                  "def simulate(v, k=2):\\n    return helper(v) * k if v in {'a', 'b'} else v\\n"
                  "@dataclass\\nclass Config:\\n    rate: float\\n    tags: frozenset\\n")
        exec(compile(source, cell, "exec", dont_inherit=True), ns)
        return {"int": 7, "float": 0.25, "str": "abc", "tuple": (1, "b", 2.5), "none": None,
                "array": np.arange(12.0).reshape(3, 4), "int64": np.int64(5),
                "set": {"alpha", "beta", "gamma", "delta", "epsilon"},
                "nested": [{"x", "y", "z"}, {"k": frozenset("abcdef")}],
                "function": ns["simulate"], "class": ns["Config"],
                "instance": ns["Config"](0.1, frozenset({"a", "b", "c"}))}
""")


def _make_values(pid: int) -> dict:
    ns: dict = {}
    exec(MAKE_VALUES, ns)
    return ns["make_values"](pid)


def _cell_payload(source: str = "y = simulate(x)\ny", captured: dict | None = None,
                  reducer=None, label: str = "cell3") -> Payload:
    values = captured if captured is not None else {"simulate": _make_values(os.getpid())["function"]}
    return Payload(token="0badf00d", label=label, cell=CellCode.from_source(source, f"<cell {label}>", "x"),
                   captured={n: cloudpickle.dumps(v) for n, v in values.items()},
                   reducer=cloudpickle.dumps(reducer) if reducer is not None else None)


def test_stored_items_load_back_in_a_new_store(tmp_path):
    with CheckpointStore(tmp_path, "k1") as store:
        store.save([(0, fingerprint(10), {"loss": 0.5}), (1, fingerprint(11), np.arange(3))])
        store.save([(2, fingerprint(12), "two")])
    loaded = CheckpointStore(tmp_path, "k1").load()
    assert sorted(loaded) == [0, 1, 2]
    assert loaded[0] == (fingerprint(10), {"loss": 0.5})
    assert loaded[1][0] == fingerprint(11) and list(loaded[1][1]) == [0, 1, 2]
    assert loaded[2] == (fingerprint(12), "two")


def test_a_torn_record_is_ignored_with_a_warning_and_earlier_records_are_kept(tmp_path):
    with CheckpointStore(tmp_path, "k1") as store:
        store.save([(0, "h0", "zero")])
        store.save([(1, "h1", "one" * 1000)])
    [segment] = list((tmp_path / "k1").iterdir())
    data = segment.read_bytes()
    segment.write_bytes(data[:-500])  # the writer was killed in the middle of the second record
    reader = CheckpointStore(tmp_path, "k1")
    assert reader.load() == {0: ("h0", "zero")}
    assert len(reader.warnings) == 1 and "incomplete" in reader.warnings[0]
    assert segment.name in reader.warnings[0]


def test_a_corrupted_record_and_a_foreign_file_are_ignored(tmp_path):
    with CheckpointStore(tmp_path, "k1") as store:
        store.save([(0, "h0", "zero")])
    [segment] = list((tmp_path / "k1").iterdir())
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF  # same length, wrong bytes: the CRC catches it
    segment.write_bytes(bytes(data))
    (tmp_path / "k1" / "zzz-other.ckpt").write_bytes(b"not a checkpoint at all")
    reader = CheckpointStore(tmp_path, "k1")
    assert reader.load() == {}
    assert len(reader.warnings) == 2


def test_each_store_writes_its_own_segment_and_later_records_win(tmp_path):
    with CheckpointStore(tmp_path, "k1") as first:
        first.save([(0, "old", "first value")])
    with CheckpointStore(tmp_path, "k1") as second:
        second.save([(0, "new", "second value")])
    assert len(list((tmp_path / "k1").iterdir())) == 2
    assert CheckpointStore(tmp_path, "k1").load() == {0: ("new", "second value")}


def test_saves_from_many_threads_all_arrive(tmp_path):
    store = CheckpointStore(tmp_path, "k1")

    def save(start: int) -> None:
        for i in range(start, start + 50):
            store.save([(i, f"h{i}", i * i)])

    threads = [threading.Thread(target=save, args=(s,)) for s in range(0, 400, 50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    assert CheckpointStore(tmp_path, "k1").load() == {i: (f"h{i}", i * i) for i in range(400)}


def test_an_unpicklable_value_is_one_line_naming_the_item_and_stores_nothing(tmp_path):
    store = CheckpointStore(tmp_path, "k1")
    with pytest.raises(SpecError, match=r"item #7 \(a _thread.lock\) cannot be stored") as info:
        store.save([(6, "h6", 1.0), (7, "h7", threading.Lock())])
    assert "\n" not in str(info.value)
    store.close()
    assert CheckpointStore(tmp_path, "k1").load() == {}


def test_hashes_and_keys_are_the_same_in_a_fresh_process(tmp_path):
    """Another process, another hash seed (set order), another cell file name (function code):
    the same items and the same cell give the same hashes and key."""
    script = MAKE_VALUES + textwrap.dedent("""
        import json, sys, cloudpickle
        from ipydistribute.core.cellfunc import CellCode
        from ipydistribute.core.checkpoint import run_key
        from ipydistribute.core.fingerprint import fingerprint
        from ipydistribute.core.task import Payload
        values = make_values(os.getpid())
        payload = Payload(token="0badf00d", label="cell9", cell=CellCode.from_source(
            "y = simulate(x)\\ny", "<cell cell9>", "x"),
            captured={"simulate": cloudpickle.dumps(values["function"])})
        print(json.dumps({"hashes": {k: fingerprint(v) for k, v in values.items()},
                          "key": run_key(payload, "map")}))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    there = json.loads(out)
    here = {k: fingerprint(v) for k, v in _make_values(os.getpid()).items()}
    assert there["hashes"] == here
    assert there["key"] == run_key(_cell_payload(), "map")


def test_plain_cloudpickle_would_not_be_stable(tmp_path):
    """Why fingerprints exist: the pickled bytes of a notebook function differ with its cell file."""
    a, b = _make_values(1)["function"], _make_values(2)["function"]
    assert cloudpickle.dumps(a) != cloudpickle.dumps(b)
    assert fingerprint(a) == fingerprint(b)


def test_hashes_tell_values_apart():
    values = [1, 1.0, "1", b"1", (1,), [1], {1}, frozenset({1}), {1: 1}, np.arange(3), np.arange(3.0),
              np.arange(4), None, True]
    assert len({fingerprint(v) for v in values}) == len(values)
    assert fingerprint({"b", "a"}) == fingerprint({"a", "b"})
    assert fingerprint(lambda x: x + 1) != fingerprint(lambda x: x + 2)


def test_a_changed_cell_value_reducer_or_mode_gives_another_key():
    def simulate_v2(v, k=2):
        return v * k

    base = run_key(_cell_payload(), "map")
    assert run_key(_cell_payload(), "map") == base
    assert run_key(_cell_payload(label="cell12"), "map") == base  # the execution count is not the cell
    changed = [
        run_key(_cell_payload(source="y = simulate(x) + 1\ny"), "map"),
        run_key(_cell_payload(captured={"simulate": simulate_v2}), "map"),
        run_key(_cell_payload(captured={"simulate": _make_values(1)["function"], "rate": 0.1}), "map"),
        run_key(_cell_payload(captured={"simulate": _make_values(1)["function"], "rate": 0.2}), "map"),
        run_key(_cell_payload(captured={"data": np.arange(5)}), "map"),
        run_key(_cell_payload(captured={"data": np.arange(5) * 2}), "map"),
        run_key(_cell_payload(reducer=sum), "map"),
        run_key(_cell_payload(reducer=max), "map"),
        run_key(_cell_payload(), "single"),
    ]
    assert len({base, *changed}) == len(changed) + 1


def test_a_function_payload_is_keyed_by_what_it_does():
    def payload(func):
        return Payload(token="0badf00d", label="distribute", func=cloudpickle.dumps(func))

    assert run_key(payload(lambda x: x * 2), "map") == run_key(payload(lambda x: x * 2), "map")
    assert run_key(payload(lambda x: x * 2), "map") != run_key(payload(lambda x: x * 3), "map")


def test_resume_takes_items_whose_index_and_hash_match(tmp_path):
    items = [f"item-{i}" for i in range(10)]
    first = resume(items, {})
    assert first.done == {} and first.todo == list(range(10))
    with CheckpointStore(tmp_path, "k1") as store:
        store.save([(i, first.hashes[i], i * 10) for i in range(6)])
    again = resume(items, CheckpointStore(tmp_path, "k1").load())
    assert again.done == {i: i * 10 for i in range(6)} and again.todo == [6, 7, 8, 9]
    assert again.notice("runs/x") == ("--checkpoint runs/x: 6 of 10 items were stored by an earlier run: "
                                      "computing the other 4")
    assert first.notice("runs/x") is None
    assert resume(items[:4], CheckpointStore(tmp_path, "k1").load()).notice("runs/x") == (
        "--checkpoint runs/x: all 4 items were stored by an earlier run")
    reordered = items[:2] + [items[3], items[2]] + items[4:]  # items 2 and 3 swapped
    moved = resume(reordered, CheckpointStore(tmp_path, "k1").load())
    assert sorted(moved.done) == [0, 1, 4, 5]


def test_an_item_that_cannot_be_pickled_is_named_in_one_line():
    with pytest.raises(SpecError, match=r"item 2 \(<unlocked _thread.lock object.*a _thread.lock\) cannot be sent"):
        resume([1, 2, threading.Lock()], {})


def test_another_key_in_the_directory_is_reported_once_in_one_line(tmp_path):
    with CheckpointStore(tmp_path, "old-key") as old:
        old.save([(i, "h", i) for i in range(25)])
        old.save([(25, "h", 25)])
    fresh = CheckpointStore(tmp_path, "new-key")
    stored = fresh.load()
    notice = fresh.changed_notice(stored)
    assert notice is not None and "\n" not in notice
    assert "changed since the stored run (26 items stored): computing all items again" in notice
    assert [(r.key, r.items) for r in fresh.other_runs()] == [("old-key", 26)]
    with CheckpointStore(tmp_path, "new-key") as store:
        store.save([(0, "h", 0)])
    assert fresh.changed_notice(fresh.load()) is None  # resuming its own results: nothing to say
    assert CheckpointStore(tmp_path, "lone").changed_notice({}) is not None
    assert CheckpointStore(tmp_path / "empty", "k").changed_notice({}) is None


def test_check_directory_accepts_a_new_path_and_creates_nothing(tmp_path):
    target = tmp_path / "a" / "b"
    assert check_directory(str(target)) == str(target)
    assert not (tmp_path / "a").exists()
    assert list(tmp_path.iterdir()) == []  # the write probe is gone


@pytest.mark.parametrize("where, message", [
    ("file", "is a file: give a directory"),
    ("file/sub", "which is a file: give a directory"),
    ("/proc/ipydistribute-ckpt", "cannot write in /proc"),
    ("", "needs a directory"),
])
def test_check_directory_refuses_in_one_line(tmp_path, where, message):
    (tmp_path / "file").write_text("x")
    path = where if where.startswith("/") or not where else str(tmp_path / where)
    with pytest.raises(SpecError, match=message) as info:
        check_directory(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("options, message", [
    ("--checkpoint {file}", "is a file: give a directory"),
    ("--checkpoint /proc/ipydistribute-ckpt", "cannot write in /proc"),
    ("--all --checkpoint {dir}", "--all runs a setup once per worker"),
])
def test_the_magic_refuses_a_bad_checkpoint_in_one_line_before_any_cluster(_ipython, tmp_path, options, message):
    from IPython.core.error import UsageError

    (tmp_path / "file").write_text("x")
    line = options.format(file=tmp_path / "file", dir=tmp_path / "d")
    if "--all" not in line:
        line = "x in range(3) " + line
    with pytest.raises(UsageError, match=message) as info:
        _ipython.run_cell_magic("distribute", line, "x")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "d").exists()


def test_the_python_api_refuses_a_bad_checkpoint_in_one_line(tmp_path):
    import ipydistribute

    (tmp_path / "file").write_text("x")
    with pytest.raises(SpecError, match="is a file: give a directory"):
        ipydistribute.distribute(abs, [1, 2], checkpoint=tmp_path / "file")


def test_the_help_lists_the_checkpoint_option(_ipython):
    from ipydistribute.kernel_magics.distribute import DistributeMagics

    assert "--checkpoint DIR" in DistributeMagics.distribute.__doc__


KERNEL_CELLS = [
    "import numpy as np\nfrom dataclasses import dataclass",
    "def simulate(v, k=2):\n    return v * k if v in {'a', 'b'} else v",
    "@dataclass\nclass Config:\n    rate: float\n    tags: frozenset",
    "config = Config(0.1, frozenset({'x', 'y', 'z'}))\ndata = np.linspace(0, 1, 50)\n"
    "items = [(i, f'name-{i}', {'p': i / 3}) for i in range(20)] + [{'set', 'of', 'words'}]",
    # As the magic does: the cell's code, then its captured values, then the key and item hashes.
    "import json\nfrom ipydistribute.core import api, checkpoint\nfrom ipydistribute.core.cellfunc import CellCode\n"
    "from ipydistribute.core.options import RunOptions\nfrom ipydistribute.core.run import make_payload\n"
    "label = f'cell{get_ipython().execution_count}'\n"
    "code = CellCode.from_source('simulate(x) * config.rate + data.sum()', f'<cell {label}>', 'x')\n"
    "payload = make_payload('cellN', '0badf00d', cell=code, options=RunOptions(),\n"
    "                       captured=api.capture(code.read_names, get_ipython().user_ns), topic=None)\n"
    "print(json.dumps({'key': checkpoint.run_key(payload, 'map'), 'captured': sorted(payload.captured),\n"
    "                  'items': [checkpoint.item_hash(i, v) for i, v in enumerate(items)]}))",
]


@pytest.mark.slow
def test_the_key_and_item_hashes_are_the_same_after_a_kernel_restart():
    """Real kernels: functions and classes defined in cells, a set among the items."""
    from kernel_helpers import Kernel

    seen = []
    for extra_cells in (0, 2):  # the second kernel runs other cells first: other execution counts
        with Kernel() as kernel:
            for _ in range(extra_cells):
                kernel.ok("pass")
            for cell in KERNEL_CELLS:
                reply = kernel.ok(cell)
            seen.append(json.loads(reply.text))
    assert seen[0]["captured"] == ["config", "data", "simulate"]
    assert seen[0] == seen[1]
