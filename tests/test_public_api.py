"""The public names of ``ipydistribute``: importable, lazy, the engine's own objects."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

import ipydistribute

ENGINE_TYPES = {
    "CellError": "ipydistribute.core.errors",
    "ItemFailure": "ipydistribute.core.errors",
    "RunLostError": "ipydistribute.core.errors",
    "SpecError": "ipydistribute.core.errors",
    "Run": "ipydistribute.core.run",
    "KeptResults": "ipydistribute.core.kept",
}


def test_importing_the_package_imports_neither_dask_nor_the_engine() -> None:
    code = ("import sys, json, ipydistribute; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('distributed', 'dask', 'IPython') or m.startswith('ipydistribute.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


@pytest.mark.parametrize("name", sorted(ENGINE_TYPES))
def test_each_public_type_is_the_one_the_engine_raises_and_returns(name: str) -> None:
    import importlib

    assert name in ipydistribute.__all__
    assert getattr(ipydistribute, name) is getattr(importlib.import_module(ENGINE_TYPES[name]), name)
    assert name in dir(ipydistribute)


def test_every_name_in_all_resolves() -> None:
    for name in ipydistribute.__all__:
        assert getattr(ipydistribute, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ipydistribute.nope  # noqa: B018


def test_errors_of_a_run_are_caught_by_their_public_names(client: Any) -> None:
    def fail_on_two(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x

    with pytest.raises(ipydistribute.CellError) as info:
        ipydistribute.distribute(fail_on_two, range(4))
    assert isinstance(info.value.failures[0], ipydistribute.ItemFailure)
    assert info.value.failures[0].index == 2
    with pytest.raises(ipydistribute.SpecError, match="batch"):
        ipydistribute.distribute(fail_on_two, range(4), batch="many")
    run = ipydistribute.distribute(abs, range(-3, 0), wait=False)
    assert isinstance(run, ipydistribute.Run)
    assert run.result() == [3, 2, 1]
    kept = ipydistribute.distribute(abs, range(-3, 0), keep=True)
    assert isinstance(kept, ipydistribute.KeptResults)


def test_use_chooses_the_cluster_runs_go_to(client: Any, cluster: Any) -> None:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as other, \
            Client(other, set_as_default=False) as other_client:
        try:
            assert ipydistribute.use(other_client) is other_client
            assert ipydistribute.get_client() is other_client
            where = ipydistribute.distribute(lambda _: __import__("distributed").get_worker().address, [0])
            assert where == list(other.scheduler_info["workers"])
        finally:
            ipydistribute.use(cluster)
    assert ipydistribute.get_client() is cluster.client
    with pytest.raises(ipydistribute.SpecError, match="use\\(\\) takes"):
        ipydistribute.use(42)
