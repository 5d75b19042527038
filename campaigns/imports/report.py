"""The error report: one CSV line per row that was not imported as written, with the reason."""

from __future__ import annotations

import csv
from pathlib import Path

from campaigns.exports import csv_safe


class ErrorReport:
    """Written as rows are read (never held in memory). Opens its file on the first problem only."""

    def __init__(self, path: str | Path | None, header: list[str]):
        self.path = Path(path) if path else None
        self.header = header
        self.lines = 0
        self._file = None
        self._writer = None

    def add(self, row_number: int, values: list[str], problem: str) -> None:
        self.lines += 1
        if self.path is None:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # utf-8-sig so Excel shows accented names correctly when the report is opened directly.
            self._file = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(["row", "problem", *self.header])
        cells = list(values) + [""] * (len(self.header) - len(values))
        self._writer.writerow([row_number, csv_safe(problem), *(csv_safe(c) for c in cells)])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def written(self) -> bool:
        return self.path is not None and self.lines > 0
