"""The run views on real runs of the session's cluster, read through their widgets' state."""

from __future__ import annotations

import base64
import io
import re
import threading
import time

import pytest
from PIL import Image
from waiting import wait_until

from ipydistribute.core import api, plan
from ipydistribute.core.monitor import TASK_LIMIT, ensure_plugin
from ipydistribute.widgets.factory import make_view
from ipydistribute.widgets.live import LiveDisplay
from ipydistribute.widgets.picture import PANEL_H, PANEL_W, SCALE
from ipydistribute.widgets.progress import ProgressView
from ipydistribute.widgets.runview import RunView

RANK = {"#e5e7eb": 0, "#cbd5e1": 1, "#fbbf24": 2, "#3b82f6": 3, "#16a34a": 4}


@pytest.fixture(autouse=True)
def monitor_before_runs(client):
    """As %%distribute does: the monitor sees a run from its first task on."""
    assert ensure_plugin(client) is None


def slow_square(x):

    time.sleep(0.03)
    return x * x


def drive(view, run, states=None):
    """Update the view as LiveDisplay does until the run ends; record the node colours."""
    while not run.wait(0.1):
        view.update(run.progress())
        if states is not None:
            states.append(list(view.state()["nodes"]["colour"]))
    return view.final_bundle(run.progress())


def test_graph_draws_each_task_and_states_only_move_forward(client, monkeypatch):
    # A tree of two levels (40 small partials would otherwise take one reduce task).
    monkeypatch.setattr(plan, "wide_fan_in", lambda leaves: 8)
    run = api.distribute(slow_square, range(40), batch=1, reduce=sum, wait=False, name="graph")
    view = RunView(run)
    seen: list[list[str]] = []
    bundle = drive(view, run, seen)
    assert run.result() == sum(x * x for x in range(40))
    state = view.state()
    # 40 map tasks, 5 reduce tasks of fan-in 8, 1 root: one node each, an edge per input.
    assert len(state["nodes"]["x"]) == 46
    assert len(state["edges"]["x0"]) == 45
    assert set(state["nodes"]["colour"]) == {"#16a34a"}
    labels = state["nodes"]["label"]
    assert sum(label.startswith("map[") for label in labels) == 40
    assert sum(label.startswith("reduce1[") for label in labels) == 5
    # Left to right: every reduce level sits right of the level it folds.
    xs = {label.split(":")[0]: x for label, x in zip(labels, state["nodes"]["x"], strict=True)}
    assert xs["map[0]"] < xs["reduce1[0]"] < xs["reduce2[0]"]
    # While it ran, some nodes were done and others not; no node ever went back.
    assert any(len(set(c)) > 1 and "#16a34a" in c for c in seen)
    for before, after in zip(seen, seen[1:], strict=False):
        if len(before) == len(after):
            assert all(RANK[b] <= RANK[a] for b, a in zip(before, after, strict=True))
    html = bundle["text/html"]
    assert re.findall(r'data-done="(\d+)" data-total="(\d+)"', html) == [("40", "40"), ("5", "5"), ("1", "1")]
    assert "workers busy" in html and "46 tasks" in html
    # The graph and stream as one PNG: in the HTML (kept by sanitizers) and on its own.
    picture = Image.open(io.BytesIO(base64.b64decode(bundle["image/png"])))
    assert picture.size == (2 * PANEL_W * SCALE, PANEL_H * SCALE)
    assert bundle["image/png"] in html and "<svg" not in html
    assert 'data-state="finished"' in html
    view.close()


def test_many_tasks_are_drawn_as_groups_with_counts(client):
    n = TASK_LIMIT + 100
    run = api.distribute(abs, range(n), batch=1, wait=False, name="many")
    view = RunView(run)
    bundle = drive(view, run)
    state = view.state()
    assert state["nodes"]["label"] == [f"map: {n:,}/{n:,}"]
    assert len(state["bars"]["left"]) > 0
    assert f'data-done="{n}" data-total="{n}"' in bundle["text/html"]
    view.close()


def test_two_runs_at_once_each_show_only_their_own_tasks(client):
    a = api.distribute(slow_square, range(12), batch=1, wait=False, name="first")
    b = api.distribute(slow_square, range(7), batch=1, reduce=sum, wait=False, name="second")
    views = RunView(a), RunView(b)
    for view, run in zip(views, (a, b), strict=True):
        drive(view, run)
    labels_a = views[0].state()["nodes"]["label"]
    labels_b = views[1].state()["nodes"]["label"]
    assert len(labels_a) == 12 and all(label.startswith("map[") for label in labels_a)
    assert len(labels_b) == 7 + 1  # seven items, one reduce task
    assert all(g.name.endswith(a.token) for g in views[0].snapshot.groups)
    assert all(g.name.endswith(b.token) for g in views[1].snapshot.groups)
    for view in views:
        view.close()


def test_resources_name_every_worker_and_say_why_gpu_metrics_are_missing(client):
    run = api.distribute(abs, range(5), wait=False, name="res")
    view = RunView(run, gpu_reason="NVML is not installed")
    final = drive(view, run)["text/html"]
    view.update(run.progress())  # the live widgets, as while a run goes
    for html in (final, view.state()["resources"]):
        rows = dict(re.findall(r'data-worker="([^"]+)".*?class="ipd-gpu">([^<]*)<', html, re.S))
        assert set(rows) == {"cpu-0", "cpu-1", "simgpu-0"}
        assert rows["cpu-0"] == "no GPU"
        assert rows["simgpu-0"].startswith("simulated GPU")
        assert re.search(r"\d+ % *</td>", html)  # CPU % of each worker
    view.close()


def test_stop_button_cancels_the_run(client):
    run = api.distribute(slow_square, range(400), batch=1, wait=False, name="stopme")
    view = RunView(run)
    view.update(run.progress())
    view.stop_button.click()
    assert run.wait(30)
    assert run.state == "cancelled"
    bundle = view.final_bundle(run.progress())
    assert 'data-state="cancelled"' in bundle["text/html"]
    view.close()


def test_views_share_their_layouts_and_styles_and_leave_them_open(client):
    """A view opens a comm for each widget a page shows, not for each one's layout and style."""
    runs = [api.distribute(abs, range(3), wait=False, name=f"shared{i}") for i in range(2)]
    views = [RunView(run) for run in runs]
    for view in views:
        view.live_bundle()
    first, second = views
    reachable = {id(w): w for w in _widget_tree(first.box)}
    own = [w for w in reachable.values() if id(w) not in {id(v) for v in _widget_tree(second.box)}]
    assert len(own) == 7  # the box, a row, the header, the Stop button, groups, picture, resources
    assert first.header.layout is second.picture.layout and first.header.style is second.groups.style
    for run in runs:
        run.wait(30)
    first.close()
    assert all(w.comm is None for w in own)
    assert first.header.layout.comm is not None and second.box.comm is not None  # shared, and the other view
    second.close()
    assert second.box.comm is None and second.header.layout.comm is not None


def _widget_tree(root):
    """Every widget ``root`` holds, itself included (children, layouts, styles)."""
    import ipywidgets

    found, stack = [], [root]
    while stack:
        widget = stack.pop()
        if not isinstance(widget, ipywidgets.Widget) or any(widget is w for w in found):
            continue
        found.append(widget)
        for name in widget.keys:
            value = getattr(widget, name, None)
            stack.extend(value if isinstance(value, (list, tuple)) else [value])
    return found


@pytest.mark.parametrize("kind", ["full", "progress"])
def test_live_display_freezes_into_html_and_leaves_no_thread(client, kind):
    before = {t.ident for t in threading.enumerate()}
    run = api.distribute(slow_square, range(30), batch=1, wait=False, name=f"live{kind}")
    view = make_view(run, kind, shell=None, force=True)
    assert isinstance(view, RunView if kind == "full" else ProgressView)
    live = LiveDisplay(run, view, None).start()
    run.wait()
    live.join(30)  # returns once the final picture is shown; the view is freed after it
    live.thread.join(30)
    assert not live.thread.is_alive()

    def left() -> list[str]:
        return [t.name for t in threading.enumerate() if t.ident not in before and t.name.startswith("ipydistribute")]

    # the run's driver thread returns right after it sets done
    wait_until(lambda: not left(), 30, "no thread of ours left", log=lambda: str(left()))
    if kind == "full":
        assert view.box.comm is None  # closed after the static picture replaced it
