"""A finished run leaves nothing for the next cell: its tasks are gone from the scheduler when
the cell returns (the next cell would otherwise pay for forgetting them), and ``--keep`` still
keeps its value on the cluster."""

from __future__ import annotations

from ipydistribute.core.forgetting import MIN_TASKS


def _run_tasks(client, label):
    def count(dask_scheduler):
        return sum(1 for k in dask_scheduler.tasks if isinstance(k, tuple) and str(k[0]).startswith(label))

    return client.run_on_scheduler(count)


def test_a_reduction_of_many_tasks_leaves_no_task_on_the_scheduler(ip, client):
    n = MIN_TASKS + 50
    total = ip.run_cell_magic("distribute", f"x in range({n}) --batch 1 --reduce sum --view none --name forgetme", "x")
    assert total == sum(range(n))
    assert _run_tasks(client, "forgetme-") == 0


def test_a_map_of_many_tasks_leaves_no_task_on_the_scheduler(ip, client):
    n = MIN_TASKS + 50
    values = ip.run_cell_magic("distribute", f"x in range({n}) --batch 1 --view none --name forgetmap", "x * 2")
    assert values == [2 * x for x in range(n)]
    assert _run_tasks(client, "forgetmap-") == 0


def test_keep_still_keeps_its_reduced_value_on_the_cluster(ip, client):
    n = MIN_TASKS + 50
    kept = ip.run_cell_magic("distribute", f"x in range({n}) --batch 1 --reduce sum --keep --view none --name keepme",
                             "x")
    assert _run_tasks(client, "keepme-") >= 1
    assert kept.result() == sum(range(n))
