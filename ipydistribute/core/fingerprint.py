"""Stable fingerprints of values and code: the same value gives the same hash in another process.

A checkpoint outlives the kernel that wrote it, so what keys it must not depend on the process:
plain ``cloudpickle.dumps`` does, in three ways that this module takes out of the hash:

- a function's code carries its file name and line numbers, and ipykernel names a cell's file
  after the kernel's process id (``/tmp/ipykernel_<pid>/<hash>.py``): a restart changed them;
- a class defined in the notebook is pickled with a random tracker id (a ``uuid4``);
- a set is pickled in iteration order, which for strings follows the per-process hash seed;
- a string met twice is pickled once and then referenced when both are the same object, twice
  when they are equal copies, and which strings are shared (interned) differs between processes.

Everything else is hashed from its pickled bytes, streamed into SHA-256 (a large array is never
copied into one buffer). Values built the same way give the same hash; the rare value that pickles
differently in two processes only makes its item run again, never resumes a wrong one.
"""

from __future__ import annotations

import hashlib
import pickle
import types
from typing import Any

import cloudpickle
from cloudpickle import cloudpickle as _cloudpickle_internals

#: Types whose pickle is the same in every process: hashed without the fingerprinting pickler,
#: which costs a Python call per object.
_ATOMS = (int, float, complex, str, bytes, bool, type(None))


def fingerprint(value: Any) -> str:
    """A hex SHA-256 of ``value`` that is the same in every process for the same value."""
    if type(value) in _ATOMS:
        return hashlib.sha256(pickle.dumps(value, protocol=5)).hexdigest()
    writer = _HashWriter()
    _FingerprintPickler(writer, protocol=5).dump(value)
    return writer.digest.hexdigest()


class _HashWriter:
    """A file-like sink for the pickler that keeps only the running hash."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def write(self, data: Any) -> int:
        self.digest.update(data)
        return len(data)


class _FingerprintPickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle with its process-dependent parts replaced by stable stand-ins (never unpickled).

    ``persistent_id`` is called for every object before any other rule, sets included (the C
    pickler saves sets before it consults ``reducer_override``): strings, sets and code objects
    go there.
    Classes defined in the notebook keep cloudpickle's own reduction, less its random tracker id.
    """

    def persistent_id(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is str:  # by value, never by reference to an earlier copy (a bytes id has no children)
            return b"s" + obj.encode("utf-8", "surrogatepass")
        if kind is set or kind is frozenset:
            return ("set", kind.__name__, tuple(sorted(fingerprint(e) for e in obj)))
        if kind is types.CodeType:
            return _code_stand_in(obj)
        return None

    def reducer_override(self, obj: Any) -> Any:
        reduced = super().reducer_override(obj)
        if not (isinstance(reduced, tuple) and reduced):
            return reduced
        if reduced[0] in _SKELETONS:
            args = list(reduced[1])
            args[_SKELETONS[reduced[0]]] = "tracker"  # a uuid4 per process otherwise
            reduced = (reduced[0], tuple(args), *reduced[2:])
        elif reduced[0] is _cloudpickle_internals._make_function:
            # The function's module globals travel with it: __file__ and __package__ name the
            # process's main script (a dataclass's methods live in the globals of __main__).
            args = list(reduced[1])
            args[1] = {k: v for k, v in args[1].items() if k not in ("__file__", "__package__", "__path__")}
            reduced = (reduced[0], tuple(args), *reduced[2:])
        return reduced


#: cloudpickle's constructors of classes pickled by value, and where their tracker id sits.
_SKELETONS = {_cloudpickle_internals._make_skeleton_class: 4, _cloudpickle_internals._make_skeleton_enum: 5}


def _code_stand_in(code: types.CodeType) -> tuple[Any, ...]:
    """What a code object does, without where it was written (file name, line numbers)."""
    return ("code", code.co_name, code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
            code.co_flags, code.co_code, code.co_consts, code.co_names, code.co_varnames,
            code.co_freevars, code.co_cellvars)
