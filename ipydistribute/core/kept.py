"""What ``--keep`` leaves on the cluster for a later cell."""

from __future__ import annotations

from typing import Any

from distributed import Client, Future

from .errors import counted


class KeptResults:
    """Results left on the cluster by ``--keep``: iterate them in a later ``%%distribute``.

    ``gather()`` brings them into the kernel; ``release()`` frees them on the cluster.
    """

    def __init__(self, client: Client, futures: list[Future], lengths: list[int], label: str):
        self.client = client
        self.futures = futures
        self.lengths = lengths
        self.label = label

    def __len__(self) -> int:
        return sum(self.lengths)

    def __repr__(self) -> str:
        state = "released" if not self.futures else f"{counted(len(self.futures), 'task')} on the cluster"
        return f"<KeptResults of {self.label}: {len(self)} items in {state}>"

    def gather(self) -> list[Any]:
        batches = self.client.gather(self.futures)
        return [value for batch in batches for value in batch.values]

    def release(self) -> None:
        self.futures = []


class KeptValue:
    """A reduced value left on the cluster by ``--keep`` with ``--reduce``."""

    def __init__(self, future: Future, label: str):
        self.future = future
        self.label = label

    def result(self) -> Any:
        return self.future.result().value

    def __repr__(self) -> str:
        return f"<KeptValue of {self.label} on the cluster>"
