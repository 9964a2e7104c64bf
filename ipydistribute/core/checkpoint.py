"""``--checkpoint DIR``: finished items' values on disk, so a run started again computes only the rest.

Layout: ``DIR/<run key>/<segment>.ckpt``. The run key is a hash of what decides the values (the
cell's source or the function, the captured values, the reducer, the mode, see :func:`run_key`);
each stored item also carries the hash of the item itself, and is resumed only where index and
item hash both match (:func:`resume`). A changed cell or changed data gets another key: its items
are computed again, and the old directory stays (change the cell back and it resumes again).

Each :class:`CheckpointStore` that writes opens a segment of its own and appends records to it:
one record per :meth:`CheckpointStore.save` (a batch of items), ``[magic, length, CRC-32, count]``
then the cloudpickled entries. An append-only segment per session rather than one file per batch:
a one-hour sweep of 0.2 s tasks on 16 threads would make about 290,000 batch files, slow to list
and to create on a network file system; a segment is one file per session. A record is written
and flushed to the OS at once (it survives the kernel's death, not the machine's: no
fsync), so a kill can tear only the last record of a segment, which the length and CRC detect:
:meth:`CheckpointStore.load` keeps the records before it and says what it ignored. Two sessions
never write the same file.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import cloudpickle

from . import plan
from .errors import SpecError, describe_error, safe_repr, type_name
from .fingerprint import fingerprint
from .kept import KeptResults
from .kinds import Mode
from .wire import Payload

if TYPE_CHECKING:
    from .options import RunOptions

#: First bytes of a segment: the format, so a foreign or future file is recognised.
SEGMENT_MAGIC = b"ipydistribute-checkpoint 1\n"
SEGMENT_SUFFIX = ".ckpt"
_RECORD = struct.Struct(">4sQII")  # magic, payload length, CRC-32 of the payload, entries in it
_RECORD_MAGIC = b"REC1"

#: One finished item: (index in the input, fingerprint of the item, value).
Entry = tuple[int, str, Any]


def run_key(payload: Payload, mode: Mode) -> str:
    """The key of a run's results: the same for the same cell (or function), captured values,
    reducer and mode, in this kernel or after a restart; 24 hex digits.

    The cell is keyed by its source and loop variable (not its label, which holds the execution
    count); a function, the reducer and each captured value by :func:`fingerprint` of the value,
    unpickled from the payload (pickled bytes differ between processes for functions, classes
    and sets). Code imported from a module is pickled by reference, so it is keyed by its name:
    a changed module does not change the key.
    """
    digest = hashlib.sha256(b"ipydistribute-run-key 1\0" + mode.encode() + b"\0")
    if payload.cell is not None:
        digest.update(f"cell\0{payload.cell.target or ''}\0{payload.cell.source}\0".encode())
    if payload.func is not None:
        digest.update(b"func\0" + _stable(payload.func).encode() + b"\0")
    if payload.reducer is not None:
        digest.update(b"reducer\0" + _stable(payload.reducer).encode() + b"\0")
    for name in sorted(payload.captured):
        digest.update(f"captured\0{name}\0{_stable(payload.captured[name])}\0".encode())
    return digest.hexdigest()[:24]


def _stable(pickled: bytes) -> str:
    """The fingerprint of a pickled value; the bytes' own hash if it cannot be fingerprinted
    (then a restart only recomputes, never resumes a wrong value)."""
    try:
        return fingerprint(cloudpickle.loads(pickled))
    except Exception:  # any unpickling or pickling failure of a user's type
        return "bytes:" + hashlib.sha256(pickled).hexdigest()


def check_directory(path: str | os.PathLike[str]) -> str:
    """The absolute path of a usable ``--checkpoint`` directory; raises :class:`SpecError` in one
    line when it is a file or cannot be written. Nothing is created."""
    text = os.fspath(path)
    if not text.strip():
        raise SpecError("--checkpoint needs a directory, e.g. --checkpoint results/sweep")
    target = Path(text).expanduser().absolute()
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == target else f"is inside {existing}, which is a file"
        raise SpecError(f"--checkpoint {text} {what}: give a directory (it is created if needed)")
    try:  # os.access says yes to root even on a read-only file system: try a real write
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".ipydistribute-probe-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise SpecError(f"--checkpoint {text}: cannot write in {existing} ({describe_error(exc)}): "
                        "give a directory you can write to") from None
    return str(target)


@dataclass(frozen=True)
class StoredRun:
    """Results of one run key found in a checkpoint directory."""

    key: str
    items: int
    modified: float  # time of the newest segment


class CheckpointStore:
    """The stored results of one run key in ``directory`` (created if needed).

    Thread-safe: the run may call :meth:`save` from any thread. :meth:`close` (or ``with``) ends
    the segment; until then every saved record is already on disk.
    """

    def __init__(self, directory: str | os.PathLike[str], run_key: str):
        self.directory = Path(directory).expanduser().absolute()
        self.key = run_key
        self.path = self.directory / run_key
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpecError(f"--checkpoint {self.directory}: cannot create {self.path} "
                            f"({describe_error(exc)}): give a directory you can write to") from None
        #: What :meth:`load` ignored (torn or unreadable records), one line each, for the run's warnings.
        self.warnings: list[str] = []
        self._lock = threading.Lock()
        self._segment: IO[bytes] | None = None

    def __enter__(self) -> CheckpointStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def save(self, entries: Iterable[Entry]) -> None:
        """Store finished items ``(index, item_hash, value)`` as one record, all or none.

        Raises :class:`SpecError` naming the first item whose value cannot be pickled (nothing of
        the batch is stored then).
        """
        batch = list(entries)
        if not batch:
            return
        try:
            data = cloudpickle.dumps(batch, protocol=5)
        except Exception as batch_error:
            index, value, error = _first_unpicklable(batch) or (batch[0][0], batch[0][2], batch_error)
            raise SpecError(
                f"--checkpoint {self.directory}: the value of item #{index} (a {type_name(value)}) cannot "
                f"be stored: {describe_error(error)}; return plain data from the cell (numbers, strings, "
                "arrays, dicts), or drop --checkpoint") from None
        header = _RECORD.pack(_RECORD_MAGIC, len(data), zlib.crc32(data), len(batch))
        with self._lock:  # header and data apart: joining them copied a 16 MB value once more (40 ms)
            segment = self._open_segment()
            segment.write(header)
            segment.write(data)
            segment.flush()

    def _open_segment(self) -> IO[bytes]:
        if self._segment is None:
            name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(3).hex()}{SEGMENT_SUFFIX}"
            self._segment = open(self.path / name, "xb")  # noqa: SIM115 (open for the store's life)
            self._segment.write(SEGMENT_MAGIC)
            self._segment.flush()
        return self._segment

    def close(self) -> None:
        with self._lock:
            if self._segment is not None:
                self._segment.close()
                self._segment = None

    def load(self) -> dict[int, tuple[str, Any]]:
        """Every stored item of this key: ``{index: (item_hash, value)}``, later records winning.

        A torn record (the writer was killed mid-write) or one that cannot be unpickled is
        skipped with a line in :attr:`warnings`; its items are simply not stored.
        """
        stored: dict[int, tuple[str, Any]] = {}
        for segment in _segments(self.path):
            for data in self._records(segment):
                try:
                    entries = cloudpickle.loads(data)
                except Exception as exc:  # a value whose class cannot be imported now, say
                    self._warn(segment, f"a record cannot be unpickled ({describe_error(exc)})")
                    continue
                for index, item_hash, value in entries:
                    stored[index] = (item_hash, value)
        return stored

    def _records(self, segment: Path) -> Iterable[bytes]:
        with open(segment, "rb") as f:
            if f.read(len(SEGMENT_MAGIC)) != SEGMENT_MAGIC:
                self._warn(segment, "not a checkpoint segment of this version")
                return
            while True:
                offset = f.tell()
                header = f.read(_RECORD.size)
                if not header:
                    return
                data = b""
                if len(header) == _RECORD.size:
                    magic, length, crc, _ = _RECORD.unpack(header)
                    data = f.read(length) if magic == _RECORD_MAGIC else b""
                    if magic == _RECORD_MAGIC and len(data) == length and zlib.crc32(data) == crc:
                        yield data
                        continue
                self._warn(segment, f"the record at byte {offset:,} is incomplete (its writer was "
                           "stopped mid-write); it and the rest of this file are ignored")
                return

    def _warn(self, segment: Path, what: str) -> None:
        self.warnings.append(f"--checkpoint {self.directory}: {segment.name}: {what}; "
                             "those items are computed again")

    def other_runs(self) -> list[StoredRun]:
        """Results stored in the same directory under other keys (a changed cell or changed
        captured data), newest first. Counts items from record headers: values are not read."""
        runs = []
        for sub in self.directory.iterdir():
            if sub.name == self.key or not sub.is_dir():
                continue
            segments = _segments(sub)
            if segments:
                items = sum(_count_items(s) for s in segments)
                runs.append(StoredRun(sub.name, items, max(s.stat().st_mtime for s in segments)))
        return sorted(runs, key=lambda r: r.modified, reverse=True)

    def changed_notice(self, stored: Mapping[int, Any]) -> str | None:
        """The one line to show when nothing is stored under this key (``stored``, as returned by
        :meth:`load`) but the directory holds another run's results; None otherwise."""
        if stored:
            return None
        others = self.other_runs()
        if not others:
            return None
        return (f"--checkpoint {self.directory}: the cell or its data changed since the stored run "
                f"({others[0].items:,} items stored): computing all items again")


def _segments(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.name.endswith(SEGMENT_SUFFIX))
    except FileNotFoundError:
        return []


def _count_items(segment: Path) -> int:
    count = 0
    with open(segment, "rb") as f:
        if f.read(len(SEGMENT_MAGIC)) != SEGMENT_MAGIC:
            return 0
        size = os.fstat(f.fileno()).st_size
        while True:
            header = f.read(_RECORD.size)
            if len(header) < _RECORD.size:
                return count
            magic, length, _, entries = _RECORD.unpack(header)
            if magic != _RECORD_MAGIC or f.tell() + length > size:
                return count
            f.seek(length, os.SEEK_CUR)
            count += entries


def _first_unpicklable(batch: list[Entry]) -> tuple[int, Any, Exception] | None:
    for index, _, value in batch:
        try:
            cloudpickle.dumps(value)
        except Exception as exc:
            return index, value, exc
    return None


@dataclass
class Resume:
    """Which items of a sized input are already stored, and every item's hash."""

    hashes: list[str]  # fingerprint of each item, by index: what :meth:`CheckpointStore.save` wants
    done: dict[int, Any] = field(default_factory=dict)  # index -> stored value (index and hash match)

    @property
    def todo(self) -> list[int]:
        """Indices still to compute, in order."""
        return [i for i in range(len(self.hashes)) if i not in self.done]

    def notice(self, directory: str) -> str | None:
        """The one line a resumed run shows (None when nothing was stored)."""
        if not self.done:
            return None
        rest = len(self.hashes) - len(self.done)
        if not rest:
            return f"--checkpoint {directory}: all {len(self.done):,} items were stored by an earlier run"
        return (f"--checkpoint {directory}: {len(self.done):,} of {len(self.hashes):,} items were stored by "
                f"an earlier run: computing the other {rest:,}")


def item_hash(index: int, item: Any) -> str:
    """The fingerprint of one item (what :meth:`CheckpointStore.save` stores with its value);
    raises :class:`SpecError` naming the item when it cannot be pickled."""
    try:
        return fingerprint(item)
    except Exception as exc:  # whatever pickling a user's object raises
        raise SpecError(f"item {index:,} ({safe_repr(item, 60)}, a {type_name(item)}) cannot be sent to the "
                        f"workers: {describe_error(exc)}; give the cell plain data (numbers, strings, arrays, "
                        "paths) and build such objects inside the cell") from None


def resume(items: Iterable[Any], stored: Mapping[int, tuple[str, Any]]) -> Resume:
    """Match a sized input (a list, range, array: iterated once, so not a generator) against
    ``stored`` (from :meth:`CheckpointStore.load`): an item is done when the value stored at its
    index was computed from an item of the same hash. A reordered input matches nothing that moved.
    """
    hashes = [item_hash(index, item) for index, item in enumerate(items)]
    done = {index: entry[1] for index, item_hash in enumerate(hashes)
            if (entry := stored.get(index)) is not None and entry[0] == item_hash}
    return Resume(hashes, done)


def open_for_run(payload: Payload, items: Any, options: RunOptions,
                 mode: Mode) -> tuple[CheckpointStore, Resume]:
    """The run's store in ``--checkpoint DIR`` and what it already holds; says in one line when
    the run resumes, or when the cell or its data changed since the stored run."""
    assert options.checkpoint is not None
    if mode != "map" or options.reduce is not None or options.keep:
        what = "--reduce" if options.reduce is not None else "--keep" if options.keep else "a cell without items"
        raise SpecError(f"--checkpoint stores each item's value, which {what} does not return: drop "
                        "--checkpoint, or return the values and reduce them in the notebook")
    if isinstance(items, KeptResults) or plan.sized_length(items) is None:
        raise SpecError("--checkpoint matches stored values to items by position: give a list, range or "
                        "array (e.g. list(generator)), not a generator")
    store = CheckpointStore(options.checkpoint, run_key(payload, mode))
    stored = store.load()
    resumed = resume(items, stored)
    for line in [resumed.notice(options.checkpoint) or store.changed_notice(stored), *store.warnings]:
        if line:
            print(line)
    return store, resumed
