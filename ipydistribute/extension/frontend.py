"""What the notebook page needs before a run view can draw: BokehJS, loaded inline.

``jupyter_bokeh.BokehModel`` draws with the BokehJS of the page; JupyterLab 4 and Notebook 7
do not have it until a cell loads it, and there is no CDN offline, so the extension puts the
inline copy into the page when it loads, with no step for the user.
"""

from __future__ import annotations

from typing import Any


def ensure_bokehjs(shell: Any) -> bool:
    """Load BokehJS inline into the page of ``shell``'s kernel; returns whether it did.

    Called by ``%load_ext ipydistribute``. A terminal IPython (no kernel, no page) is skipped.
    """
    if getattr(shell, "kernel", None) is None:
        return False
    from bokeh.io import output_notebook
    from bokeh.resources import INLINE

    output_notebook(INLINE, hide_banner=True)
    return True
