"""Writes for imports: the import itself (``contact_import_run``) and the admin's import jobs around it.

An import reads the file as a stream, validates each row, and writes in chunks of ``IMPORT_CHUNK_ROWS``
rows, one transaction per chunk: new contacts by a multi-row INSERT ... ON CONFLICT DO NOTHING, changed
ones by ``bulk_update``, list memberships the same way. Memory grows only with the number of distinct phone numbers (kept
as integers to find duplicates across chunks), never with the file. Everything that can make a whole
file unusable (type, size, encoding, header, mapping, a phone column with no readable number) is checked
before the first write, so a refused file creates nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.utils import timezone

from messaging.models import ConsentEvent, Suppression
from messaging.services import consent_import

from ..models import Contact, ContactList, ImportJob, ListMembership
from . import mapping as mapping_mod
from .mapping import MappingError
from .readers import ImportFileError, Table, open_table
from .report import ErrorReport
from .validate import phone_normalize, region_name, row_clean

logger = logging.getLogger("campaigns.imports")
J = ImportJob.Status
SAMPLE_ROWS = 200
UPDATABLE = ("first_name", "last_name", "email", "timezone")


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

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.rows} rows: {self.created} created, {self.updated} updated, {self.skipped} skipped, "
            f"{self.invalid} invalid, {self.duplicate} duplicate ({self.fixed_line} fixed-line numbers, "
            f"{self.warnings} rows with warnings)"
        )


ProgressCallback = Callable[[ImportSummary, float], None]


# ---- checks before anything is written -------------------------------------------------------------


def import_file_open(*, path: str | Path, max_bytes: int | None) -> Table:
    """Open a file for import and refuse one whose first row is data rather than column names."""
    table = open_table(path, max_bytes=max_bytes)
    for cell in table.header:
        if phone_normalize(cell, settings.PHONENUMBER_DEFAULT_REGION).e164:
            table.close()
            raise ImportFileError(
                f"The first row holds a phone number ({cell!r}) instead of column names. "
                "Add a header row, e.g. phone,first name,last name."
            )
    return table


def import_sample_check(*, path: str | Path, mapping: list[str], region: str | None, max_bytes: int | None) -> None:
    """Refuse a mapping whose phone column has no usable number in the first rows."""
    with import_file_open(path=path, max_bytes=max_bytes) as table:
        column = mapping_mod.phone_column(mapping)
        name = table.header[column]
        rows = filled = 0
        first_problem = None
        for number, values in table.rows():
            if not any(v.strip() for v in values):
                continue
            rows += 1
            cell = values[column].strip() if column < len(values) else ""
            if cell:
                filled += 1
                phone = phone_normalize(cell, region)
                if phone.e164:
                    return
                first_problem = first_problem or (number, phone.error)
            if rows >= SAMPLE_ROWS:
                break
    if rows == 0:
        raise ImportFileError("The file has a header row but no data rows.")
    if filled == 0:
        raise ImportFileError(f"The column {name!r}, chosen for phone numbers, is empty in the first {rows} rows.")
    number, problem = first_problem
    raise ImportFileError(
        f"None of the first {filled} values in {name!r} is a usable phone number (row {number}: {problem}) "
        f"Check that this is the phone column and the default country ({region_name(region)})."
    )


# ---- the import --------------------------------------------------------------------------------------


def contact_import_run(
    *,
    path: str | Path,
    mapping: list[str],
    region: str | None,
    policy: str = ImportJob.Policy.UPDATE,
    kind: str = ImportJob.Kind.CONTACTS,
    contact_list_id: int | None = None,
    user=None,
    report_path: str | Path | None = None,
    max_bytes: int | None = None,
    chunk_rows: int | None = None,
    detail: str = "",
    on_progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import one file to the end. Raises ImportFileError/MappingError before writing anything when the
    file or mapping cannot be used; row problems go to the error report and never stop the import."""
    chunk_rows = chunk_rows or settings.IMPORT_CHUNK_ROWS
    region = (region or "").upper() or None
    with import_file_open(path=path, max_bytes=max_bytes) as table:
        mapping = mapping_mod.check(table.header, mapping)
    import_sample_check(path=path, mapping=mapping, region=region, max_bytes=max_bytes)

    summary = ImportSummary()
    seen: dict[int, int] = {}  # phone digits -> first row number, for duplicates across chunks
    pending: dict[str, tuple] = {}  # e164 -> (row, duplicate of an earlier chunk)
    update = policy == ImportJob.Policy.UPDATE
    contacts = kind == ImportJob.Kind.CONTACTS
    if kind == ImportJob.Kind.SUPPRESSION:
        mapping = ["phone" if m == "phone" else "" for m in mapping]

    def flush() -> None:
        if pending:
            if contacts:
                _contacts_write(pending=pending, update=update, contact_list_id=contact_list_id, summary=summary)
            else:
                result = consent_import(
                    phones=list(pending), action=ConsentEvent.Action.OPT_OUT, method=ConsentEvent.Method.IMPORT,
                    detail=detail or "suppression list import", user=user,
                )
                summary.created += result["changed"]
                summary.skipped += result["unchanged"]
            pending.clear()
        if on_progress:
            on_progress(summary, table.progress())

    with import_file_open(path=path, max_bytes=max_bytes) as table:
        report = ErrorReport(report_path, table.header)
        try:
            for number, values in table.rows():
                if not any(v.strip() for v in values):
                    continue  # blank line
                summary.rows += 1
                row = row_clean(number, values, mapping, region)
                if not row.phone.e164:
                    summary.invalid += 1
                    report.add(number, values, f"Not imported: {row.phone.error}")
                    continue
                e164 = row.phone.e164
                key = int(e164[1:])
                first = seen.get(key)
                if first is not None:
                    summary.duplicate += 1
                    if update:
                        report.add(number, values, f"Same number ({e164}) as row {first}: merged into it.")
                        if e164 in pending:
                            _merge_rows(pending[e164][0], row)
                        else:
                            pending[e164] = (row, True)
                    else:
                        report.add(number, values, f"Same number ({e164}) as row {first}: ignored, row {first} kept.")
                    continue
                seen[key] = number
                if row.phone.fixed_line:
                    summary.fixed_line += 1
                if row.warnings and contacts:
                    summary.warnings += 1
                    report.add(number, values, " ".join(row.warnings))
                pending[e164] = (row, False)
                if len(pending) >= chunk_rows:
                    flush()
            flush()
        finally:
            report.close()
    return summary


def _merge_rows(into, row) -> None:
    """A later row of the same number: its non-empty values win (policy update)."""
    into.fields.update(row.fields)
    into.custom.update(row.custom)


def _existing(phones: list[str]) -> dict[str, tuple]:
    """Existing contacts by E.164: (id, first, last, email, timezone, custom_fields). Raw SQL so the
    phone index is used and no value is parsed again."""
    table = Contact._meta.db_table
    found: dict[str, tuple] = {}
    columns = f"SELECT id, phone, first_name, last_name, email, timezone, custom_fields FROM {table}"
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        for start in range(0, len(phones), 5000 if postgres else 900):
            part = phones[start:start + (5000 if postgres else 900)]
            if postgres:
                cursor.execute(f"{columns} WHERE phone = ANY(%s)", [part])
            else:
                cursor.execute(f"{columns} WHERE phone IN ({', '.join(['%s'] * len(part))})", part)
            for cid, phone, first, last, email, tz, custom in cursor.fetchall():
                if isinstance(custom, (str, bytes)):
                    custom = json.loads(custom or "{}")
                found[phone] = (cid, first, last, email, tz, custom or {})
    return found


def _suppressed(phones: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(phones), 900):
        found.update(
            Suppression.objects.filter(phone__in=phones[start:start + 900], opted_out=True).values_list(
                "phone", flat=True
            )
        )
    return found


def _contacts_write(*, pending: dict, update: bool, contact_list_id: int | None, summary: ImportSummary) -> None:
    """Write one chunk in one transaction."""
    with transaction.atomic():
        counts = _contacts_write_once(pending=pending, update=update, contact_list_id=contact_list_id)
    summary.created += counts["created"]
    summary.updated += counts["updated"]
    summary.skipped += counts["skipped"]


def _insert_rows(table: str, columns: list[str], types: list[str], rows: list[tuple], conflict: str) -> None:
    """Insert many rows, skipping conflicts. PostgreSQL: one ``INSERT ... SELECT FROM unnest(arrays)`` per
    chunk (a handful of parameters, whatever the row count). Others: multi-row VALUES, in statements that
    stay under the backend's limit on query parameters."""
    if not rows:
        return
    names = ", ".join(columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = ", ".join(f"%s::{'text' if t == 'jsonb' else t}[]" for t in types)
            values = ", ".join(f"c{i}::jsonb" if t == "jsonb" else f"c{i}" for i, t in enumerate(types))
            aliases = ", ".join(f"c{i}" for i in range(len(types)))
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {values} FROM unnest({arrays}) AS u({aliases}) {conflict}",
                [list(column) for column in zip(*rows, strict=False)],
            )
            return
        width = len(columns)
        size = max(1, min(1000, (connection.features.max_query_params or 10000) // width))
        one = "(" + ", ".join(["%s"] * width) + ")"
        for start in range(0, len(rows), size):
            part = rows[start:start + size]
            cursor.execute(f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(part))} {conflict}",
                           [v for r in part for v in r])


def _contacts_write_once(*, pending: dict, update: bool, contact_list_id: int | None) -> dict:
    """New contacts by a plain multi-row INSERT (ON CONFLICT DO NOTHING: a number inserted by someone else
    meanwhile is then simply an existing contact), changed ones by bulk_update, then list memberships."""
    phones = list(pending)
    existing = _existing(phones)
    suppressed = _suppressed([p for p in phones if p not in existing])
    now = timezone.now()
    created = updated = skipped = 0
    new_rows: list[tuple] = []
    changed: list[Contact] = []
    stamp = connection.ops.adapt_datetimefield_value(now)
    for phone, (row, duplicate) in pending.items():
        old = existing.get(phone)
        if old is None:
            f = row.fields
            new_rows.append((
                phone, f.get("first_name", ""), f.get("last_name", ""), f.get("email", ""), f.get("timezone", ""),
                json.dumps(row.custom), phone in suppressed, row.phone.fixed_line,
                stamp, stamp,
            ))
            created += 1
            continue
        cid, first, last, email, tz, custom = old
        if not update:
            skipped += not duplicate
            continue
        before = {"first_name": first, "last_name": last, "email": email, "timezone": tz}
        after = {**before, **row.fields}
        merged = {**custom, **row.custom}
        if after != before or merged != custom:
            changed.append(Contact(pk=cid, custom_fields=merged, is_fixed_line=row.phone.fixed_line,
                                   updated_at=now, **after))
            updated += not duplicate
        else:
            skipped += not duplicate
    table = Contact._meta.db_table
    if new_rows:
        _insert_rows(
            table,
            ["phone", "first_name", "last_name", "email", "timezone", "custom_fields", "opted_out", "is_fixed_line",
             "created_at", "updated_at"],
            ["text", "text", "text", "text", "text", "jsonb", "boolean", "boolean", "timestamptz", "timestamptz"],
            new_rows,
            "ON CONFLICT (phone) DO NOTHING",
        )
    if changed:
        Contact.objects.bulk_update(changed, [*UPDATABLE, "custom_fields", "is_fixed_line", "updated_at"],
                                    batch_size=500)
    if contact_list_id:
        ids = [old[0] for old in existing.values()]
        if new_rows:
            ids += [v[0] for v in _existing([r[0] for r in new_rows]).values()]
        _insert_rows(
            ListMembership._meta.db_table,
            ["contact_id", "contact_list_id", "added_at"],
            ["bigint", "bigint", "timestamptz"],
            [(cid, contact_list_id, stamp) for cid in ids],
            "ON CONFLICT (contact_list_id, contact_id) DO NOTHING",
        )
    return {"created": created, "updated": updated, "skipped": skipped}


# ---- import jobs (admin) ----------------------------------------------------------------------------


def import_job_create(*, upload: UploadedFile, user=None, kind: str = ImportJob.Kind.CONTACTS) -> ImportJob:
    """Store an uploaded file and check it can be imported. Raises ImportFileError (nothing is kept)."""
    max_bytes = settings.IMPORT_MAX_BYTES
    if upload.size is not None and upload.size > max_bytes:
        from .readers import megabytes

        raise ImportFileError(f"The file is {megabytes(upload.size)}; the limit is {megabytes(max_bytes)}. "
                              "Split it into smaller files.")
    name = Path(upload.name or "upload").name[:200]
    job = ImportJob(kind=kind, original_name=name, size_bytes=upload.size or 0, created_by=user)
    job.file.save(name, upload, save=False)
    try:
        with import_file_open(path=job.file.path, max_bytes=max_bytes) as table:
            job.file_format = table.file_format
            job.encoding = table.encoding
            job.delimiter = table.delimiter
            job.header = table.header
            job.mapping = mapping_mod.auto_map(table.header)
    except ImportFileError:
        job.file.delete(save=False)
        raise
    job.save()
    return job


def import_job_configure(
    *,
    job: ImportJob,
    mapping: list[str],
    region: str,
    policy: str,
    contact_list: ContactList | None = None,
    new_list_name: str = "",
) -> ImportJob:
    """Fix the mapping, default country, policy and list of a new job, check them, and queue the import."""
    if job.status != J.NEW:
        raise MappingError("This import has already been started.")
    mapping = mapping_mod.check(job.header, mapping)
    region = (region or "").upper()
    if job.kind == ImportJob.Kind.CONTACTS and contact_list is None and not new_list_name.strip():
        raise MappingError("Choose the list these contacts go into, or name a new one.")
    import_sample_check(path=job.file.path, mapping=mapping, region=region or None, max_bytes=settings.IMPORT_MAX_BYTES)
    with transaction.atomic():
        if job.kind == ImportJob.Kind.CONTACTS and contact_list is None:
            contact_list, _ = ContactList.objects.get_or_create(name=new_list_name.strip()[:120])
        if job.kind != ImportJob.Kind.CONTACTS:
            contact_list = None
        changed = ImportJob.objects.filter(pk=job.pk, status=J.NEW).update(
            status=J.QUEUED, mapping=mapping, region=region, policy=policy, contact_list=contact_list
        )
        if not changed:
            raise MappingError("This import has already been started.")
        transaction.on_commit(lambda: _enqueue(job.pk))
    job.refresh_from_db()
    return job


def _enqueue(job_id: int) -> None:
    from campaigns import tasks

    tasks.import_contacts.delay(job_id)


def import_report_path(job: ImportJob) -> tuple[Path, str]:
    name = f"imports/reports/import-{job.pk}-problems.csv"
    return Path(settings.MEDIA_ROOT) / name, name


def import_job_run(*, job_id: int) -> dict:
    """Run a queued job to the end. Only the caller that moves it from queued to running imports it."""
    now = timezone.now()
    if not ImportJob.objects.filter(pk=job_id, status=J.QUEUED).update(status=J.RUNNING, started_at=now):
        return {"skipped": 1}
    job = ImportJob.objects.select_related("contact_list", "created_by").get(pk=job_id)
    report_file, report_name = import_report_path(job)

    def progress(summary: ImportSummary, fraction: float) -> None:
        ImportJob.objects.filter(pk=job_id).update(progress=round(fraction * 100, 1), **_counts(summary))

    try:
        summary = contact_import_run(
            path=job.file.path,
            mapping=job.mapping,
            region=job.region or None,
            policy=job.policy,
            kind=job.kind,
            contact_list_id=job.contact_list_id,
            user=job.created_by,
            report_path=report_file,
            max_bytes=settings.IMPORT_MAX_BYTES,
            detail=f"suppression list {job.original_name} (import #{job.pk})",
            on_progress=progress,
        )
    except (ImportFileError, MappingError) as exc:
        _finish(job_id, status=J.FAILED, error_message=str(exc), report_file=report_file, report_name=report_name)
        return {"failed": 1}
    except Exception as exc:
        logger.exception("import %s stopped", job_id)
        _finish(job_id, status=J.FAILED, report_file=report_file, report_name=report_name,
                error_message=f"The import stopped unexpectedly ({type(exc).__name__}). The rows counted below "
                "were imported; importing the same file again will update them rather than duplicate them.")
        return {"failed": 1}
    _finish(job_id, status=J.COMPLETED, progress=100.0, report_file=report_file, report_name=report_name,
            **_counts(summary))
    return summary.as_dict()


def _counts(summary: ImportSummary) -> dict:
    return {
        "rows": summary.rows,
        "created_count": summary.created,
        "updated_count": summary.updated,
        "skipped_count": summary.skipped,
        "invalid_count": summary.invalid,
        "duplicate_count": summary.duplicate,
        "fixed_line_count": summary.fixed_line,
        "warning_count": summary.warnings,
    }


def _finish(job_id: int, *, status: str, report_file: Path, report_name: str, **fields) -> None:
    if report_file.exists():
        fields["error_report"] = report_name
    ImportJob.objects.filter(pk=job_id, status=J.RUNNING).update(status=status, finished_at=timezone.now(), **fields)


def import_job_delete(*, job: ImportJob) -> None:
    """Forget an import: its uploaded file, its report, its record. Imported contacts stay."""
    if job.status in (J.QUEUED, J.RUNNING):
        raise MappingError("This import is still running; delete it once it has finished.")
    for stored in (job.file, job.error_report):
        if stored:
            stored.delete(save=False)
    job.delete()
