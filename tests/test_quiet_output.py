"""What a cell shows in a real kernel: no Dask log record, one line for a stopped run, only the
cell's lines for a syntax error, and labels that are the prompt's number."""

from __future__ import annotations

import re

import pytest
from kernel_helpers import CLUSTER_SETUP, Kernel

pytestmark = pytest.mark.slow

ENGINE = re.compile(r"ipydistribute/|threading\.py|distributed/")


def test_failures_interrupts_and_syntax_errors_show_only_what_the_user_needs():
    with Kernel() as kernel:
        kernel.ok(CLUSTER_SETUP, timeout=180)

        failed = kernel.run("%%distribute x in range(6) --batch 1\nif x == 3:\n    raise ValueError('bad item')\nx")
        assert failed.ename == "CellError"
        assert "bad item" in failed.text
        assert "distributed." not in failed.text and "Compute Failed" not in failed.text
        assert not ENGINE.search(failed.text), failed.text

        msg_id = kernel.submit("%%distribute x in range(40) --batch 1\nimport time\n"
                               "print('started', x, flush=True)\ntime.sleep(0.5)\nx")
        kernel.wait_for_output(msg_id, "started", 3)  # the items run (and one has finished)
        kernel.interrupt()
        stopped = kernel.collect(msg_id, timeout=30)
        error = [o for o in stopped.outputs if o["msg_type"] == "error"][0]["content"]
        assert error["ename"] == "RunStopped"
        assert len(error["traceback"]) == 1, error["traceback"]
        assert re.search(r"cell \d+ stopped: \d+/40 items done · tasks left on the cluster: 0",
                         error["traceback"][0])
        assert "distributed." not in stopped.text and "KeyboardInterrupt" not in stopped.text

        syntax = kernel.run("%%distribute x in range(3)\ny = (x +\n")
        assert syntax.status == "error"
        assert "SyntaxError" in syntax.text and "y = (x +" in syntax.text
        assert not ENGINE.search(syntax.text) and "Traceback" not in syntax.text, syntax.text

        # The label is the prompt's number (In [N]), in the view and in tracebacks.
        count = int(kernel.ok("get_ipython().execution_count").value())  # already the next prompt
        labelled = kernel.run("%%distribute x in range(2) --view progress\n1 / (x - 1)")
        assert f"<cell {count}>" in labelled.text and f"of cell {count} failed" in labelled.text
