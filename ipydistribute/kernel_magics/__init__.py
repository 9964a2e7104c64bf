"""The magics: %%distribute, %distribute and %cluster. Thin: parse, call the engine, display."""

from __future__ import annotations

from .cluster_magic import ClusterMagics
from .distribute import DistributeMagics

__all__ = ["ClusterMagics", "DistributeMagics"]
