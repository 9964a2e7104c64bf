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
input front to back (:class:`Packer`) while its timing probe runs, before it knows the batch
sizes, and its first batches leave while the rest is packed.
"""

from __future__ import annotations

import marshal
import sys
from array import array
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
    packer = Packer(items)
    values = packer.view(0, len(items))
    return None if values is None else (packer.code, values)


class Packer:
    """Packs a long list of plain numbers front to back, a piece at a time, so that the batches
    at its front can leave while the rest is packed; :meth:`view` packs what a batch needs."""

    def __init__(self, items: Sequence[Any]):
        assert isinstance(items, (list, tuple))  # (and likely(items): asked by the caller)
        self.items = items
        self.code = _FORM_OF_TYPE[type(items[0])]
        self._values = np.empty(len(items), dtype=_FORMS[self.code][2])
        self.packed = 0  # items packed, from the front
        self.failed = False  # an item that is no plain number of the first one's kind came up

    @property
    def left(self) -> int:
        """Items still to pack (none once an item that is no plain number came up)."""
        return 0 if self.failed else len(self.items) - self.packed

    def pack_piece(self) -> bool:
        """Pack the next piece of the list; False once nothing more can be packed."""
        if not self.left:
            return False
        start = self.packed
        piece = self.items[start : start + _PIECE]
        records = _records(piece, self.code)  # type: ignore[arg-type]
        if records is None:
            self.failed = True
            return False
        _, record, dtype = _FORMS[self.code]
        self._values[start : start + len(piece)] = np.ndarray((len(piece),), dtype=dtype, buffer=records,
                                                                offset=1, strides=(record,))
        self.packed += len(piece)
        return True

    def view(self, start: int, stop: int) -> memoryview | None:
        """The values of items ``start`` to ``stop`` as bytes (packed first if need be), or
        None if an item before ``stop`` is not a plain number."""
        while self.packed < stop and self.pack_piece():
            pass
        return self._values[start:stop].data.cast("B") if self.packed >= stop else None


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
    numbers of the same type and value: an ``array`` (whose iterator tells its position, which
    a memoryview's does not), copied from the bytes where the machine agrees with their layout
    (little-endian), else a list."""
    numbers = array(code)
    if sys.byteorder == "little" and numbers.itemsize == width(code):
        numbers.frombytes(values)
        return numbers
    return np.frombuffer(values, dtype=_FORMS[code][2]).tolist()  # type: ignore[no-any-return]
