"""``%debug`` in a real kernel: pdb over the Jupyter stdin channel, in the failed item's frame."""

from __future__ import annotations

import queue

import pytest
from kernel_helpers import CLUSTER_SETUP, Kernel
from waiting import wait_until

pytestmark = pytest.mark.slow


def _answering(kernel: Kernel, code: str, answers: list[str], timeout: float = 120) -> tuple[str, list[str]]:
    """Run ``code``, typing ``answers`` one per input request (as a frontend user at pdb's prompt);
    returns the text the cell printed and the prompts it asked with."""
    msg_id = kernel.kc.execute(code, allow_stdin=True)
    pending, prompts, text = list(answers), [], []

    def answered_and_idle() -> bool:
        try:
            request = kernel.kc.get_stdin_msg(timeout=0.05)
            if request["msg_type"] == "input_request":
                prompts.append(request["content"]["prompt"])
                kernel.kc.input(pending.pop(0) if pending else "q")
        except queue.Empty:
            pass
        msg = kernel.next_output(msg_id, 0.05)
        if msg is None:
            return False
        if msg["msg_type"] == "stream":
            text.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            text.append("\n".join(msg["content"]["traceback"]))
        return msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"

    wait_until(answered_and_idle, timeout, f"the end of {code!r}", log=lambda: "".join(text), interval=0)
    return "".join(text), prompts


def test_debug_after_a_failed_item_prints_its_variables_from_pdb():
    with Kernel() as kernel:
        kernel.ok(CLUSTER_SETUP, timeout=180)
        kernel.ok("scale = 10")
        failed = kernel.run("%%distribute x in range(12) --view none\n"
                            "def check(v):\n    y = v * scale\n    if v == 7:\n        raise ValueError(f'bad {y}')\n"
                            "    return y\ncheck(x)")
        assert failed.status == "error" and failed.ename == "CellError"
        kernel.ok("scale = 99")
        printed, prompts = _answering(kernel, "%debug", ["p y", "p v", "p scale", "q"])
        assert printed.startswith("%debug: re-running item #7 (7) of cell"), printed
        assert len(prompts) == 4 and all("ipdb>" in p for p in prompts)
        values = [line.strip() for line in printed.splitlines()]
        assert values[-3:] == ["70", "7", "10"], printed  # y, v, and scale as it was at submit time

        kernel.ok("def risky(v):\n    half = v / 2\n    return 1 / (v - 3)")
        failed = kernel.run("ipydistribute.distribute(risky, range(6))")
        assert failed.ename == "CellError"
        printed, _ = _answering(kernel, "%debug", ["p half", "q"])
        assert "re-running item #3 (3) of distribute" in printed
        assert printed.splitlines()[-1].strip() == "1.5", printed
