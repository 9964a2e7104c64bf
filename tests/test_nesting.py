"""Runs started inside an item use the cluster that runs the item (real cluster, real shell)."""

from __future__ import annotations

from typing import Any

import ipydistribute


def loud_square(y: int) -> int:
    print(f"inner {y}")
    return y * y


def squares_on_the_same_cluster(n: int) -> tuple[list[int], str]:
    import ipydistribute

    inner = ipydistribute.distribute(loud_square, range(n))
    return inner, ipydistribute.get_client().scheduler.address


def test_distribute_inside_an_item_runs_on_the_same_cluster(client: Any) -> None:
    values = ipydistribute.distribute(squares_on_the_same_cluster, [2, 3, 4])
    assert [v for v, _ in values] == [[0, 1], [0, 1, 4], [0, 1, 4, 9]]
    assert {address for _, address in values} == {client.scheduler.address}


def test_print_in_inner_items_reaches_the_notebook_through_the_outer_item(ip: Any,
                                                                         capsys: Any) -> None:
    ip.user_ns["inner_run"] = squares_on_the_same_cluster
    ip.run_cell_magic("distribute", "n in [2] --view none", "inner_run(n)[0]")
    out = capsys.readouterr().out
    assert "[inner item 0] inner 0" in out and "[inner item 1] inner 1" in out
    assert "[item 0 @" in out


def test_the_line_magic_inside_an_item_runs_on_the_same_cluster(ip: Any) -> None:
    cell = "inner = %distribute y * y for y in range(n) --reduce sum --view none\n(n, inner)"
    values = ip.run_cell_magic("distribute", "n in [2, 3, 4, 5] --view none", cell)
    assert values == [(n, sum(y * y for y in range(n))) for n in range(2, 6)]


def test_another_magic_inside_an_item_says_it_belongs_to_the_notebook(ip: Any) -> None:
    import pytest

    with pytest.raises(ipydistribute.CellError, match="%cluster cannot run inside an item"):
        ip.run_cell_magic("distribute", "n in [1] --view none", "%cluster status\nn")
