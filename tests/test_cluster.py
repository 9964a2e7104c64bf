"""``%cluster`` and the embedded cluster: subcommands, GPU workers (simulated), scaling,
restart, sockets on the loopback address, the cluster widget, and no process or thread left."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from typing import Any

import dask
import psutil
import pytest
from cluster_slot import own_cluster_slot
from distributed.client import ensure_default_client
from IPython.core.error import UsageError
from waiting import wait_until

from ipydistribute.core import cluster as cluster_mod
from ipydistribute.core import identity
from ipydistribute.core.cluster_snapshot import take
from ipydistribute.core.errors import CellError, SpecError
from ipydistribute.core.on_scheduler import in_process_scheduler
from ipydistribute.core.security import tls_security
from ipydistribute.kernel_magics.cluster_magic import literal_options

LOOPBACK = "127.0.0.1"


def listening(pid: int) -> set[tuple[str, int]]:
    try:
        conns = psutil.Process(pid).net_connections(kind="inet")
    except psutil.NoSuchProcess:
        return set()
    return {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}


def worker_names(handle: Any) -> list[str]:
    return sorted(str(w["name"]) for w in identity.workers(handle.client).values())


@pytest.fixture(scope="module")
def local() -> Iterator[Any]:
    """A cluster of this module: 1 CPU worker and 1 simulated GPU worker; with the sockets the
    kernel (here: the test process) opened for it."""
    saved = cluster_mod.chosen()
    cluster_mod.use(None)  # so that start_local does not close the session's cluster
    before = listening(os.getpid())
    handle = cluster_mod.start_local(workers=1, simulate_gpus=1, memory_limit="1GiB")
    handle.new_sockets = listening(os.getpid()) - before
    cluster_mod.use(saved)  # tests make this one current with on_local
    if saved is not None and saved.alive():
        ensure_default_client(saved.client)
    yield handle
    if cluster_mod.chosen() is handle:
        cluster_mod.use(None)
    handle.client.close()
    handle.cluster.close()


@pytest.fixture
def on_local(local: Any) -> Iterator[Any]:
    """``local`` as the current cluster for this test (the session's comes back after)."""
    saved = cluster_mod.chosen()
    cluster_mod.use(local)
    ensure_default_client(local.client)
    yield local
    cluster_mod.use(saved)
    if saved is not None and saved.alive():
        ensure_default_client(saved.client)


# --- the magic line ---------------------------------------------------------------------------


def test_help_describes_every_subcommand(_ipython: Any) -> None:
    doc = _ipython.find_line_magic("cluster").__doc__
    for text in ("%cluster start", "%cluster connect", "%cluster new", "%cluster scale", "%cluster adapt",
                 "%cluster status", "%cluster restart", "%cluster stop", "--simulate-gpus", "--tls-ca-file",
                 "--tls-key", "--timeout", "key=value"):
        assert text in doc


@pytest.mark.parametrize(("line", "expected"), [
    ("bogus", "no subcommand 'bogus'"),
    ("scale", "%cluster scale: the following arguments are required: N"),
    ("scale two", "invalid int value: 'two'"),
    ("scale -1", "0 or more"),
    ("adapt 3 1", "0 <= MIN <= MAX"),
    ("start --threads 0", "--threads must be at least 1"),
    ("start --gpus lots", "--gpus takes auto, none or a number"),
    ("start --gpus 1", "use --simulate-gpus 1"),
    ("start --password hunter2", "unrecognized arguments"),
    ("connect", "the following arguments are required: address"),
    ("connect localhost", "is not a scheduler address"),
    ("connect tcp://127.0.0.1:8786 --tls-cert x.pem", "need a tls:// address"),
    ("connect tls://127.0.0.1:8786 --tls-ca-file /nonexistent/ca.pem", "no such file"),
    ("new LocalCluster", "is not an import path"),
    ("new distributed.NoSuchCluster", "distributed has no class NoSuchCluster"),
    ("new dask_nonexistent_pkg.SLURMCluster cores=4", "pip install dask-nonexistent-pkg"),
    ("new distributed.LocalCluster workers", "options as key=value"),
    ("new distributed.LocalCluster memory=4GB", "quote strings, like memory='4GB'"),
    ("new distributed.SpecCluster no_such_option=1", "rejected its options"),
])
def test_mistakes_are_one_line_usage_errors(_ipython: Any, line: str, expected: str) -> None:
    with own_cluster_slot():  # a mistake must not start or stop anything
        with pytest.raises(UsageError) as info:
            _ipython.run_line_magic("cluster", line)
        assert cluster_mod.chosen() is None
    message = str(info.value)
    assert expected in message and "\n" not in message


def test_options_of_new_are_python_literals() -> None:
    assert literal_options("cores=4 memory='16 GB' processes=False env={'A': '1 2'} hosts=['a', 'b']") == {
        "cores": 4, "memory": "16 GB", "processes": False, "env": {"A": "1 2"}, "hosts": ["a", "b"]}
    assert literal_options("") == {}
    with pytest.raises(SpecError, match="not a Python literal"):
        literal_options("cores=__import__('os')")


def test_tls_paths_are_checked_and_a_pasted_key_is_never_echoed(tmp_path: Any) -> None:
    secret = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----"
    with pytest.raises(SpecError) as info:
        tls_security(key=secret)
    assert "MIIE" not in str(info.value) and "path of a PEM file" in str(info.value)
    cert = tmp_path / "me.pem"
    cert.write_text("not checked here")
    with pytest.raises(SpecError, match="--tls-key needs --tls-cert"):
        tls_security(key=str(cert))
    security = tls_security(ca_file=str(cert), cert=str(cert), key=str(cert))
    assert security.tls_ca_file == str(cert) and security.require_encryption


def test_an_unreachable_scheduler_fails_within_the_timeout_and_keeps_the_cluster(ip: Any, cluster: Any) -> None:
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    with pytest.raises(UsageError, match=f"cannot reach the scheduler at tcp://127.0.0.1:{port} within 1 s"):
        ip.run_line_magic("cluster", f"connect tcp://127.0.0.1:{port} --timeout 1")
    assert cluster_mod.chosen() is cluster and cluster.alive()


# --- the embedded cluster -----------------------------------------------------------------------


def test_every_listening_socket_is_on_the_loopback_address(local: Any) -> None:
    assert local.new_sockets, "starting the cluster opened no listening socket in this process"
    worker_pids = list(local.client.run(os.getpid).values())
    assert len(worker_pids) == 2
    sockets = set(local.new_sockets)
    for pid in worker_pids:
        sockets |= listening(pid)
    assert len(sockets) >= len(local.new_sockets) + 2 * 2  # each worker: its server and its dashboard
    assert {ip for ip, _ in sockets} == {LOOPBACK}, sockets


def test_embedded_workers_sample_less_often_and_keep_the_rest_of_dasks_config(local: Any) -> None:
    def settings() -> tuple[Any, ...]:
        import dask

        return (dask.config.get("distributed.worker.profile.interval"),
                dask.config.get("distributed.admin.tick.interval"),
                dask.config.get("distributed.admin.event-loop"),
                dask.config.get("distributed.worker.memory.target"))

    found = set(local.client.run(settings).values())
    assert found == {("100ms", "200ms", "tornado", 0.6)}


def test_embedded_workers_collect_as_dasks_own_workers_do_and_never_scan_their_start_again(local: Any) -> None:
    from ipydistribute.core.worker_setup import GC_THRESHOLDS

    def collector() -> tuple[Any, ...]:
        import gc

        rows = [[i] for i in range(1000)]  # what items make is tracked as before
        return gc.get_threshold(), gc.get_freeze_count(), len(gc.get_objects()), gc.is_tracked(rows[0])

    for thresholds, set_aside, tracked, rows_tracked in local.client.run(collector).values():
        assert thresholds == GC_THRESHOLDS
        assert set_aside > 20_000  # Dask's and its libraries' objects, never scanned again
        assert tracked < set_aside and rows_tracked


def test_only_the_scheduler_measures_the_kernels_loop_and_the_nannies_watch_memory_as_dask_does(local: Any) -> None:
    from ipydistribute.core.embedded_servers import DASHBOARD_TIMERS, NANNY_DROPPED, SCHEDULER_INTERVALS_MS

    scheduler, nannies = local.cluster.scheduler, list(local.cluster.workers.values())
    assert len(nannies) == 2  # the scheduler and both nannies live in this process
    intervals = {name: pc.callback_time for name, pc in scheduler.periodic_callbacks.items()}
    assert {name: intervals[name] for name in SCHEDULER_INTERVALS_MS} == SCHEDULER_INTERVALS_MS
    import dask
    from dask.utils import parse_timedelta

    dasks = 1000 * parse_timedelta(dask.config.get("distributed.worker.memory.monitor-interval"), default="ms")
    for nanny in nannies:
        assert not set(NANNY_DROPPED) & set(nanny.periodic_callbacks)
        assert nanny.periodic_callbacks["memory_monitor"].callback_time == dasks
        assert nanny.periodic_callbacks["memory_monitor"].is_running()
    dashboards = [app for app in scheduler.http_application.applications if hasattr(app, "_ping_job")]
    assert [(app._ping_job.callback_time, app._cleanup_job.callback_time) for app in dashboards] == [
        (DASHBOARD_TIMERS["keep_alive_milliseconds"], DASHBOARD_TIMERS["check_unused_sessions_milliseconds"])]
    assert local.cluster._sync_interval == cluster_mod.CLUSTER_INFO_SYNC_SECONDS


def test_the_embedded_clusters_streams_send_at_once(local: Any) -> None:
    from ipydistribute.core.embedded_servers import STREAM_SEND_INTERVAL

    def worker_stream(dask_worker: Any) -> float:
        return float(dask_worker.batched_stream.interval)

    scheduler = local.cluster.scheduler
    assert len(scheduler.stream_comms) == 2  # a stream to each worker
    assert {stream.interval for stream in scheduler.stream_comms.values()} == {STREAM_SEND_INTERVAL} == {0.0}
    assert {stream.interval for stream in scheduler.client_comms.values()} == {STREAM_SEND_INTERVAL}
    assert set(local.client.run(worker_stream).values()) == {STREAM_SEND_INTERVAL}
    assert local.client.scheduler_comm.interval == STREAM_SEND_INTERVAL


def test_packing_waits_until_the_probes_tasks_left_the_kernel(local: Any) -> None:
    import time

    from ipydistribute.core.on_scheduler import wait_until_sent

    client, scheduler = local.client, local.cluster.scheduler
    futures = client.map(time.sleep, [0.3, 0.3, 0.3], pure=False)
    wait_until_sent(client, futures, 30)
    for future in futures:  # each on a worker, its message written, or already done
        task = scheduler.tasks.get(future.key)
        if not future.done():
            assert task is not None and task.processing_on is not None
            assert not scheduler.stream_comms[task.processing_on.address].buffer
    # A task that cannot leave (no such worker) is waited for no longer than asked.
    stuck = client.submit(time.sleep, 0, workers=["tcp://127.0.0.1:9"], allow_other_workers=False, pure=False)
    wait_until_sent(client, [stuck], 0.1)
    assert stuck.status == "pending"
    client.cancel([stuck, *futures])


def test_a_run_of_many_tasks_has_the_reports_to_the_kernel_held_2_ms_until_it_ends(ip: Any, on_local: Any) -> None:
    from ipydistribute.core.embedded_servers import MANY_TASKS, MANY_TASKS_REPORT_HOLD
    from ipydistribute.core.run import Run

    reports = on_local.cluster.scheduler.client_comms[on_local.client.id]
    cell = "import time\ntime.sleep(0.05)\nx"
    few = ip.run_cell_magic("distribute", "x in range(8) --batch 1 --nowait --view none", cell)
    assert isinstance(few, Run)
    wait_until(lambda: few.progress().items_done >= 1, 60, "an item of the run of 8 tasks")
    assert reports.interval == 0.0  # a cell of a few tasks hears of each at once
    few.result(timeout=60)
    many = ip.run_cell_magic("distribute", f"x in range({MANY_TASKS}) --batch 1 --nowait --view none", cell)
    assert isinstance(many, Run)
    wait_until(lambda: many.progress().items_done >= 1, 60, "an item of the run of many tasks")
    assert reports.interval == MANY_TASKS_REPORT_HOLD == 0.002
    many.cancel()
    wait_until(many.done, 60, "the cancelled run")
    assert reports.interval == 0.0


def test_a_runs_short_tasks_wait_on_the_workers_in_numbers_and_other_tasks_one_behind_each(
        ip: Any, on_local: Any) -> None:
    import math

    from distributed.diagnostics.plugin import SchedulerPlugin

    from ipydistribute.core.on_scheduler import ask_scheduler

    scheduler, client = on_local.cluster.scheduler, on_local.client
    configured = scheduler.WORKER_SATURATION
    assert configured == dask.config.get("distributed.scheduler.worker-saturation") == 1.1

    class MostHeld(SchedulerPlugin):  # type: ignore[misc]
        """The most tasks a worker held beyond Dask's configured slots, as tasks went to workers."""

        def __init__(self) -> None:
            self.most = -1

        def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
            if finish == "processing":
                self.most = max([self.most] + [len(ws.processing) - math.ceil(configured * ws.nthreads)
                                               for ws in scheduler.workers.values()])

    def held(form: Any) -> int:
        plugin = MostHeld()
        ask_scheduler(client, lambda dask_scheduler: dask_scheduler.add_plugin(plugin, name="most-held"))
        try:
            form()
        finally:
            ask_scheduler(client, lambda dask_scheduler: dask_scheduler.remove_plugin(name="most-held"))
        return plugin.most

    # A run's 400 tasks of microseconds each: more wait on a worker than Dask's slots.
    assert held(lambda: ip.run_cell_magic("distribute", "x in range(400) --batch 1 --reduce sum --view none",
                                          "x * x")) > 0
    assert scheduler.WORKER_SATURATION == configured  # the queue emptied: back to Dask's factor
    # Hand-written Dask on the same cluster keeps Dask's queuing, and so does a run of 50 ms items.
    assert held(lambda: client.gather(client.map(abs, range(400)))) == 0
    assert held(lambda: ip.run_cell_magic("distribute", "x in range(12) --batch 1 --view none",
                                          "import time\ntime.sleep(0.05)\nx")) == 0


def test_a_client_of_another_cluster_holds_its_messages_2_ms_not_dasks_10(local: Any) -> None:
    from distributed import Client

    from ipydistribute.core.cluster import CLIENT_SEND_INTERVAL

    other = Client(local.cluster.scheduler_address, set_as_default=False)
    try:
        assert other.scheduler_comm.interval == 0.01  # Dask's
        cluster_mod._send_sooner(cluster_mod.ClusterHandle(other, None, "remote"))
        assert other.scheduler_comm.interval == CLIENT_SEND_INTERVAL < 0.01
    finally:
        other.close()


def test_simulated_gpu_workers_are_marked_everywhere(local: Any) -> None:
    from ipydistribute.widgets.cluster_widget import table_html, table_text

    env = local.client.run(lambda: os.environ.get(cluster_mod.SIMULATED_ENV))
    names = {w["name"]: w["resources"] for w in identity.workers(local.client).values()}
    assert names == {"cpu-0": {}, "simgpu-0": {"GPU": 1}}
    by_name = {identity.workers(local.client)[a]["name"]: v for a, v in env.items()}
    assert by_name == {"cpu-0": None, "simgpu-0": "1"}
    snap = take(local)
    rows = {row.name: row for row in snap.workers}
    assert rows["simgpu-0"].gpu == "simulated" and rows["simgpu-0"].resources_text == "GPU=1 (simulated)"
    assert rows["cpu-0"].gpu == "" and snap.gpus_simulated == 1 and snap.gpus_real == 0
    assert "simulated" in snap.gpu_note
    assert "GPU=1 (simulated)" in table_html(snap) and "GPU=1 (simulated)" in table_text(snap)


def test_gpu_cells_run_only_on_the_simulated_gpu_worker(ip: Any, on_local: Any) -> None:
    ip.run_cell_magic("distribute", "x in range(8) --gpu 1 --batch 1 --view none --out where",
                      "import os\nfrom distributed import get_worker\n"
                      "(get_worker().name, os.environ.get('IPYDISTRIBUTE_SIMULATED_GPU'))")
    assert set(ip.user_ns["where"]) == {("simgpu-0", "1")}
    plain = ip.run_cell_magic("distribute", "x in range(8) --batch 1 --view none",
                              "from distributed import get_worker\nget_worker().name")
    assert set(plain) <= {"cpu-0", "simgpu-0"}


@pytest.mark.slow
def test_scale_adds_and_removes_cpu_workers_and_keeps_the_gpu_worker(ip: Any, on_local: Any) -> None:
    ip.run_line_magic("cluster", "scale 3")
    wait_until(lambda: len(worker_names(on_local)) == 3, what="3 workers")
    assert worker_names(on_local)[-1] == "simgpu-0"
    ip.run_line_magic("cluster", "scale 0")
    wait_until(lambda: worker_names(on_local) == ["simgpu-0"], what="only the GPU worker left")
    ip.run_line_magic("cluster", "adapt 1 2")
    assert on_local.adaptive == (1, 2) and take(on_local).adaptive == (1, 2)
    ip.run_line_magic("cluster", "scale 2")  # a fixed size ends adaptive scaling
    assert on_local.adaptive is None
    wait_until(lambda: len(worker_names(on_local)) == 2, what="2 workers")


@pytest.mark.slow
def test_restart_forgets_what_distribute_all_stored(ip: Any, on_local: Any, capsys: Any) -> None:
    ip.run_cell_magic("distribute", "--all --view none", "stored_on_worker = 42")
    seen = ip.run_cell_magic("distribute", "x in range(2) --view none", "stored_on_worker + x")
    assert seen == [42, 43]
    pids = sorted(on_local.client.run(os.getpid).values())
    ip.run_line_magic("cluster", "restart")
    assert "workers restarted" in capsys.readouterr().out
    assert sorted(on_local.client.run(os.getpid).values()) != pids
    with pytest.raises(CellError, match="NameError"):
        ip.run_cell_magic("distribute", "x in range(2) --view none", "stored_on_worker + x")
    # the preload came back with the restarted workers: the GPU worker is still marked simulated
    assert {row.name: row.gpu for row in take(on_local).workers}.get("simgpu-0") == "simulated"
    assert min(on_local.client.run(gc.get_freeze_count).values()) > 20_000


def test_dashboard_link_goes_through_the_hub_proxy(local: Any, monkeypatch: Any) -> None:
    port = local.client.scheduler_info()["services"]["dashboard"]
    assert local.dashboard_link == f"http://127.0.0.1:{port}/status"
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    with dask.config.set({"distributed.dashboard.link": "{scheme}://{host}:{port}/status"}):
        cluster_mod.configure_dashboard_link()
        assert local.dashboard_link == f"/user/ada/proxy/{port}/status"
        with dask.config.set({"distributed.dashboard.link": "https://hub.example/x/{port}"}):
            cluster_mod.configure_dashboard_link()  # a link the user chose stays
            assert local.dashboard_link == f"https://hub.example/x/{port}"


# --- the widget, and stopping -------------------------------------------------------------------


@pytest.mark.slow
def test_widget_scales_and_stops_leaving_no_process_and_no_thread() -> None:
    from ipydistribute.widgets.cluster_widget import ClusterWidget

    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    with own_cluster_slot():
        handle = cluster_mod.start_local(workers=1, gpus="none", memory_limit="1GiB")
        workers = set(handle.client.run(os.getpid).values())
        assert workers and workers <= {p.pid for p in me.children(recursive=True)}
        threads_before = threading.active_count()

        view = ClusterWidget(handle, interval=0.2)
        assert threading.active_count() == threads_before + 1
        bundle = view._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle
        assert "cpu-0" in bundle["text/html"] and "cpu-0" in bundle["text/plain"]
        assert not view._scale.disabled and not view._stop.disabled and view._reason.value == ""

        view._scale_n.value = 2
        view._scale.click()
        assert view._message.value == "scale: done"
        wait_until(lambda: len(view.snapshot.workers) == 2, what="the widget showing 2 workers")
        assert "cpu-1" in view._table.value
        workers |= set(handle.client.run(os.getpid).values())
        assert len(workers) == 2

        view._stop.click()
        assert cluster_mod.chosen() is None
        view.join(30)
        assert not view.poller.thread.is_alive()
        assert threading.active_count() <= threads_before
        assert view._stop.disabled and view._scale.disabled and "closed" in view._reason.value
        last = view._repr_mimebundle_()["text/html"]
        assert "closed" in last and "cpu-1" in last  # the saved picture keeps the last workers
        view.close()

    def worker_alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def ours(process: psutil.Process) -> bool:  # multiprocessing's resource tracker lives on
        try:
            return process.is_running() and "resource_tracker" not in " ".join(process.cmdline())
        except psutil.NoSuchProcess:
            return False

    wait_until(lambda: not any(worker_alive(p) for p in workers), timeout=20, what="worker processes gone")
    left = {p.pid for p in me.children(recursive=True) if ours(p)} - children_before
    assert not [p for p in left if worker_alive(p)]


@pytest.mark.slow
def test_new_starts_a_cluster_manager_by_import_path(ip: Any, capsys: Any) -> None:
    with own_cluster_slot():
        ip.run_line_magic("cluster", "new distributed.LocalCluster n_workers=1 threads_per_worker=1 "
                                     "processes=False dashboard_address='127.0.0.1:0'")
        handle = cluster_mod.chosen()
        assert handle is not None and handle.kind == "manager" and type(handle.cluster).__name__ == "LocalCluster"
        assert "cluster manager" in capsys.readouterr().out
        assert ip.run_line_magic("distribute", "x * 3 for x in range(4)") == [0, 3, 6, 9]
        with pytest.raises(UsageError, match="no worker offers GPU=1: start GPU workers"):
            ip.run_cell_magic("distribute", "x in range(4) --gpu 1 --view none", "x")
        cluster = handle.cluster
        ip.run_line_magic("cluster", "stop")
        assert cluster.status.name == "closed" and cluster_mod.chosen() is None


def test_the_python_api_shows_and_scales_the_current_cluster(on_local: Any) -> None:
    import ipydistribute
    from ipydistribute.widgets.cluster_widget import ClusterWidget

    view = ipydistribute.status()
    assert isinstance(view, ClusterWidget) and view.handle is on_local
    assert "simgpu-0" in view._table.value
    view.close()  # no widget left on the cluster: its refresh thread ends
    view.join(30)
    assert not view.poller.thread.is_alive()
    with pytest.raises(SpecError, match="0 <= MIN <= MAX"):
        ipydistribute.adapt(2, 1)


def test_the_worker_list_is_asked_fresh_not_read_from_a_cache_the_client_overwrites() -> None:
    import dask
    from distributed import Client, LocalCluster

    # The client refreshes its cached identity without workers (every 2 s; 5 ms here): Dask's
    # scheduler_info(n_workers=-1) could return that refresh instead of the workers it fetched.
    # Connected by address, the client asks by message (a cluster object of this process would
    # be asked directly).
    with dask.config.set({"distributed.client.scheduler-info-interval": "5ms"}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster.scheduler_address) as client:
        assert in_process_scheduler(client) is None
        seen = [len(identity.workers(client)) for _ in range(3000)]
    assert set(seen) == {2}


def test_the_embedded_clusters_results_come_from_the_workers_not_through_the_scheduler(ip: Any, on_local: Any) -> None:
    scheduler = on_local.cluster.scheduler
    passed_on: list[Any] = []
    through_scheduler = scheduler.handlers["gather"]

    async def gather(*args: Any, **kwargs: Any) -> Any:
        passed_on.append(kwargs.get("keys"))
        return await through_scheduler(*args, **kwargs)

    scheduler.handlers["gather"] = gather
    try:
        values = ip.run_cell_magic("distribute", "x in range(4) --view none", "bytes(100_000) * (x + 1)")
        gathered = on_local.client.gather(on_local.client.submit(len, b"abc"))
    finally:
        scheduler.handlers["gather"] = through_scheduler
    assert [len(v) for v in values] == [100_000, 200_000, 300_000, 400_000] and gathered == 3
    assert passed_on == []


def test_the_kernels_own_scheduler_is_asked_directly_and_a_remote_one_by_message(local: Any) -> None:
    from distributed import Client

    client = local.client
    assert in_process_scheduler(client) is local.cluster.scheduler
    future = client.submit(bytes, 50_000, pure=False)
    future.result()
    assert identity.task_sizes(client, [future.key]) == client.nbytes(keys=[future.key], summary=False)
    assert identity.task_sizes(client, [future.key])[future.key] >= 50_000
    # A client that reached the same scheduler by its address is served by messages, as any
    # remote scheduler: its loop is not the one the scheduler runs on.
    with Client(local.cluster.scheduler.address, set_as_default=False) as by_address:
        assert in_process_scheduler(by_address) is None
        assert identity.task_sizes(by_address, [future.key]) == identity.task_sizes(client, [future.key])
        assert set(identity.workers(by_address)) == set(identity.workers(client)) == set(
            client.sync(client.scheduler.identity, n_workers=-1)["workers"])


def test_large_batches_reach_the_kernels_scheduler_as_handles_and_outlive_a_worker(ip: Any, on_local: Any) -> None:
    import signal

    from ipydistribute.core import wire
    from ipydistribute.core.run import Run

    scheduler, client = on_local.cluster.scheduler, on_local.client
    graph_bytes: list[int] = []
    receive = scheduler.stream_handlers["update-graph"]

    async def update_graph(*args: Any, **kwargs: Any) -> Any:
        graph_bytes.append(sum(memoryview(frame).nbytes for frame in kwargs["expr_ser"].frames))
        return await receive(*args, **kwargs)

    ip.user_ns["numbers"] = numbers = list(range(10**6, 10**6 + 80_000))  # 4 batches of 100 kB pickled
    pids = client.run(os.getpid)
    scheduler.stream_handlers["update-graph"] = update_graph
    try:
        run = ip.run_cell_magic("distribute", "x in numbers --batch 20_000 --reduce sum --nowait --view none",
                                "sum(range(3_000)) * 0 + x * x")  # 0.5 s or more a batch
        assert isinstance(run, Run)

        def running() -> list[str]:
            return [ts.processing_on.address for ts in list(scheduler.tasks.values())
                    if "-map-" in str(ts.key) and ts.state == "processing" and ts.processing_on is not None]

        wait_until(lambda: bool(running()), 60, "a map task of the run running")
        os.kill(pids[running()[0]], signal.SIGKILL)  # the scheduler sends that batch again, from its copy
        assert run.result(timeout=120) == sum(x * x for x in numbers)
    finally:
        scheduler.stream_handlers["update-graph"] = receive
    assert max(graph_bytes) < 64 * 1024  # the 400 kB of items did not cross TCP to reach the scheduler
    assert wire._HANDED == {}
    wait_until(lambda: len(identity.workers(client)) == len(pids), 120, "the killed worker back")
