"""Letting a test make its own cluster current without closing the session's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from distributed.client import ensure_default_client

from ipydistribute.core import cluster as cluster_mod


@contextlib.contextmanager
def own_cluster_slot() -> Iterator[None]:
    """No cluster is current inside; after, what the test made is closed and the one before is back."""
    saved = cluster_mod.chosen()
    cluster_mod.use(None)
    try:
        yield
    finally:
        if cluster_mod.chosen() is not saved:  # close only what the test made
            cluster_mod.stop()
        cluster_mod.use(saved)
        if saved is not None and saved.alive():
            ensure_default_client(saved.client)
