"""Bounds on an XLSX workbook, checked before openpyxl opens it.

An XLSX file is a zip of XML parts. Its size on disk says little: a 200 KB upload can unpack to a 200 MB cell,
and openpyxl, even read-only, loads every shared string when it opens a workbook, reads each sheet up to its
dimensions (the whole sheet when it has none), and builds each cell's text whole. So before openpyxl sees a
file, ``xlsx_check``:

1. reads the zip's directory: how many parts (from the end record, before ``zipfile`` builds an object per
   entry), each part's declared unpacked size and how tightly it is packed (no real sheet packs better than
   ``MAX_RATIO`` to 1), and the total unpacked size (``IMPORT_MAX_UNCOMPRESSED_BYTES``);
2. streams every XML part through expat, counting the bytes actually unpacked (``zipfile`` stops a part at its
   declared size and checks its CRC) and, in each sheet, the row numbers (``IMPORT_MAX_ROWS``), the column of
   each cell (``IMPORT_MAX_COLUMNS``) and the characters of each cell and of each row
   (``IMPORT_MAX_CELL_CHARS``, the limit CSV cells have too); in the shared strings, each string; in any other
   part, the number of elements and the length of each text. A DTD is refused (no workbook has one).

Memory stays bounded whatever the file holds: text is counted as expat hands it over, never kept, and a run
of bytes without markup longer than a cell may be (which expat would have to buffer whole) is refused as it
arrives. A refusal is an ImportFileError naming the limit and where it applies (sheet, row, column).

No library bounds this (openpyxl has no limits; defusedxml guards against entity expansion only), hence this
module; it relies on openpyxl only to read what passes.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from xml.parsers import expat

from .readers import ImportFileError, ImportLimits, megabytes

MAX_RATIO = 100  # unpacked / packed size of one part; real sheets stay far below (about 10 to 20)
RATIO_FROM_BYTES = 1024 * 1024  # smaller parts may pack as they like
MAX_PARTS = 10_000
MAX_PART_ELEMENTS = 1_000_000  # in a part that is neither a sheet nor the shared strings (styles, workbook)
CHUNK = 64 * 1024


def run_bytes(limits: ImportLimits) -> int:
    """The longest run of bytes without markup a part may hold: a cell of the most characters, each written as
    an XML character reference, and room for a tag."""
    return 10 * limits.cell_chars + 64 * 1024


@dataclass
class XlsxFacts:
    """What the check learned: each sheet part's last row number."""

    rows: dict[str, int] = field(default_factory=dict)


def column_letters(n: int) -> str:
    letters = ""
    while n > 0:
        n, rest = divmod(n - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_of(ref: str) -> int:
    n = 0
    for ch in ref:
        if "A" <= ch <= "Z":
            n = n * 26 + ord(ch) - 64
        elif "a" <= ch <= "z":
            n = n * 26 + ord(ch) - 96
        else:
            break
    return n


def xlsx_check(path: str | Path, limits: ImportLimits) -> XlsxFacts:
    """Check a workbook against ``limits`` without holding more than a small part of it in memory. Raises
    ImportFileError (plain words: the limit and where) or returns what was learned."""
    entries = _zip_entries(Path(path))
    if entries is not None and entries > MAX_PARTS:
        raise ImportFileError(f"The workbook has {entries:,} parts; workbooks of more than {MAX_PARTS:,} parts are "
                              "refused. Save it again from Excel as .xlsx or CSV.")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ImportFileError(
            "This file is a zip archive but not an Excel workbook (.xlsx). Upload a CSV or XLSX file."
        ) from None
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        total = sum(info.file_size for info in infos)
        if total > limits.uncompressed_bytes:
            raise ImportFileError(f"The workbook unpacks to {megabytes(total)}; the limit is "
                                  f"{megabytes(limits.uncompressed_bytes)}. Split it into smaller files.")
        for info in infos:
            packed = max(info.compress_size, 1)
            if info.file_size > RATIO_FROM_BYTES and info.file_size > MAX_RATIO * packed:
                raise ImportFileError(
                    f"The workbook's part {info.filename} unpacks from {packed:,} bytes to "
                    f"{megabytes(info.file_size)}, {info.file_size // packed:,} times its size; no spreadsheet "
                    f"packs more than {MAX_RATIO} times, so the file is refused.")
        budget = _Budget(limits.uncompressed_bytes)
        names = _sheet_names(archive, limits, budget)
        facts = XlsxFacts()
        for info in infos:
            scan = _scan(archive, info, limits, budget, names.get(info.filename))
            if scan.root == "worksheet":
                facts.rows[info.filename] = scan.row
    return facts


class _Budget:
    """Bytes actually unpacked across the parts, against the total limit."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise ImportFileError(f"The workbook unpacks to more than {megabytes(self.limit)}, the limit. Split "
                                  "it into smaller files.")


def _zip_entries(path: Path) -> int | None:
    """The number of entries the zip's end record declares (zip64 included); None when there is no end record
    (``zipfile`` then says the file is not a zip)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            start = max(0, size - (22 + 65535 + 20))  # the end record, its comment, the zip64 locator
            fh.seek(start)
            tail = fh.read()
            at = tail.rfind(b"PK\x05\x06")
            if at < 0 or len(tail) - at < 22:
                return None
            entries = int.from_bytes(tail[at + 10:at + 12], "little")
            locator = at - 20
            if locator >= 0 and tail[locator:locator + 4] == b"PK\x06\x07":
                fh.seek(int.from_bytes(tail[locator + 8:locator + 16], "little"))
                record = fh.read(56)
                if record[:4] == b"PK\x06\x06":
                    entries = max(entries, int.from_bytes(record[32:40], "little"))
            return entries
    except OSError:
        return None


def _sheet_names(archive: zipfile.ZipFile, limits: ImportLimits, budget: _Budget) -> dict[str, str]:
    """Sheet part -> the sheet's name, from the usual workbook parts (read with the same bounds); {} when the
    workbook is laid out otherwise (refusals then name the part)."""
    try:
        book = archive.getinfo("xl/workbook.xml")
        rels = archive.getinfo("xl/_rels/workbook.xml.rels")
    except KeyError:
        return {}
    sheets = _scan(archive, book, limits, budget, None).sheets
    targets = _scan(archive, rels, limits, budget, None).targets
    names = {}
    for name, rid in sheets:
        target = targets.get(rid)
        if target:
            part = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
            names[part] = name
    return names


class _PartScan:
    """One XML part through expat: counts, never keeps, what it holds."""

    def __init__(self, part: str, label: str | None, limits: ImportLimits):
        self.part = part
        self.label = f"Sheet '{label}'" if label else f"The workbook's part {part}"
        self.limits = limits
        self.root: str | None = None
        self.row = 0
        self.column = 0
        self.cell_chars = 0
        self.row_chars = 0
        self.strings = 0
        self.elements = 0
        self.sheets: list[tuple[str, str]] = []
        self.targets: dict[str, str] = {}
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.buffer_text = False
        parser.StartElementHandler = self._start
        parser.CharacterDataHandler = self._text
        parser.StartDoctypeDeclHandler = self._doctype
        self.parser = parser

    def refuse(self, message: str) -> None:
        raise ImportFileError(message)

    def _where(self) -> str:
        if self.root == "worksheet" and self.row:
            column = f", column {column_letters(self.column)}" if self.column else ""
            return f"{self.label}, row {self.row:,}{column}"
        if self.root == "sst":
            return f"The workbook's shared text number {self.strings:,}"
        return self.label

    def _doctype(self, *args) -> None:
        self.refuse(f"{self.label} declares a DTD, which no spreadsheet does: the file is refused.")

    def _start(self, name: str, attrs: dict) -> None:
        local = name.rpartition(" ")[2]
        if self.root is None:
            self.root = local
        root = self.root
        if root == "worksheet":
            if local == "c":
                ref = attrs.get("r")
                column = _column_of(ref) if ref else self.column + 1
                if column > self.limits.columns:
                    self.column = column
                    self.refuse(f"{self._where()} ({column:,}) is past the limit of {self.limits.columns:,} "
                                "columns.")
                self.column = column
                self.cell_chars = 0
            elif local == "row":
                number = attrs.get("r")
                row = int(number) if number and number.isdigit() else self.row + 1
                if row > self.limits.rows:
                    self.refuse(f"{self.label} has a row {row:,}; the limit is {self.limits.rows:,} rows. Split it "
                                "into smaller files.")
                self.row, self.column, self.cell_chars, self.row_chars = row, 0, 0, 0
            return
        if root == "sst":
            if local == "si":
                self.strings += 1
                self.cell_chars = 0
            return
        self.elements += 1
        self.cell_chars = 0
        if self.elements > MAX_PART_ELEMENTS:
            self.refuse(f"{self.label} has more than {MAX_PART_ELEMENTS:,} elements: the file is refused.")
        if root == "workbook" and local == "sheet" and len(self.sheets) < MAX_PARTS:
            rid = next((v for k, v in attrs.items() if k.endswith(" id")), "")
            self.sheets.append((str(attrs.get("name") or ""), rid))
        elif root == "Relationships" and local == "Relationship" and len(self.targets) < MAX_PARTS:
            self.targets[str(attrs.get("Id") or "")] = str(attrs.get("Target") or "")

    def _text(self, data: str) -> None:
        self.cell_chars += len(data)
        if self.cell_chars > self.limits.cell_chars:
            what = "a cell" if self.root == "worksheet" else "a text"
            self.refuse(f"{self._where()} holds {what} longer than {self.limits.cell_chars:,} characters, the "
                        "limit for one cell.")
        if self.root == "worksheet":
            self.row_chars += len(data)
            if self.row_chars > self.limits.cell_chars:
                self.column = 0
                self.refuse(f"{self._where()} holds more than {self.limits.cell_chars:,} characters in all, the "
                            "limit for one row.")


def _scan(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ImportLimits, budget: _Budget,
          label: str | None) -> _PartScan:
    """Stream one part through a ``_PartScan``. A part that is not XML (an image) stops at its first bytes and
    is left alone: openpyxl parses only XML parts."""
    scan = _PartScan(info.filename, label, limits)
    limit = run_bytes(limits)
    run = 0  # bytes since the last "<"
    try:
        with archive.open(info) as part:
            while True:
                chunk = part.read(CHUNK)
                if not chunk:
                    break
                budget.take(len(chunk))
                first = chunk.find(b"<")
                if first < 0:
                    run += len(chunk)
                else:
                    run += first
                    if run <= limit:
                        run = len(chunk) - chunk.rfind(b"<") - 1
                if run > limit:
                    scan.refuse(f"{scan._where()} holds a cell or a tag longer than {limits.cell_chars:,} "
                                "characters, the limit for one cell.")
                try:
                    scan.parser.Parse(chunk, False)
                except expat.ExpatError:
                    return scan  # not XML, or damaged XML: openpyxl's to judge
            try:
                scan.parser.Parse(b"", True)
            except expat.ExpatError:
                pass
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, RuntimeError, NotImplementedError):
        raise ImportFileError(
            f"The workbook's part {info.filename} is damaged or cannot be unpacked. Save it again from Excel as "
            ".xlsx or CSV.") from None
    return scan
