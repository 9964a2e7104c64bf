"""``%cluster gateway`` mistakes that need no server: each is one line saying what to do.

The behaviour against a real dask-gateway-server is in test_deploy_gateway.py."""

from __future__ import annotations

import dask
import dask_gateway  # noqa: F401 (loads its configuration defaults before a test sets one)
import pytest

from ipydistribute.core import gateway
from ipydistribute.core.errors import SpecError
from ipydistribute.kernel_magics import cluster_magic


@pytest.mark.parametrize(("call", "message"), [
    (lambda: gateway.start(), "no gateway address: give it"),
    (lambda: gateway.start("gateway.example.org"), "is not a gateway address"),
    (lambda: gateway.start("http://127.0.0.1:9", workers=-1), "--workers must be 0 or more"),
    (lambda: gateway.start("http://127.0.0.1:9", adapt=(3, 1)), "--adapt takes MIN MAX"),
    (lambda: gateway.start("http://127.0.0.1:9", workers=2, adapt=(0, 2)), "--workers or --adapt, not both"),
    (lambda: gateway.start("http://127.0.0.1:9", connect="abc", options={"a": 1}), "--option applies to a new"),
    (lambda: cluster_magic._gateway("http://127.0.0.1:9 --option worker_memory"), "--option takes KEY=VALUE"),
    (lambda: cluster_magic._gateway("http://127.0.0.1:9 --list"), "cannot reach the gateway at http://127.0.0.1:9"),
])
def test_gateway_mistakes_are_one_line(call: object, message: str) -> None:
    with dask.config.set({"gateway.address": None}), pytest.raises(SpecError) as caught:
        call()  # type: ignore[operator]
    text = str(caught.value)
    assert message in text and "\n" not in text, text


def test_gateway_option_values_are_literals_or_text() -> None:
    assert gateway.option_value("2") == 2
    assert gateway.option_value("0.5") == 0.5
    assert gateway.option_value("True") is True
    assert gateway.option_value("'a b'") == "a b"
    assert gateway.option_value("image:latest") == "image:latest"


def test_the_gateway_address_comes_from_dask_gateway_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_HOST", "hub.example.org")
    with dask.config.set({"gateway.address": "https://{HUB_HOST}/services/dask-gateway"}):
        assert gateway.gateway_address() == "https://hub.example.org/services/dask-gateway"
    assert gateway.gateway_address("http://given:8000") == "http://given:8000"
