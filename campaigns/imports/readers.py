"""Open a CSV or XLSX file as a stream of rows of text.

Nothing here loads a whole file: CSV is decoded block by block and read by ``csv.reader`` (see
``csvtext`` for undecodable bytes and unclosed quotes); XLSX is read with openpyxl in read-only mode, one
row at a time, once ``xlsxbounds`` has found it within the limits (its unpacked size, rows, columns, and the
characters of a cell and of a row: a small upload can unpack to far more). Everything that can be known about a
file before importing it (size, type, encoding, delimiter, header, and for XLSX those limits) is checked by
``open_table`` so that a file that cannot be imported is refused before anything is written. A file that cannot
be read past some row (a damaged workbook, a disk error) raises ``FileCutError`` at that row, after every row
before it.

The limits (``ImportLimits``, from settings): IMPORT_MAX_CELL_CHARS characters in a cell, for CSV and XLSX alike
(a longer CSV cell makes its row unreadable, reported and not imported; in XLSX the file is refused, as openpyxl
would have to build the cell whole), and in an XLSX row in all; IMPORT_MAX_COLUMNS columns (the header of either,
every row of XLSX); IMPORT_MAX_ROWS rows and IMPORT_MAX_UNCOMPRESSED_BYTES unpacked for XLSX, whose row numbers
and size on disk say nothing of what it holds (a CSV's rows are bounded by IMPORT_MAX_BYTES).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import lru_cache
from pathlib import Path

from .csvtext import MARK, MARK_ERRORS, Record, RecordReader, TextLines

SAMPLE_BYTES = 256 * 1024
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# Western and Central European single-byte encodings. Charset detection on a short sample often names one
# of these for a file that Excel on Windows saved as Windows-1252; when the bytes are valid Windows-1252,
# that is what we read them as. A guess outside this family (Cyrillic, Greek, CJK...) is trusted.
_WESTERN = frozenset({
    "cp1252", "cp1250", "cp1254", "cp1257", "cp775", "cp437", "cp850", "cp858", "latin_1", "iso8859_1",
    "iso8859_2", "iso8859_4", "iso8859_9", "iso8859_13", "iso8859_15", "mac_roman", "mac_latin2", "mac_iceland",
    "mac_turkish",
})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# A leading apostrophe we (or another tool) added to neutralize a spreadsheet formula.
_ESCAPED = re.compile(r"^'(?=[=+\-@\t\r])")

HEADER_NAME_CHARS = 200  # a column's name is cut to this many characters (it only labels the column)
csv.field_size_limit(1024 * 1024)


class ImportFileError(Exception):
    """The file cannot be imported at all. The message is meant for the person who uploaded it."""


class FileCutError(ImportFileError):
    """The file could not be read past a row; the rows before it were read."""

    def __init__(self, row: int, reason: str):
        self.row = row  # the first row that could not be read
        self.reason = reason
        super().__init__(f"The file could not be read from row {row} on ({reason}).")


def megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


@dataclass(frozen=True)
class ImportLimits:
    """What a file may hold (see the module's docstring)."""

    uncompressed_bytes: int
    rows: int
    columns: int
    cell_chars: int

    @classmethod
    def from_settings(cls) -> ImportLimits:
        from django.conf import settings

        return cls(uncompressed_bytes=settings.IMPORT_MAX_UNCOMPRESSED_BYTES, rows=settings.IMPORT_MAX_ROWS,
                   columns=settings.IMPORT_MAX_COLUMNS, cell_chars=settings.IMPORT_MAX_CELL_CHARS)


@dataclass
class Table:
    """An opened file: what was detected, its header, and an iterator over its data rows."""

    path: Path
    file_format: str  # "csv" or "xlsx"
    header: list[str]
    header_row: int  # 1-based row number of the header, as a spreadsheet shows it
    encoding: str = ""
    delimiter: str = ""
    size: int = 0
    total_rows: int | None = None  # known for XLSX (from the sheet's dimensions), not for CSV
    _rows: Iterator[Record] | None = None
    _text: TextLines | None = None
    _position: callable = None  # type: ignore[valid-type]
    _closers: list = field(default_factory=list)

    def rows(self) -> Iterator[Record]:
        """A Record (row number, cells, error, warning) for every row after the header, blank rows
        included with no cells. A record with an ``error`` could not be read and must not be imported."""
        assert self._rows is not None
        return self._rows

    @property
    def read_as(self) -> str:
        """The encoding the rows are being read in: a CSV first seen as UTF-8 may turn out Windows-1252."""
        return self._text.encoding if self._text is not None else self.encoding

    def progress(self) -> float:
        """How much of the file has been read, 0.0 to 1.0."""
        try:
            return max(0.0, min(1.0, self._position()))
        except Exception:  # a closed file near the end: not worth failing an import for
            return 1.0

    def describe(self) -> str:
        if self.file_format == "xlsx":
            return "Excel workbook (first sheet)"
        return f"CSV, {self.encoding}, {DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))}-separated"

    def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:
                pass
        self._closers.clear()

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_table(path: str | Path, *, max_bytes: int | None = None, limits: ImportLimits | None = None) -> Table:
    """Detect what ``path`` is and open it. Raises ImportFileError with a plain-words reason. ``limits``: those
    of the settings unless given."""
    path = Path(path)
    limits = limits or ImportLimits.from_settings()
    try:
        size = path.stat().st_size
    except OSError:
        raise ImportFileError("The file could not be found or read.") from None
    if size == 0:
        raise ImportFileError("The file is empty.")
    if max_bytes and size > max_bytes:
        raise ImportFileError(
            f"The file is {megabytes(size)}; the limit is {megabytes(max_bytes)}. Split it into smaller files."
        )
    with path.open("rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    if head.startswith(b"PK\x03\x04"):
        table = _open_xlsx(path, limits)
    elif head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(
            "This is an old-style Excel file (.xls). Open it in Excel and save it as .xlsx or CSV, then upload that."
        )
    else:
        table = _open_csv(path, head, limits)
    if len(table.header) > limits.columns:
        table.close()
        raise ImportFileError(f"The header row (row {table.header_row}) has {len(table.header):,} columns; the limit "
                              f"is {limits.columns:,}.")
    table.size = size
    return table


# ---- CSV -------------------------------------------------------------------------------------------


def detect_encoding(sample: bytes) -> str:
    """The encoding of a text file from its first bytes: BOM, then UTF-8, UTF-16, then best guess."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if sample.count(0) <= len(sample) // 10:
        sample = sample.replace(b"\x00", b"")  # a few stray NUL bytes in a text file: they are dropped
        try:
            codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
            return "utf-8"
        except UnicodeDecodeError:
            pass
    else:
        # UTF-16 without a BOM: ASCII text has a zero byte in every other position.
        even = sample[0::2].count(0)
        odd = sample[1::2].count(0)
        half = len(sample) / 2
        if odd > 0.3 * half and even < 0.05 * half:
            return "utf-16-le"
        if even > 0.3 * half and odd < 0.05 * half:
            return "utf-16-be"
        raise ImportFileError("This file does not look like a spreadsheet (CSV or XLSX).")
    import charset_normalizer

    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        raise ImportFileError("This file does not look like a spreadsheet (CSV or XLSX).")
    encoding = best.encoding
    if encoding.lower().replace("-", "_") in _WESTERN:
        # Windows-1252 when the bytes are Windows-1252 text, allowing a stray byte or two that is not a
        # character in it (those rows are then reported as unreadable rather than the whole file misread).
        undefined = len(MARK.findall(sample.decode("cp1252", MARK_ERRORS)))
        non_ascii = len(sample.translate(None, bytes(range(0x80))))
        if undefined <= 2 or undefined * 100 <= non_ascii:
            return "cp1252"
    return encoding


def _sample_text(sample: bytes, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors=MARK_ERRORS)
    return MARK.sub("\ufffd", decoder.decode(sample, final=False)).replace("\x00", "")


def detect_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the most columns, consistently."""
    lines = text.splitlines()[:50]
    # Drop a possibly cut last line and leading blank ones.
    lines = [line for line in lines[:-1] if line.strip()] or [line for line in lines if line.strip()]
    if not lines:
        return ","
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        try:
            rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        if width < 2:
            continue
        consistent = sum(1 for row in rows if len(row) == width)
        score = (consistent, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _open_csv(path: Path, sample: bytes, limits: ImportLimits) -> Table:
    csv.field_size_limit(limits.cell_chars)  # a longer cell makes its row unreadable (reported, not imported)
    encoding = detect_encoding(sample)
    text = _sample_text(sample, encoding)
    if not text.strip():
        raise ImportFileError("The file is empty.")
    body = text.lstrip("\ufeff")
    controls = len(_CONTROL.findall(body[:65536]))
    if controls > max(2, len(body[:65536]) // 200):
        raise ImportFileError("This file does not look like a spreadsheet (CSV or XLSX).")
    delimiter = detect_delimiter(body)

    raw = path.open("rb")
    lines = TextLines(raw, encoding)
    reader = RecordReader(lines, delimiter)
    table = Table(path=path, file_format="csv", header=[], header_row=0, encoding=encoding, delimiter=delimiter,
                  _text=lines)
    table._closers.append(raw.close)
    size = max(1, path.stat().st_size)
    table._position = lambda: raw.tell() / size

    def records() -> Iterator[Record]:
        number = 0
        try:
            for record in reader:
                number = record.number
                yield record
        except OSError as exc:
            raise FileCutError(number + 1, f"the file could not be read: {exc.strerror or exc}") from None

    numbered = records()
    try:
        header_row, header = _first_nonblank(numbered)
    except ImportFileError:
        table.close()
        raise
    header = [cell.lstrip("\ufeff") for cell in header]
    reader.width = len(header)
    table.header = _clean_header(header)
    table.header_row = header_row
    table._rows = (_unescape(record) for record in numbered)
    return table


# ---- XLSX ------------------------------------------------------------------------------------------


def cell_text(value) -> str:
    """A spreadsheet cell as the text a person would see (numbers without a spurious '.0')."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e17:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)


@lru_cache(maxsize=8)
def _xlsx_checked(path: Path, size: int, mtime_ns: int, limits: ImportLimits):
    """``xlsx_check``, once per file version and limits in a process (an import opens its file several
    times)."""
    from .xlsxbounds import xlsx_check

    return xlsx_check(path, limits)


def _open_xlsx(path: Path, limits: ImportLimits) -> Table:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    stat = path.stat()
    facts = _xlsx_checked(path, stat.st_size, stat.st_mtime_ns, limits)  # raises ImportFileError
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise ImportFileError(
            "This file is a zip archive but not an Excel workbook (.xlsx). Upload a CSV or XLSX file."
        ) from None
    except Exception:  # damaged XML inside the workbook
        raise ImportFileError("The workbook could not be read. Save it again from Excel as .xlsx or CSV.") from None
    table = Table(path=path, file_format="xlsx", header=[], header_row=0)
    table._closers.append(workbook.close)
    try:
        if not workbook.worksheets:
            raise ImportFileError("The workbook has no sheets.")
        sheet = workbook.worksheets[0]
        # The sheet's declared dimensions are not trusted (openpyxl would pad every row to them): its rows as
        # found, whose last number the check counted.
        sheet.reset_dimensions()
        last = facts.rows.get(str(getattr(sheet, "_worksheet_path", "")).lstrip("/"), 0)
        total = last if last > 1 else None
        state = {"row": 0}
        table.total_rows = total
        table._position = lambda: (state["row"] / total) if total else 0.0

        def records() -> Iterator[Record]:
            try:
                for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                    state["row"] = number
                    cells = [cell_text(v) for v in values]
                    while cells and not cells[-1]:
                        cells.pop()
                    yield Record(number, cells)
            except Exception as exc:  # a damaged sheet: zip CRC, truncated XML, ...
                raise FileCutError(state["row"] + 1, f"the workbook is damaged or cut short: {type(exc).__name__}") from None

        numbered = records()
        header_row, header = _first_nonblank(numbered)
    except ImportFileError:
        table.close()
        raise
    except Exception:
        table.close()
        raise ImportFileError("The workbook could not be read. Save it again from Excel as .xlsx or CSV.") from None
    table.header = _clean_header(header)
    table.header_row = header_row
    table._rows = (_unescape(record) for record in numbered)
    return table


# ---- shared ----------------------------------------------------------------------------------------


def _first_nonblank(numbered: Iterator[Record]) -> tuple[int, list[str]]:
    try:
        for record in numbered:
            if record.error:
                raise ImportFileError(f"The header row (row {record.number}) could not be read. {record.error}")
            if any(cell.strip() for cell in record.cells):
                return record.number, record.cells
            if record.number > 1000:
                break
    except FileCutError as exc:
        raise ImportFileError(f"The file could not be read ({exc.reason}).") from None
    raise ImportFileError("The file is empty: it has no rows with any value.")


def _clean_header(header: list[str]) -> list[str]:
    """Trimmed column names; a blank one becomes 'Column C', a repeated one 'Email (2)'."""
    from openpyxl.utils import get_column_letter

    header = list(header)
    while len(header) > 1 and not str(header[-1]).strip():
        header.pop()  # trailing empty header cells (a stray delimiter at the end of the line)
    seen: dict[str, int] = {}
    cleaned = []
    for index, name in enumerate(header, start=1):
        name = " ".join(str(name)[:HEADER_NAME_CHARS * 2].split())
        if len(name) > HEADER_NAME_CHARS:
            name = name[:HEADER_NAME_CHARS - 1] + "…"
        if not name:
            name = f"Column {get_column_letter(index)}"
        key = name.lower()
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            name = f"{name} ({seen[key]})"
        cleaned.append(name)
    return cleaned


def _unescape(record: Record) -> Record:
    cells = record.cells
    if any(cell[:1] == "'" for cell in cells):
        return record._replace(cells=[_ESCAPED.sub("", cell) if cell[:1] == "'" else cell for cell in cells])
    return record
