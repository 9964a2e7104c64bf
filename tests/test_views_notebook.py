"""A notebook executed headless (nbclient) and converted by nbconvert keeps the static picture."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def test_saved_notebook_and_its_html_show_the_final_run(tmp_path):
    import nbclient
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (
        "%load_ext ipydistribute",
        "%cluster start --workers 2",
        "%%distribute x in range(20) --batch 1 --reduce sum --name saved\nx * 3",
        "%cluster stop",
    )]
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=180,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[2].outputs
    pictures = [o for o in outputs if "text/html" in o.get("data", {})
                and "ipydistribute-run" in o["data"]["text/html"]]
    assert len(pictures) == 1
    data = pictures[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in data  # frozen: no live widget left
    assert "saved: finished" in data["text/plain"] and "workers busy" in data["text/plain"]
    assert any(o.get("data", {}).get("text/plain") == str(sum(x * 3 for x in range(20)))
               for o in outputs)

    html, _ = HTMLExporter().from_notebook_node(nb)
    run = html[html.index('class="ipydistribute-run"'):]
    assert 'data-state="finished"' in html
    assert re.search(r'<img [^>]*src="data:image/png;base64,', run)  # graph and stream, as a PNG
    # nbconvert sorts attributes: look for each one inside the row.
    map_row = re.search(r'<tr [^>]*data-group="map"[^>]*>', run).group(0)
    assert 'data-done="20"' in map_row and 'data-total="20"' in map_row  # progress of the map group
    assert "<svg" not in run  # untrusted pages and sanitizing renderers drop SVG
    assert len(data["image/png"]) < 40_000  # base64 of the picture, for renderers without HTML
    assert "workers busy" in run  # summary
