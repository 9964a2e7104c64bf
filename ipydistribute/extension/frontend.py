"""What the notebook page needs before a run view can draw: BokehJS, loaded inline.

``jupyter_bokeh.BokehModel`` draws with the BokehJS of the page; JupyterLab 4 and Notebook 7
do not have it until a cell loads it, and there is no CDN offline, so the extension puts the
inline copy into the page when it loads, with no step for the user.

The inline copy is about 8 MB. Once the page has run it, the output is replaced by one line,
so saved notebooks do not carry it (the static pictures they keep need no BokehJS).
"""

from __future__ import annotations

import threading
from typing import Any

#: Seconds the loader output stays before it is replaced (the page runs it on arrival).
LOADER_SECONDS = 3.0


def ensure_bokehjs(shell: Any) -> bool:
    """Load BokehJS inline into the page of ``shell``'s kernel; returns whether it did.

    Called by ``%load_ext ipydistribute``. A terminal IPython (no kernel, no page) is skipped.
    """
    if getattr(shell, "kernel", None) is None:
        return False
    from bokeh.io import output_notebook
    from bokeh.resources import INLINE
    from IPython.display import display
    from IPython.utils.capture import capture_output

    with capture_output(stdout=False, stderr=False, display=True) as captured:
        output_notebook(INLINE, hide_banner=True)
    handles = [display(out.data, metadata=out.metadata, raw=True, display_id=True) for out in captured.outputs]
    timer = threading.Timer(LOADER_SECONDS, _shrink, args=(handles,))
    timer.daemon = True
    timer.start()
    return True


def _shrink(handles: list[Any]) -> None:
    for handle in handles:
        handle.update({"text/plain": "(BokehJS loaded for the live views)"}, raw=True)
