"""Before a run goes to a cluster the kernel did not start: can its workers import what the
cell imports, at the kernel's versions?

A module missing on a worker (or at another version) would otherwise show as a strange failure
deep inside an item. The modules are read off the cell's code (its imports, and installed modules
named in its captured values), and checked once per worker and module with a probe that Dask
runs on each worker (``client.run``), sent by value so that it runs even where ipydistribute
itself is missing. The embedded cluster shares the kernel's environment: it is not checked.
"""

from __future__ import annotations

import functools
import importlib.metadata
import sys
import types
import warnings
from collections.abc import Iterable
from typing import Any

from .errors import SpecError, counted, shorten
from .localmodules import imported_names, pickled_names

#: Installed modules the worker runs anyway, or that need not match: never probed.
_NOT_CHECKED = frozenset({"__main__", "__future__", "dask", "distributed", "cloudpickle", "tornado",
                          "msgpack", "toolz", "tlz", "IPython", "ipykernel", "pytest", "_pytest"})


def version_of(name: str) -> str | None:
    """The installed version of top-level module ``name`` ("" when unknown), None when missing.

    Runs in the kernel and, sent by value, on the workers: it imports nothing it checks."""
    import importlib.metadata as metadata
    import importlib.util
    import sys as system

    module = system.modules.get(name)
    if module is None:
        try:
            if importlib.util.find_spec(name) is None:
                return None
        except (ImportError, ValueError):
            return None
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    for dist in metadata.packages_distributions().get(name, []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return ""


@functools.cache
def _kernel_version(name: str) -> str | None:
    """``version_of`` in the kernel, once per module (reading distributions takes about 0.1 s)."""
    return version_of(name)


def _probe(names: list[str]) -> dict[str, str | None]:
    return {name: version_of(name) for name in names}


def _by_value(function: Any, **names: Any) -> Any:
    """A copy of ``function`` that cloudpickle sends by value (ipydistribute may be missing on the
    worker), seeing only ``names`` as globals."""
    copy = types.FunctionType(function.__code__, {"__builtins__": __builtins__, **names}, function.__name__)
    copy.__module__ = "__main__"
    return copy


@functools.cache
def _distribution(name: str) -> str:
    """The name to ``pip install`` for top-level module ``name`` (``sklearn`` -> ``scikit-learn``)."""
    dists = importlib.metadata.packages_distributions().get(name, [])
    return dists[0] if dists else name


def modules_to_check(source: str | None, pickles: Iterable[bytes], local: Iterable[str] = ()) -> list[str]:
    """Installed, non-standard modules the run needs: imported by the cell's source, or named in a
    captured value (a class or function of an installed package is pickled by its module's name)."""
    names = imported_names(source) if source else set()
    named = pickled_names(pickles)
    names |= {name for name in named if getattr(sys.modules.get(name), "__file__", None)}
    names.add("ipydistribute")  # the tasks themselves need it
    skip = set(local) | _NOT_CHECKED | set(sys.stdlib_module_names) | set(sys.builtin_module_names)
    return sorted(n for n in names if n not in skip and not n.startswith("_"))


_checked: dict[tuple[str, str, str], str | None] = {}  # (client id, worker, module) -> its version
_warned: set[tuple[str, str, tuple[str, ...]]] = set()  # (client id, module, other versions) said once


def check(client: Any, kind: str, workers: list[str], modules: list[str]) -> None:
    """Raise :class:`SpecError` naming a module missing on some of ``workers``; warn when a version
    differs from the kernel's. Each worker and module is probed once per client."""
    if kind in ("local", "worker") or not workers or not modules:
        return
    wanted = {name: _kernel_version(name) for name in modules}
    wanted = {name: version for name, version in wanted.items() if version is not None}  # the kernel has it
    todo = [w for w in workers if any((client.id, w, name) not in _checked for name in wanted)]
    if todo:
        try:
            probe = _by_value(_probe, version_of=_by_value(version_of))
            found = client.run(probe, sorted(wanted), workers=todo, on_error="return")
        except Exception:  # noqa: BLE001 - an old scheduler or a closed client: the run says more
            return
        for worker, versions in found.items():
            if isinstance(versions, dict):
                for name in wanted:
                    _checked[(client.id, worker, name)] = versions.get(name)
    for name, kernel_version in wanted.items():
        have = {w: _checked.get((client.id, w, name), "?") for w in workers}  # "?": the probe failed there
        missing = sorted(w for w, v in have.items() if v is None)
        if missing:
            raise SpecError(
                f"{name} is missing on {counted(len(missing), 'worker')} of {len(workers)} "
                f"({_names(missing)}); the kernel has {name} {kernel_version or '(version unknown)'}: "
                f"install it there with `%cluster install {_distribution(name)}`")
        other = sorted({v for v in have.values() if v and v != "?" and kernel_version and v != kernel_version})
        if other and (client.id, name, tuple(other)) not in _warned:
            _warned.add((client.id, name, tuple(other)))
            where = sorted(w for w, v in have.items() if v in other)
            warnings.warn(f"{name} {', '.join(other)} on {counted(len(where), 'worker')} ({_names(where)}) "
                          f"but {kernel_version} in the kernel: results may differ; "
                          f"`%cluster install {_distribution(name)}=={kernel_version}` aligns them",
                          RuntimeWarning, stacklevel=4)


def _names(workers: list[str]) -> str:
    shown = ", ".join(w.removeprefix("tcp://").removeprefix("tls://") for w in workers[:3])
    return shorten(shown + (f" and {len(workers) - 3} more" if len(workers) > 3 else ""), 160)


def install(client: Any, packages: list[str], restart: bool = False) -> None:
    """``pip install`` ``packages`` on every worker, now and on workers that join later
    (Dask's ``PipInstall`` worker plugin); forgets what the environment check saw."""
    from distributed.diagnostics.plugin import PipInstall

    if not packages:
        raise SpecError("%cluster install needs a package name, e.g. `%cluster install scikit-learn`")
    bad = [p for p in packages if p.startswith("-")]
    if bad:
        raise SpecError(f"%cluster install takes package names, not pip options ({', '.join(bad)})")
    client.register_plugin(PipInstall(packages=packages, restart_workers=restart))
    for key in [k for k in _checked if k[0] == client.id]:
        del _checked[key]
