"""The table of first rows an import keeps for every phone number: exact, and small."""

from __future__ import annotations

import random

from campaigns.imports.firstrows import FirstRows


def test_first_row_of_each_number_through_growth():
    numbers = random.Random(5).sample(range(10**10, 10**15), 50_000)
    table = FirstRows(bits=4)  # grows many times on the way
    for row, number in enumerate(numbers, start=2):
        assert table.first(number, row) is None
    assert len(table) == len(numbers)
    for row, number in enumerate(numbers, start=2):
        assert table.first(number, 999_999) == row  # still the first row, never overwritten
    assert table.first(12122000000, 7) is None and table.first(12122000000, 8) == 7


def test_a_million_numbers_take_about_25_bytes_each():
    table = FirstRows()
    for row, number in enumerate(range(12122000000, 12122000000 + 1_000_000), start=2):
        table.first(number, row)
    assert table.nbytes <= 26 * 1_000_000  # a dict of Python ints needs ~110 bytes per number
