"""Modules of the notebook's folder travel with each run, and an edited one reaches the workers
on the next run (real cluster, real shell)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ipydistribute


@pytest.fixture
def notebook_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder the kernel works in and imports from, as a notebook's own folder is."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    importlib.invalidate_caches()


def test_a_module_edited_between_two_runs_gives_the_new_values(ip: Any, notebook_folder: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    write(notebook_folder / "helper_scale.py", "FACTOR = 1\ndef scale(x):\n    return x * FACTOR\n")
    cell = "import helper_scale\nhelper_scale.scale(x)"
    assert ip.run_cell_magic("distribute", "x in range(6) --view none", cell) == list(range(6))
    assert "changed since the last run" not in capsys.readouterr().out
    write(notebook_folder / "helper_scale.py", "FACTOR = 10\ndef scale(x):\n    return x * FACTOR\n")
    assert ip.run_cell_magic("distribute", "x in range(6) --view none", cell) == [x * 10 for x in range(6)]
    out = capsys.readouterr().out
    assert out.count("helper_scale changed since the last run: the workers use the new version") == 1


def test_a_reloaded_function_captured_from_a_module_runs_its_new_code(ip: Any, notebook_folder: Path) -> None:
    write(notebook_folder / "helper_reload.py", "def f(x):\n    return ('old', x)\n")
    ip.run_cell("from helper_reload import f")
    assert ip.run_cell_magic("distribute", "x in range(3) --view none", "f(x)") == [("old", x) for x in range(3)]
    # A different length: Python's own .pyc check (mtime in whole seconds, and size) would
    # otherwise let the kernel's reload read the old bytecode of a file rewritten within a second.
    write(notebook_folder / "helper_reload.py", "def f(x):\n    return ('new', x)  # edited\n")
    ip.run_cell("import importlib, helper_reload\nimportlib.reload(helper_reload)\nfrom helper_reload import f")
    assert ip.run_cell_magic("distribute", "x in range(3) --view none", "f(x)") == [("new", x) for x in range(3)]
    assert ipydistribute.distribute(ip.user_ns["f"], range(2)) == [("new", 0), ("new", 1)]


def test_a_package_and_the_local_modules_it_imports_travel_too(ip: Any, notebook_folder: Path) -> None:
    write(notebook_folder / "helper_pkg" / "__init__.py", "from .inner import twice\n")
    write(notebook_folder / "helper_pkg" / "inner.py", "import helper_base\ndef twice(x):\n"
          "    return helper_base.BASE + 2 * x\n")
    write(notebook_folder / "helper_base.py", "BASE = 100\n")
    cell = "from helper_pkg import twice\ntwice(x)"
    assert ip.run_cell_magic("distribute", "x in range(4) --view none", cell) == [100 + 2 * x for x in range(4)]
    write(notebook_folder / "helper_base.py", "BASE = 200\n")
    assert ip.run_cell_magic("distribute", "x in range(4) --view none", cell) == [200 + 2 * x for x in range(4)]


def test_installed_packages_and_the_standard_library_do_not_travel(notebook_folder: Path) -> None:
    from ipydistribute.core import localmodules

    write(notebook_folder / "helper_only.py", "X = 1\n")
    found = localmodules.for_run("import json, numpy, dask\nimport helper_only", [])
    assert list(found) == ["helper_only"]


def test_the_notebooks_imported_modules_are_looked_up_again_only_after_an_import(notebook_folder: Path) -> None:
    import os

    from ipydistribute.core import localmodules

    folder, excluded = os.path.realpath(notebook_folder), localmodules._excluded()
    write(notebook_folder / "helper_first.py", "A = 1\n")
    write(notebook_folder / "helper_second.py", "B = 2\n")
    assert "helper_first" not in localmodules._loaded_local(folder, excluded)
    importlib.import_module("helper_first")
    assert "helper_first" in localmodules._loaded_local(folder, excluded)  # an import: asked again
    walks = localmodules._real_module_path.cache_info()
    assert "helper_first" in localmodules._loaded_local(folder, excluded)
    assert localmodules._real_module_path.cache_info() == walks  # nothing imported: the last answer
    del sys.modules["helper_first"]
    importlib.import_module("helper_second")  # as many modules as before, another one last
    assert localmodules._loaded_local(folder, excluded).count("helper_second") == 1
    assert "helper_first" not in localmodules._loaded_local(folder, excluded)


def test_a_modules_files_are_parsed_again_only_after_an_edit(notebook_folder: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import time

    from ipydistribute.core import localmodules

    write(notebook_folder / "helper_cached" / "__init__.py", "from .part import A\n")
    write(notebook_folder / "helper_cached" / "part.py", "import helper_leaf\nA = 1\n")
    write(notebook_folder / "helper_leaf.py", "L = 1\n")
    parsed: list[str] = []
    real = localmodules.imported_names
    monkeypatch.setattr(localmodules, "imported_names", lambda source: parsed.append(source) or real(source))

    def age(path: Path, seconds: float) -> None:
        stamp = time.time_ns() - int(seconds * 1e9)
        os.utime(path, ns=(stamp, stamp))

    localmodules.collect(["helper_cached"])
    localmodules.collect(["helper_cached"])
    assert len(parsed) == 6  # just written: each file read again (its stamp may not show a second edit yet)
    for path in notebook_folder.rglob("*.py"):
        age(path, 60)
    time.sleep(1.1)  # the change time too (utime set it to now) leaves the racy window
    first = localmodules.collect(["helper_cached"])
    assert len(parsed) == 9 and sorted(first) == ["helper_cached", "helper_leaf"]
    assert localmodules.collect(["helper_cached"]) == first
    assert len(parsed) == 9  # unchanged and old: neither read nor parsed
    write(notebook_folder / "helper_cached" / "part.py", "import helper_leaf\nA = 2\n")  # the same size
    edited = localmodules.collect(["helper_cached"])
    assert len(parsed) == 10
    assert ("helper_cached/part.py", "import helper_leaf\nA = 2\n") in edited["helper_cached"].files
    assert edited["helper_cached"].digest != first["helper_cached"].digest
    assert edited["helper_leaf"] == first["helper_leaf"]
