"""The error report: one CSV line per row that was not imported as written, with the reason.

Bounded whatever the file holds: at most IMPORT_REPORT_MAX_ROWS lines of problems, then one line saying how
many more were left out; each value (and each column name) cut to IMPORT_REPORT_MAX_VALUE_CHARS characters,
saying how many were cut."""

from __future__ import annotations

import csv
from pathlib import Path

from campaigns.exports import csv_safe

from .csvtext import MARK


def clip(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, saying how many were cut."""
    if len(value) <= limit:
        return value
    return f"{value[:limit]}… ({len(value) - limit:,} more characters)"


class ErrorReport:
    """Written as rows are read (never held in memory). Opens its file on the first problem only.

    ``carry_from``/``carry_until``: an import resumed after its worker died starts its report with the
    lines of the previous attempt's report for the rows it had committed (those up to ``carry_until``).
    ``max_lines``, ``max_value_chars``: the bounds (IMPORT_REPORT_MAX_ROWS, IMPORT_REPORT_MAX_VALUE_CHARS unless
    given). A resumed import counts what it left out from where it resumed: problems its previous attempt left
    out of a full report are not in the count.
    """

    def __init__(self, path: str | Path | None, header: list[str], *, carry_from: str | Path | None = None,
                 carry_until: int = 0, max_lines: int | None = None, max_value_chars: int | None = None):
        from django.conf import settings

        self.path = Path(path) if path else None
        self.max_lines = max_lines or settings.IMPORT_REPORT_MAX_ROWS
        self.max_value_chars = max_value_chars or settings.IMPORT_REPORT_MAX_VALUE_CHARS
        self.header = [clip(name, self.max_value_chars) for name in header]
        self.lines = 0  # problems reported, written or left out
        self.written_lines = 0
        self._file = None
        self._writer = None
        if self.path is not None and carry_from and Path(carry_from).exists() and Path(carry_from) != self.path:
            self._carry(Path(carry_from), carry_until)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # utf-8-sig so Excel shows accented names correctly when the report is opened directly.
        self._file = self.path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(["row", "problem", *(csv_safe(name) for name in self.header)])

    def _carry(self, previous: Path, until: int) -> None:
        with previous.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            next(reader, None)  # its header
            for line in reader:
                if not line or not line[0].isdigit() or int(line[0]) > until:
                    continue
                self.lines += 1
                if self.written_lines >= self.max_lines:
                    continue
                if self._writer is None:
                    self._open()
                self._writer.writerow([clip(cell, self.max_value_chars) for cell in line])
                self.written_lines += 1

    def add(self, row_number: int, values: list[str], problem: str) -> None:
        self.lines += 1
        if self.path is None or self.written_lines >= self.max_lines:
            return
        if self._writer is None:
            self._open()
        limit = self.max_value_chars
        cells = [MARK.sub("\ufffd", clip(c, limit)) for c in values] + [""] * (len(self.header) - len(values))
        self._writer.writerow([row_number, csv_safe(clip(problem, limit)), *(csv_safe(c) for c in cells)])
        self.written_lines += 1

    @property
    def left_out(self) -> int:
        """Problems not written, the report being full."""
        return self.lines - self.written_lines if self.path is not None else 0

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            if self.left_out:
                self._writer.writerow(["", f"{self.left_out:,} more rows with problems are not listed: this report "
                                           f"lists the first {self.max_lines:,}. The counts of the import "
                                           "include them all."])
            self._file.close()
            self._file = None

    @property
    def written(self) -> bool:
        return self.path is not None and self.lines > 0
