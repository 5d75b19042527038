"""CSV records from bytes, one at a time, without ever losing a row silently.

Two problems of real files are handled here, under ``csv.reader``:

- Encoding. The encoding is guessed from the first bytes of the file, but a byte that is not valid in it
  can come much later. Undecodable bytes are kept as markers (lone surrogates, U+DC00 + the byte) rather
  than turned into U+FFFD, so the row holding them is known. A file read as UTF-8 that has been plain
  ASCII up to such a byte is a Windows-1252 file (Excel on Windows) whose first accented letter came
  late: it is read as Windows-1252 from there on. In a UTF-8 file that has already shown UTF-8 accents,
  a stray row of Windows-1252 is read as such, with a warning. Any other undecodable row is reported
  and not imported.
- Quotes. An opening quote that is never closed makes ``csv.reader`` read the following lines, up to the
  next quote or the end of the file, into one cell. A record that spans several lines is accepted only
  while it looks like one record with a multi-line cell (a postal address, a note); when it looks like
  swallowed rows, its first line is reported and the lines after it are read again as rows.

NUL characters are dropped: no spreadsheet means one, and PostgreSQL refuses them in text.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

BLOCK_BYTES = 256 * 1024
MAX_RECORD_LINES = 100  # a cell spanning more lines than this is an unclosed quote, not an address
MARK_ERRORS = "campaigns-import-mark"
MARK = re.compile("[\udc00-\udcff]")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_PHONE_LIKE = re.compile(r"^\s*\+?[\d\s().\-/]{7,24}\s*$")
_DATE_LIKE = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}\s*$")
_UTF8_FAMILY = ("utf-8", "utf-8-sig")


def _mark(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "".join(chr(0xDC00 + b) for b in exc.object[exc.start:exc.end]), exc.end


codecs.register_error(MARK_ERRORS, _mark)


def _unmark_utf8(text: str) -> bytes:
    """The bytes a UTF-8 decode with markers came from."""
    return text.encode("utf-8", "surrogateescape")


class Record(NamedTuple):
    """One row of a file as a spreadsheet numbers it.

    ``error``: the row could not be read and must not be imported (reported with this reason).
    ``warning``: the row was read, with a caveat worth reporting.
    """

    number: int
    cells: list[str]
    error: str = ""
    warning: str = ""


class TextLines:
    """The lines of a byte stream, decoded, each ending with its line break (``\\r\\n``, ``\\n`` or ``\\r``)
    as ``csv.reader`` wants them."""

    def __init__(self, raw: BinaryIO, encoding: str, *, block_bytes: int = BLOCK_BYTES):
        self.raw = raw
        self.encoding = encoding
        self.block_bytes = block_bytes
        self.marked = False  # some bytes could not be decoded: records must be checked for markers
        self._decoder = codecs.getincrementaldecoder(encoding)(errors=MARK_ERRORS)
        self._switchable = codecs.lookup(encoding).name == "utf-8"  # not utf-8-sig: a BOM says UTF-8 for sure
        self._ascii = True  # every character so far was ASCII

    def __iter__(self) -> Iterator[str]:
        carry = ""
        while True:
            data = self.raw.read(self.block_bytes)
            final = not data
            text = self._decode(data, final)
            if "\x00" in text:
                text = text.replace("\x00", "")
            text = carry + text if carry else text
            if final:
                yield from _LINE.findall(text)
                return
            end = len(text) - 1 if text.endswith("\r") else len(text)  # the \r may be half of a \r\n
            cut = max(text.rfind("\n", 0, end), text.rfind("\r", 0, end)) + 1
            carry = text[cut:]
            if cut:
                yield from _LINE.findall(text, 0, cut)

    def _decode(self, data: bytes, final: bool) -> str:
        text = self._decoder.decode(data, final)
        found = MARK.search(text)
        if found is None:
            if self._ascii and not text.isascii():
                self._ascii = False
            return text
        if self._switchable and self._ascii and text[:found.start()].isascii():
            # Plain ASCII so far, then a byte that cannot be UTF-8: the file is Windows-1252.
            pending = self._decoder.getstate()[0]
            raw = _unmark_utf8(text) + pending
            self.encoding = "cp1252"
            self._switchable = False
            self._decoder = codecs.getincrementaldecoder("cp1252")(errors=MARK_ERRORS)
            text = self._decoder.decode(raw, final)
            if MARK.search(text) is None:
                return text
        self.marked = True
        return text


class _Source:
    """The lines given to ``csv.reader``, remembering those of the current record; lines can be put back."""

    def __init__(self, lines: Iterator[str]):
        self.lines = lines
        self.back: list[str] = []  # put back, last one first
        self.taken: list[str] = []
        self.exhausted = False

    def __iter__(self) -> _Source:
        return self

    def __next__(self) -> str:
        if self.back:
            line = self.back.pop()
        else:
            try:
                line = next(self.lines)
            except StopIteration:
                self.exhausted = True
                raise
        self.taken.append(line)
        if len(self.taken) > MAX_RECORD_LINES:
            raise _Runaway
        return line

    def put_back(self, lines: list[str]) -> None:
        self.back.extend(reversed(lines))
        self.exhausted = False


class _Runaway(Exception):
    """A record is still open after MAX_RECORD_LINES lines."""


UNCLOSED_QUOTE = (
    "A quote (\") opens a cell that is never closed, so this row ran into the lines after it. This row was "
    "not imported; the lines after it were read as rows of their own. Fix the quote and import this row again."
)


class RecordReader:
    """Numbered records of a CSV text, with unreadable rows and swallowed lines reported, not lost."""

    def __init__(self, lines: TextLines, delimiter: str):
        self.lines = lines
        self.delimiter = delimiter
        self.width = 0  # columns of the header, once known: helps tell a swallowed row from a cell's line
        self._source = _Source(iter(lines))
        self._reader = csv.reader(self._source, delimiter=delimiter)

    def __iter__(self) -> Iterator[Record]:
        source = self._source
        number = 0
        while True:
            source.taken = []
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except (csv.Error, _Runaway) as exc:
                number += 1
                yield self._unreadable(number, source.taken, exc)
                continue
            number += 1
            taken = source.taken
            if len(taken) > 1 and self._swallowed(taken, source.exhausted):
                source.put_back(taken[1:])
                yield Record(number, self._split(taken[0]), error=UNCLOSED_QUOTE)
                continue
            if self.lines.marked and any(MARK.search(line) for line in taken):
                yield self._undecodable(number, cells)
                continue
            yield Record(number, cells)

    def _split(self, line: str) -> list[str]:
        """A line's cells with quotes taken literally: what the report shows for a row that went wrong."""
        line = MARK.sub("\ufffd", line.rstrip("\r\n"))
        try:
            return next(csv.reader([line], delimiter=self.delimiter, quoting=csv.QUOTE_NONE), [])
        except csv.Error:
            return [line[:1000]]

    def _looks_like_a_row(self, line: str) -> bool:
        """A line that, read alone, has the header's number of cells, one of them a phone number."""
        try:
            cells = next(csv.reader([line.rstrip("\r\n")], delimiter=self.delimiter), [])
        except csv.Error:
            return False
        if len(cells) < 2 or len(cells) != self.width:
            return False
        return any(_PHONE_LIKE.match(c) and not _DATE_LIKE.match(c) and sum(ch.isdigit() for ch in c) >= 7
                   for c in cells)

    def _swallowed(self, taken: list[str], at_end: bool) -> bool:
        """Does this multi-line record hold rows swallowed by an unclosed quote?"""
        quote_count = sum(line.count('"') for line in taken)
        if at_end and quote_count % 2:
            return True  # the file ended inside the quoted cell
        # The last line holds the real end of the record, whatever it looks like.
        return any(self._looks_like_a_row(line) for line in taken[1:-1])

    def _unreadable(self, number: int, taken: list[str], exc: Exception) -> Record:
        if len(taken) > 1:
            self._source.put_back(taken[1:])
            return Record(number, self._split(taken[0]), error=UNCLOSED_QUOTE)
        reason = str(exc)
        if "field larger than field limit" in reason:
            reason = f"a cell is longer than {csv.field_size_limit():,} characters, the limit for one cell"
        return Record(number, self._split(taken[0]) if taken else [],
                      error=f"This row could not be read ({reason}), so it was not imported.")

    def _undecodable(self, number: int, cells: list[str]) -> Record:
        encoding = self.lines.encoding
        if codecs.lookup(encoding).name in _UTF8_FAMILY:
            try:
                fixed = [_unmark_utf8(c).decode("cp1252") if MARK.search(c) else c for c in cells]
            except UnicodeError:
                pass
            else:
                return Record(number, fixed, warning=(
                    "Some characters in this row are not valid UTF-8, the encoding of the rest of the file; "
                    "they were read as Windows-1252 (e.g. é). Check this row."
                ))
        shown = [MARK.sub("\ufffd", c) for c in cells]
        return Record(number, shown, error=(
            f"This row holds bytes that are not valid {encoding} text (shown as \ufffd here), so it was not "
            "imported. Save the file again as UTF-8 and import this row again."
        ))
