"""What items show besides print(), on the real cluster: warnings under the notebook's filters
(each once per run, with a count), and displays and matplotlib figures as images in the cell's
output and in the saved notebook (a real kernel through nbclient)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

WARNS = """
import warnings
warnings.warn("quiet: converged late", UserWarning)
warnings.warn("loud: the same for every item", RuntimeWarning)
x
"""


def test_filtered_warnings_do_not_show_and_a_repeated_one_shows_once_with_a_count(
        ip: Any, notebook_warnings: None, capsys: pytest.CaptureFixture[str]) -> None:
    warnings.filterwarnings("ignore", message="quiet")
    values = ip.run_cell_magic("distribute", "x in range(12) --batch 3 --view none", WARNS)
    assert values == list(range(12))
    err = capsys.readouterr().err
    assert "quiet" not in err
    shown = [line for line in err.splitlines() if line.startswith("[item")]
    assert sum("RuntimeWarning: loud: the same for every item" in line for line in shown) == 1
    assert "the warning above was repeated 11 more times in this run" in err


def test_without_a_filter_each_warning_shows_once_per_run(ip: Any, notebook_warnings: None,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_cell_magic("distribute", "x in range(4) --batch 1 --view none", WARNS)
    err = capsys.readouterr().err
    assert shown_lines(err, "UserWarning: quiet: converged late") == 1
    assert "repeated 3 more times" in err
    ip.run_cell_magic("distribute", "x in range(2) --view none", WARNS)  # a new run shows it again
    assert shown_lines(capsys.readouterr().err, "UserWarning: quiet: converged late") == 1


def shown_lines(err: str, text: str) -> int:
    return sum(text in line for line in err.splitlines() if line.startswith("[item"))


NOTEBOOK_CELLS = [
    "%load_ext ipydistribute\n%cluster start --workers 2",
    # plt.show() in an item, and display() of a rich object
    "%%distribute n in [1, 2] --view none\nimport matplotlib.pyplot as plt\n"
    "plt.plot(range(n + 2))\nplt.title(f'item {n}')\nplt.show()\ndisplay({'n': n})",
    "import dask\ndask.config.set({'ipydistribute.display-limit': 3})",
    # a figure as the last expression; more figures than the cap
    "%%distribute n in range(5) --view none --batch 1\nimport matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots()\nax.bar([0], [n])\nfig",
]


def _outputs_of(nb: Any, index: int) -> list[Any]:
    return list(nb.cells[index].outputs)


def test_figures_and_displays_from_items_reach_the_output_and_the_saved_notebook(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    # the kernel's PYTHONPATH, for this test only (the tests after it see the variable as it was)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    saved = tmp_path / "figures.ipynb"
    nbformat.write(nb, saved)
    reread = nbformat.read(saved, as_version=4)

    shown = _outputs_of(reread, 1)
    pngs = [o for o in shown if o.output_type == "display_data" and "image/png" in o.data]
    assert len(pngs) == 2
    text = "".join(o.get("text", "") for o in shown if o.output_type == "stream")
    assert "[item 0 @" in text and "[item 1 @" in text
    dicts = [o.data["text/plain"] for o in shown if o.output_type == "display_data" and "image/png" not in o.data]
    assert sorted(dicts) == ["{'n': 1}", "{'n': 2}"]

    capped = _outputs_of(reread, 3)
    pngs = [o for o in capped if o.output_type == "display_data" and "image/png" in o.data]
    assert len(pngs) == 3
    text = "".join(o.get("text", "") for o in capped if o.output_type == "stream")
    assert "[2 more displays from items were not shown: ipydistribute.display-limit is 3 per run]" in text


def warn_outside_items() -> str:
    import warnings

    warnings.warn("from the worker itself", UserWarning, stacklevel=1)
    return "done"


def test_an_error_filter_fails_the_item_and_leaves_the_workers_own_threads_alone(
        ip: Any, notebook_warnings: None) -> None:
    import ipydistribute

    warnings.simplefilter("error")  # every warning
    with pytest.raises(ipydistribute.CellError, match="UserWarning: quiet: converged late"):
        ip.run_cell_magic("distribute", "x in range(2) --view none", WARNS)
    # The filter held in the items only: Dask's own threads on those workers keep the worker's filters.
    client = ipydistribute.get_client()
    assert set(client.run(warn_outside_items).values()) == {"done"}
