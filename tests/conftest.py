"""Shared fixtures: one real embedded cluster per test session, and real IPython shells."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from typing import Any

import pytest
from distributed.client import ensure_default_client
from waiting import wait_until

from ipydistribute.core import identity

os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

#: Workers of the session's embedded cluster: 2 CPU workers and 1 simulated GPU worker.
SESSION_WORKERS = 3


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """The embedded cluster of ipydistribute: 2 CPU workers and 1 simulated GPU worker."""
    from ipydistribute.core import cluster as cluster_mod

    handle = cluster_mod.start_local(workers=SESSION_WORKERS - 1, simulate_gpus=1, memory_limit="2GiB")
    # What lives the whole session (Dask, IPython, this cluster) is left out of later collections:
    # the full gc.collect() after each test (fixture ip) then scans only what tests made (62-238 ms
    # a call here before; 88 shell tests of six files took 16.6-21.3 s against 31.2-31.3 s).
    gc.freeze()
    yield handle
    cluster_mod.stop()


@pytest.fixture
def client(cluster: Any) -> Any:
    import ipydistribute
    from ipydistribute.core import cluster as cluster_mod

    if cluster_mod.current(start=False)[0] is not cluster:  # a test switched clusters: put the session's back
        ipydistribute.use(cluster)
    ensure_default_client(cluster.client)
    # A test before may have restarted or killed workers: start from the whole cluster (under load a
    # restart outlasted the next test's start: "the cluster has no workers").
    wait_until(lambda: len(identity.workers(cluster.client)) >= SESSION_WORKERS, 120,
               f"the session cluster's {SESSION_WORKERS} workers")
    return cluster.client


@pytest.fixture
def detached() -> Iterator[None]:
    """This test's own clusters replace the current one; the session's comes back after."""
    from cluster_slot import own_cluster_slot

    with own_cluster_slot():
        yield


@pytest.fixture(scope="session")
def _ipython() -> Any:
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython()
    shell.run_line_magic("load_ext", "ipydistribute")
    return shell


@pytest.fixture
def ip(_ipython: Any, client: Any) -> Iterator[Any]:
    """A real InteractiveShell with the extension loaded, on the session's cluster; its
    namespace is cleaned after each test."""
    before = set(_ipython.user_ns)
    yield _ipython
    for name in set(_ipython.user_ns) - before:
        del _ipython.user_ns[name]
    gc.collect()


@pytest.fixture
def notebook_warnings() -> Iterator[None]:
    """Warning filters as a fresh kernel has them. The notebook's filters travel to the items,
    and pytest's own (``filterwarnings = error``) would turn an item's warning into its failure."""
    import warnings

    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("default")
        yield
