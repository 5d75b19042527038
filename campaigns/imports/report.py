"""The error report: one CSV line per row that was not imported as written, with the reason."""

from __future__ import annotations

import csv
from pathlib import Path

from campaigns.exports import csv_safe

from .csvtext import MARK


class ErrorReport:
    """Written as rows are read (never held in memory). Opens its file on the first problem only.

    ``carry_from``/``carry_until``: an import resumed after its worker died starts its report with the
    lines of the previous attempt's report for the rows it had committed (those up to ``carry_until``).
    """

    def __init__(self, path: str | Path | None, header: list[str], *, carry_from: str | Path | None = None,
                 carry_until: int = 0):
        self.path = Path(path) if path else None
        self.header = header
        self.lines = 0
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
                if self._writer is None:
                    self._open()
                self._writer.writerow(line)
                self.lines += 1

    def add(self, row_number: int, values: list[str], problem: str) -> None:
        self.lines += 1
        if self.path is None:
            return
        if self._writer is None:
            self._open()
        cells = [MARK.sub("\ufffd", c) for c in values] + [""] * (len(self.header) - len(values))
        self._writer.writerow([row_number, csv_safe(problem), *(csv_safe(c) for c in cells)])

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def written(self) -> bool:
        return self.path is not None and self.lines > 0
