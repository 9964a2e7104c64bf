"""Loading the extension: nothing at import, magics registered and removed, help available."""

from __future__ import annotations

import subprocess
import sys


def test_import_starts_nothing_and_imports_no_dask():
    code = ("import threading, sys\nbefore = threading.active_count()\nimport ipydistribute\n"
            "print(threading.active_count() - before, 'distributed' in sys.modules, 'ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "False", "False"]


def test_load_twice_is_harmless_and_unload_removes_the_magics(_ipython):
    magics = _ipython.magics_manager.magics
    _ipython.run_line_magic("load_ext", "ipydistribute")
    _ipython.run_line_magic("reload_ext", "ipydistribute")
    assert "distribute" in magics["cell"] and "distribute" in magics["line"] and "cluster" in magics["line"]
    _ipython.run_line_magic("unload_ext", "ipydistribute")
    assert "distribute" not in magics["cell"] and "cluster" not in magics["line"]
    _ipython.run_line_magic("load_ext", "ipydistribute")
    assert "distribute" in magics["cell"]


def test_help_shows_the_reference_with_examples(_ipython):
    doc = _ipython.find_cell_magic("distribute").__doc__
    assert "%%distribute x in range(1000) --reduce sum --out total" in doc
    for option in ("--reduce", "--batch", "--gpu", "--keep", "--nowait", "--on-error", "--all", "--out"):
        assert option in doc
