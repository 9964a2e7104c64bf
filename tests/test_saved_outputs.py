"""Refreshed notebooks keep no widget that would read "model not found" once its kernel is gone."""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_notebook, new_output

from ipydistribute.tools.refresh_notebooks import WIDGET_MIME, trim_outputs


def test_a_widget_with_its_own_html_keeps_only_the_html():
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    cluster = new_output("display_data", data={WIDGET_MIME: view, "text/html": "<table>cpu-0</table>",
                                               "text/plain": "cluster"})
    bare = new_output("display_data", data={WIDGET_MIME: view, "text/plain": "IntSlider(...)"})
    nb = new_notebook(cells=[new_code_cell("%cluster start", outputs=[cluster, bare])])
    trim_outputs(nb)
    kept, untouched = nb.cells[0].outputs
    assert WIDGET_MIME not in kept["data"] and kept["data"]["text/html"] == "<table>cpu-0</table>"
    assert WIDGET_MIME in untouched["data"]  # nothing else to show: left to the saved widget state
