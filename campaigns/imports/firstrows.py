"""Which row of a file each phone number was first seen on, in little memory.

An import must recognise a number it has already read, in any earlier chunk, to report the repeat and
merge or ignore it. A dict of Python ints costs about 110 bytes per number (two int objects and a
slot), 110 MB for a million numbers. Here the numbers (E.164 digits as a 64-bit integer, never 0) and
their row numbers live in two flat arrays used as an open-addressing hash table: 12 bytes per slot, at
most 2/3 of the slots used, so 18 to 36 bytes per number and never a Python object per entry.
"""

from __future__ import annotations

from array import array

_MULTIPLIER = 0x9E3779B97F4A7C15  # 2**64 / golden ratio: Fibonacci hashing spreads neighbouring numbers
_MASK64 = (1 << 64) - 1


class FirstRows:
    __slots__ = ("_keys", "_rows", "_mask", "_shift", "_count", "_limit")

    def __init__(self, bits: int = 14):
        self._allocate(bits)

    def _allocate(self, bits: int) -> None:
        size = 1 << bits
        self._keys = array("q", bytes(8 * size))
        self._rows = array("i", bytes(4 * size))
        self._mask = size - 1
        self._shift = 64 - bits
        self._count = 0
        self._limit = size * 2 // 3

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return self._keys.itemsize * len(self._keys) + self._rows.itemsize * len(self._rows)

    def first(self, key: int, row: int) -> int | None:
        """The row ``key`` was first seen on; None (and ``row`` is remembered for it) if it is new."""
        keys = self._keys
        mask = self._mask
        slot = ((key * _MULTIPLIER) & _MASK64) >> self._shift
        while True:
            found = keys[slot]
            if found == key:
                return self._rows[slot]
            if not found:
                break
            slot = (slot + 1) & mask
        keys[slot] = key
        self._rows[slot] = row
        self._count += 1
        if self._count > self._limit:
            self._grow()
        return None

    def _grow(self) -> None:
        old_keys, old_rows, count = self._keys, self._rows, self._count
        self._allocate(64 - self._shift + 1)
        keys, rows, mask, shift = self._keys, self._rows, self._mask, self._shift
        for index, key in enumerate(old_keys):
            if key:
                slot = ((key * _MULTIPLIER) & _MASK64) >> shift
                while keys[slot]:
                    slot = (slot + 1) & mask
                keys[slot] = key
                rows[slot] = old_rows[index]
        self._count = count
