"""Lists of plain numbers as machine numbers: a list of ints or floats travels as 4- or 8-byte
values, and the worker iterates them as they are, without a list of Python objects.

A worker unpickling 166,000 ints spent as long creating and storing the int objects (3.5 ms)
as its loop spent squaring them; iterated from machine numbers, each int is made as the loop
reaches it and let go after (1,000,000 ints squared and summed: 8.1 -> 5.3 ms a batch).

Only exact ``int`` values of 32 bits and exact ``float`` values qualify: ``bool``, int
subclasses and larger ints would change type or value, so those lists keep pickle. ``marshal``
(format version 2) checks and encodes in one C pass: it refuses subclasses, writes ``True`` as
one byte, each 32-bit int as a 5-byte record (a tag, then the value little-endian) and each
float as a 9-byte one. A list whose length and tags are exactly ``n`` such records is ``n``
plain numbers, and NumPy copies the values out of the records.

The values have a fixed width, so the items of any batch are a slice of them: a run packs its
whole input once, while its timing probe runs, before it knows the batch sizes.
"""

from __future__ import annotations

import marshal
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Lists shorter than this are pickled: the check would cost more than it saves.
MIN_ITEMS = 512
_SAMPLE = 64  # items checked first, so that a list of large ints or of strings costs no full pass
_PIECE = 131_072  # items marshalled at a time, so marshal's records stay small
_HEADER = 5  # marshal's list or tuple tag and its length
# typecode of the values (as for ``array`` and ``memoryview.cast``) -> (marshal's tag of one
# record, the record's bytes, the value's dtype)
_FORMS = {"i": (b"i", 5, "<i4"), "d": (b"g", 9, "<f8")}
_FORM_OF_TYPE = {int: "i", float: "d"}


def likely(items: Sequence[Any]) -> bool:
    """Whether ``items`` look like plain numbers: a list or tuple, long enough, whose first
    items and last item pass the check (cheap; :func:`pack` decides)."""
    if not isinstance(items, (list, tuple)) or len(items) < MIN_ITEMS:  # (marshal refuses their subclasses)
        return False
    code = _FORM_OF_TYPE.get(type(items[0]))
    if code is None or type(items[-1]) is not type(items[0]):
        return False
    return _records(items[:_SAMPLE], code) is not None


def pack(items: Sequence[Any]) -> tuple[str, memoryview] | None:
    """``(typecode, values)`` for a list or tuple of plain 32-bit ints or of floats, else None:
    the values as bytes, item ``i`` at ``values[i * width(typecode):]``."""
    if not likely(items):
        return None
    assert isinstance(items, (list, tuple))
    code = _FORM_OF_TYPE[type(items[0])]
    dtype = _FORMS[code][2]
    values = np.empty(len(items), dtype=dtype)
    for start in range(0, len(items), _PIECE):
        piece = items[start : start + _PIECE]
        records = _records(piece, code)
        if records is None:
            return None
        values[start : start + len(piece)] = np.ndarray((len(piece),), dtype=dtype, buffer=records, offset=1,
                                                         strides=(_FORMS[code][1],))
    return code, values.data.cast("B")


def _records(items: list[Any] | tuple[Any, ...], code: str) -> memoryview | None:
    """marshal's records of ``items`` (after its header), if each is a number of form ``code``."""
    try:
        blob = marshal.dumps(items, 2)
    except ValueError:  # an object marshal refuses (a subclass, a custom class): pickle it
        return None
    tag, record, _ = _FORMS[code]
    count = len(items)
    if len(blob) != _HEADER + record * count or blob[_HEADER::record] != tag * count:
        return None
    return memoryview(blob)[_HEADER:]


def width(code: str) -> int:
    """Bytes of one value of this typecode."""
    return np.dtype(_FORMS[code][2]).itemsize


def unpack(code: str, values: Any) -> Sequence[Any]:
    """The numbers of :func:`pack`'s values (or a slice of them), read item by item as Python
    numbers of the same type and value: a view of the bytes where the machine agrees with their
    layout (little-endian), else a copy."""
    view = memoryview(values).cast("B")
    if sys.byteorder == "little" and view.cast(code).itemsize == width(code):  # type: ignore[call-overload]
        return view.cast(code)  # type: ignore[call-overload,no-any-return]
    return np.frombuffer(view, dtype=_FORMS[code][2]).tolist()  # type: ignore[no-any-return]
