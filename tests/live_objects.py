"""Objects that count how many of them are alive at once (for tests of what a batch holds)."""

from __future__ import annotations

from dask.sizeof import sizeof

alive = 0
peak = 0


class Tracked:
    """A value that claims to be large (8 MiB to Dask's sizeof) and counts its live instances."""

    def __init__(self, value: float):
        global alive, peak
        self.value = value
        alive += 1
        peak = max(peak, alive)

    def __del__(self) -> None:
        global alive
        alive -= 1


@sizeof.register(Tracked)
def _sizeof_tracked(obj: Tracked) -> int:
    return 8 << 20


def reset() -> None:
    global peak
    peak = alive
