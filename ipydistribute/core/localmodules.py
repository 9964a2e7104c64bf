"""Modules of the notebook's own folder travel with each run, as source.

A helper module next to the notebook (``helpermod.py``, a package folder) is not installed on
the workers, and a worker that imported it once keeps that version in ``sys.modules``: an edit
in the notebook (``%%writefile``, ``importlib.reload``, ``%autoreload 2``) would never reach the
items. So the kernel reads the files of every such module the cell imports or the captured
values name, and ships their source in the payload; each worker writes a version it has not seen
into a folder named by its digest, drops the old version from ``sys.modules``, and serves
imports of that name from there (a finder ahead of the others).

Source, not ``cloudpickle.register_pickle_by_value``: by-value pickling covers the functions a
cell captures, but not ``import helpermod`` in the cell itself, nor the modules that helper
imports; source covers all three at the cost of the files' size (a few KiB, once per run).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import pickletools
import sys
import sysconfig
import tempfile
import threading
import time
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .nesting import dedicated_worker_process

#: Source shipped per run at most; larger local code is left to the workers' own installs.
MAX_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class LocalModule:
    """The source files of one top-level module or package of the notebook's folder."""

    name: str
    package: bool
    files: tuple[tuple[str, str], ...]  # (path relative to the folder that holds the module, source)
    digest: str


# --- in the kernel ---------------------------------------------------------------------------

@functools.cache
def _excluded() -> list[str]:
    return _excluded_dirs()


def _excluded_dirs() -> list[str]:
    paths = {sysconfig.get_paths().get(k, "") for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    paths |= {p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages"))}
    paths.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # ipydistribute itself
    return [os.path.realpath(p) for p in paths if p]


def _origin(name: str) -> str | None:
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None) if module is not None else None
    if origin is not None:
        return _real_module_path(origin)
    if module is not None:
        return None
    try:  # not imported here: found again each run (a file written since may provide it)
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec is not None and spec.has_location else None
    return os.path.realpath(origin) if origin else None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _is_local(path: str, folder: str, excluded: list[str]) -> bool:
    return path.endswith(".py") and _inside(path, folder) and not any(_inside(path, root) for root in excluded)


def _read(name: str, origin: str) -> tuple[LocalModule, set[str]]:
    """The module's files, and the top-level names of the modules they import."""
    package = os.path.basename(origin) == "__init__.py"
    top = os.path.dirname(origin) if package else origin
    base = os.path.dirname(top)
    paths = [origin] if not package else sorted(
        os.path.join(d, f) for d, _, fs in os.walk(top) if "__pycache__" not in d for f in fs if f.endswith(".py"))
    files, digests = [], []
    imports: set[str] = set()
    for path in paths:
        file = _source_file(path)
        relative = os.path.relpath(path, base)
        files.append((relative, file.source))
        digests.append((relative, file.digest))
        imports |= file.imports
    digest = hashlib.sha1(repr(digests).encode()).hexdigest()[:16]
    return LocalModule(name, package, tuple(files), digest), imports


@dataclass(frozen=True)
class _SourceFile:
    stamp: tuple[int, int, int, int]  # what os.stat said of the file just before it was read
    trusted: bool  # the file was older than RACY_NS then: a later edit changes the stamp
    source: str
    digest: str
    imports: frozenset[str]


#: Each file is read and parsed again only when its stamp changes (an edit): parsing a helper
#: package of 21 files took 20 ms of every run.
_files: dict[str, _SourceFile] = {}
#: A file modified this recently when read is read again next run: where file times advance in
#: clock ticks (coarse timestamps), a second edit of the same size within a tick keeps the stamp.
RACY_NS = 1_000_000_000


def _source_file(path: str) -> _SourceFile:
    status = os.stat(path)
    # Stamped before the read: a write in between leaves a stale stamp, read again next run.
    stamp = (status.st_mtime_ns, status.st_ctime_ns, status.st_size, status.st_ino)
    known = _files.get(path)
    if known is not None and known.trusted and known.stamp == stamp:
        return known
    with open(path, encoding="utf-8", errors="replace") as f:
        source = f.read()
    trusted = time.time_ns() - max(status.st_mtime_ns, status.st_ctime_ns) > RACY_NS
    file = _files[path] = _SourceFile(stamp, trusted, source, hashlib.sha1(source.encode()).hexdigest(),
                                      frozenset(imported_names(source)))
    return file


def imported_names(source: str) -> set[str]:
    """Top-level module names of the absolute imports in ``source``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


#: Pickles larger than this are data: they are not read for the modules they name.
SCAN_LIMIT = 64 * 1024  # a pickle of 25,000 short strings (190 KB) took 45 ms to read
_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"})
_GET_OPS = frozenset({"BINGET", "LONG_BINGET", "GET"})
_PUT_OPS = frozenset({"BINPUT", "LONG_BINPUT", "PUT"})


def pickled_names(blobs: Iterable[bytes]) -> set[str]:
    """Top-level names of the modules that pickles refer to: the module of each global (how
    classes and functions of a module are pickled) and the argument of cloudpickle's
    ``subimport`` (a module object). Strings of the data itself are not taken for modules."""
    names: set[str] = set()
    for blob in blobs:
        if len(blob) <= SCAN_LIMIT:
            names |= _names_in(blob)
    return names


def _names_in(blob: bytes) -> set[str]:
    names: set[str] = set()
    memo: dict[int, Any] = {}
    recent: list[Any] = []  # the last two values pushed (strings, or None for anything else)
    subimport = False
    try:
        for opcode, arg, _ in pickletools.genops(blob):
            name = opcode.name
            if name in _STRING_OPS or name in _GET_OPS:
                value = arg if name in _STRING_OPS else memo.get(int(arg))  # type: ignore[arg-type]
                if subimport and isinstance(value, str):
                    names.add(value.partition(".")[0])
                    subimport = False
                recent = [recent[-1] if recent else None, value]
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif name in _PUT_OPS:
                memo[int(arg)] = recent[-1] if recent else None  # type: ignore[arg-type]
            elif name == "STACK_GLOBAL" and len(recent) == 2 and all(isinstance(v, str) for v in recent):
                module, qualname = recent
                names.add(module.partition(".")[0])
                subimport = qualname in ("subimport", "dynamic_subimport")
                recent = [None, None]
            elif name == "GLOBAL" and isinstance(arg, str):
                names.add(arg.partition(" ")[0].partition(".")[0])
            else:
                recent = [recent[-1] if recent else None, None]
    except Exception:  # noqa: S110 - a pickle we cannot walk to its end: what was read stands
        pass
    return names


def _loaded_local(folder: str, excluded: list[str]) -> list[str]:
    """Top-level modules already imported in this process whose files are in ``folder``.

    Asked once per run, answered again only when a module was imported or removed since: with a
    virtual environment inside the notebook's folder, each of its 1,600 modules passes the
    prefix test, and the walk took 0.7 ms of every cell. An import adds its module at the end of
    ``sys.modules`` (a dict keeps that order), so the count and the last name tell."""
    global _loaded_local_seen
    imported = list(sys.modules.items())  # one C call: another thread's import cannot change it midway
    state = (folder, tuple(excluded), len(imported), imported[-1][0] if imported else None)
    seen = _loaded_local_seen
    if seen is not None and seen[0] == state:
        return list(seen[1])
    names = []
    for name, module in imported:
        if "." in name:
            continue
        path = getattr(module, "__file__", None)
        # A plain prefix test first (module paths are absolute): most modules live elsewhere.
        if path and path.startswith(folder) and _is_local(_real_module_path(path), folder, excluded):
            names.append(name)
    _loaded_local_seen = (state, tuple(names))
    return names


_loaded_local_seen: tuple[Any, tuple[str, ...]] | None = None  # (the state of sys.modules asked in, answer)


@functools.lru_cache(maxsize=4096)
def _real_module_path(path: str) -> str:
    """``os.path.realpath`` of an imported module's file, once per file: a virtual environment
    inside the notebook's folder puts hundreds of modules under it, and each realpath is a
    system call per path component (17 ms per run for a venv in the working directory)."""
    return os.path.realpath(path)


def for_run(source: str | None, pickles: Iterable[bytes], folder: str | None = None) -> dict[str, LocalModule]:
    """The notebook's modules a run needs: those the cell's source imports, and those already
    imported here whose name appears in a pickle of the run (a captured function or class of
    such a module is pickled by reference, its module named in the bytes)."""
    folder = os.path.realpath(folder or os.getcwd())
    excluded = _excluded()
    candidates = imported_names(source) if source else set()
    local = _loaded_local(folder, excluded)
    if local:
        candidates |= pickled_names(pickles) & set(local)
    return collect(candidates, folder) if candidates else {}


def collect(candidates: Iterable[str], folder: str | None = None) -> dict[str, LocalModule]:
    """The modules among ``candidates`` (top-level names) whose files are under ``folder`` (the
    notebook's, by default the working directory) and not installed, with the local modules they
    import in turn."""
    folder = os.path.realpath(folder or os.getcwd())
    excluded = _excluded()
    found: dict[str, LocalModule] = {}
    pending = [n for n in sorted(set(candidates)) if n.isidentifier() and n not in sys.builtin_module_names
               and n not in sys.stdlib_module_names and n != "__main__"]
    seen: set[str] = set()
    size = 0
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        origin = _origin(name)
        if origin is None or not _is_local(origin, folder, excluded):
            continue
        module, imports = _read(name, origin)
        size += sum(len(source) for _, source in module.files)
        if size > MAX_BYTES:
            break
        found[name] = module
        pending.extend(n for n in imports if n not in seen)
    return found


_sent: dict[tuple[str, str], str] = {}  # (client id, module) -> digest last sent


def refreshed(client_id: str, modules: dict[str, LocalModule]) -> list[str]:
    """The modules whose source changed since the last run on this client (to tell the user)."""
    changed = []
    for name, module in modules.items():
        before = _sent.get((client_id, name))
        if before is not None and before != module.digest:
            changed.append(name)
        _sent[(client_id, name)] = module.digest
    return changed


# --- on the workers --------------------------------------------------------------------------

_lock = threading.Lock()
_installed: dict[str, tuple[str, str]] = {}  # module -> (digest, folder of that version)


class _LocalFinder(importlib.abc.MetaPathFinder):
    """Finds the shipped version of the notebook's modules ahead of the worker's own files."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        entry = _installed.get(fullname)
        if entry is None:  # submodules of a shipped package: its __path__ points at the shipped folder
            return None
        folder = entry[1]
        package_init = os.path.join(folder, fullname, "__init__.py")
        if os.path.exists(package_init):
            return importlib.util.spec_from_file_location(
                fullname, package_init, submodule_search_locations=[os.path.join(folder, fullname)])
        return importlib.util.spec_from_file_location(fullname, os.path.join(folder, f"{fullname}.py"))


_finder = _LocalFinder()


def install(modules: dict[str, Any]) -> None:
    """Make the shipped versions the ones ``import`` finds on this worker. When any of them is
    new to this process, every shipped module is dropped from ``sys.modules`` (the next import
    runs the new source), since an unchanged module may hold the old version of a changed one."""
    if not modules or not dedicated_worker_process():  # threaded workers share the kernel's modules
        return
    with _lock:
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
        changed = [m for name, m in modules.items() if _installed.get(name, ("",))[0] != m.digest]
        if not changed:
            return
        for module in changed:
            folder = os.path.join(tempfile.gettempdir(), "ipydistribute-modules", f"{os.getpid()}-{module.digest}")
            for relative, source in module.files:
                path = os.path.join(folder, relative)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(source)
            _installed[module.name] = (module.digest, folder)
        shipped = set(_installed) | set(modules)
        for loaded in [m for m in sys.modules if m.partition(".")[0] in shipped]:
            del sys.modules[loaded]
        importlib.invalidate_caches()
