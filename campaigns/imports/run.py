"""One pass of an import over a file: rows read, checked, gathered into chunks, written.

``contact_import_run`` (in ``services``) sets a pass up; the pass owns what an import keeps while it
runs: the counts, the chunk being gathered, and which row each phone number was first seen on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from django.db import DataError, IntegrityError, transaction

from messaging.models import ConsentEvent
from messaging.services import consent_import

from ..models import ContactList, ImportJob
from . import mapping as mapping_mod
from .firstrows import FirstRows
from .readers import FileCutError, Table
from .report import ErrorReport
from .validate import Row, phone_normalize, row_clean
from .writes import contacts_write


class ImportTakenOver(Exception):
    """Another worker has taken this job over (this one was presumed dead): stop without touching it."""


@dataclass
class ImportSummary:
    rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    invalid: int = 0
    duplicate: int = 0
    fixed_line: int = 0
    warnings: int = 0
    cut_at_row: int = 0  # the file could not be read from this row on
    cut_reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def cut(self) -> bool:
        return bool(self.cut_at_row)

    def cut_message(self) -> str:
        return (
            f"The file was cut at row {self.cut_at_row}: it could not be read from there on ({self.cut_reason}). "
            f"The {self.rows} rows before it were read and imported as counted; row {self.cut_at_row} and "
            "everything after it were not. Repair or export the file again and import it again: rows already "
            "imported will be updated or skipped, not duplicated."
        )

    def __str__(self) -> str:
        text = (
            f"{self.rows} rows: {self.created} created, {self.updated} updated, {self.skipped} skipped, "
            f"{self.invalid} invalid, {self.duplicate} duplicate ({self.fixed_line} fixed-line numbers, "
            f"{self.warnings} rows with warnings)"
        )
        if self.cut:
            text += f"; cut at row {self.cut_at_row}: {self.cut_reason}"
        return text


ProgressCallback = Callable[[ImportSummary, float], None]


@dataclass
class Resume:
    """Where an interrupted import job got to: its committed counts and its problem report so far."""

    summary: ImportSummary
    report: Path | None = None


class ImportPass:
    """One pass over a file: rows read, checked, gathered into chunks and written."""

    report: ErrorReport

    def __init__(self, *, table: Table, mapping: list[str], region: str | None, policy: str, kind: str,
                 contact_list_id: int | None, contact_list_name: str, user, detail: str, chunk_rows: int,
                 summary: ImportSummary, on_chunk: ProgressCallback | None, on_progress: ProgressCallback | None):
        self.table = table
        self.mapping = mapping
        self.region = region
        self.update = policy == ImportJob.Policy.UPDATE
        self.contacts = kind == ImportJob.Kind.CONTACTS
        self.contact_list_id = contact_list_id
        self.contact_list_name = contact_list_name.strip()[:120]
        self.user = user
        self.detail = detail
        self.chunk_rows = chunk_rows
        self.summary = summary
        self.on_chunk = on_chunk
        self.on_progress = on_progress
        self.seen = FirstRows()  # phone digits -> first row number, for duplicates across chunks
        self.pending: dict[str, tuple[Row, bool]] = {}  # e164 -> (row, duplicate of an earlier chunk's row)
        self.since_flush = 0
        self.phone_column = mapping_mod.phone_column(mapping)
        self._db_error: Exception | None = None

    # -- reading

    def replay(self, records, rows: int) -> int:
        """Read again the first ``rows`` rows, which an earlier attempt has committed, only to learn their
        phone numbers. Returns the number of the last of them."""
        column, region, seen = self.phone_column, self.region, self.seen
        done = last = 0
        for record in records:
            cells = record.cells
            if not record.error:
                if not any(v.strip() for v in cells):
                    continue
                phone = phone_normalize(cells[column] if column < len(cells) else "", region)
                if phone.e164:
                    seen.first(int(phone.e164[1:]), record.number)
            done += 1
            last = record.number
            if done % self.chunk_rows == 0 and self.on_progress:
                self.on_progress(self.summary, self.table.progress())  # a heartbeat, nothing committed
            if done >= rows:
                break
        return last

    def run(self, records) -> None:
        summary = self.summary
        try:
            for record in records:
                if record.error:
                    summary.rows += 1
                    summary.invalid += 1
                    self.report.add(record.number, record.cells, record.error)
                elif any(v.strip() for v in record.cells):
                    summary.rows += 1
                    self._take(record)
                else:
                    continue  # blank line
                self.since_flush += 1
                if self.since_flush >= self.chunk_rows:
                    self.flush()
        except FileCutError as exc:
            summary.cut_at_row, summary.cut_reason = exc.row, exc.reason
        self.flush()

    def _take(self, record) -> None:
        summary, report = self.summary, self.report
        number, values = record.number, record.cells
        row = row_clean(number, values, self.mapping, self.region)
        if record.warning:
            row.warnings.insert(0, record.warning)
        if not row.phone.e164:
            summary.invalid += 1
            report.add(number, values, f"Not imported: {row.phone.error}")
            return
        e164 = row.phone.e164
        first = self.seen.first(int(e164[1:]), number)
        if first is not None:
            summary.duplicate += 1
            if self.update:
                report.add(number, values, f"Same number ({e164}) as row {first}: merged into it.")
                if e164 in self.pending:
                    _merge_rows(self.pending[e164][0], row)
                else:
                    self.pending[e164] = (row, True)
            else:
                report.add(number, values, f"Same number ({e164}) as row {first}: ignored, row {first} kept.")
            return
        if row.phone.fixed_line:
            summary.fixed_line += 1
        if row.warnings and self.contacts:
            summary.warnings += 1
            report.add(number, values, " ".join(row.warnings))
        self.pending[e164] = (row, False)

    # -- writing

    def flush(self) -> None:
        fraction = self.table.progress()
        items = list(self.pending.items())
        with transaction.atomic():
            if items:
                if self.contacts and self.contact_list_id is None and self.contact_list_name:
                    self.contact_list_id = ContactList.objects.get_or_create(name=self.contact_list_name)[0].pk
                refused = self._write(items)
                if refused == len(items) >= 10:
                    raise self._db_error  # not one row of the chunk could be written: not the rows' fault
            if self.on_chunk:
                self.report.flush()
                self.on_chunk(self.summary, fraction)
        self.pending.clear()
        self.since_flush = 0
        if self.on_progress:
            self.on_progress(self.summary, fraction)

    def _write(self, items: list[tuple[str, tuple[Row, bool]]]) -> int:
        """Write rows in a savepoint; when the database refuses them, halve until the refused rows are
        found and reported. Returns how many rows were refused."""
        try:
            with transaction.atomic():
                counts = self._write_once(dict(items))
        except (DataError, IntegrityError) as exc:
            self._db_error = exc
            if len(items) == 1:
                self._refused(items[0], exc)
                return 1
            middle = len(items) // 2
            return self._write(items[:middle]) + self._write(items[middle:])
        self.summary.created += counts["created"]
        self.summary.updated += counts["updated"]
        self.summary.skipped += counts["skipped"]
        return 0

    def _write_once(self, pending: dict) -> dict:
        if self.contacts:
            return contacts_write(pending=pending, update=self.update, contact_list_id=self.contact_list_id)
        result = consent_import(
            phones=list(pending), action=ConsentEvent.Action.OPT_OUT, method=ConsentEvent.Method.IMPORT,
            detail=self.detail or "suppression list import", user=self.user,
        )
        return {"created": result["changed"], "updated": 0, "skipped": result["unchanged"]}

    def _refused(self, item: tuple[str, tuple[Row, bool]], exc: Exception) -> None:
        phone, (row, duplicate) = item
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        if duplicate:
            problem = f"The values of this row for {phone} could not be saved: the database refused them ({reason})."
        else:
            self.summary.invalid += 1
            problem = f"Not imported: the database refused this row ({reason})."
        self.report.add(row.number, row.values, problem)


def _merge_rows(into, row) -> None:
    """A later row of the same number: its non-empty values win (policy update)."""
    into.fields.update(row.fields)
    into.custom.update(row.custom)
