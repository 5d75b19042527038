"""Writes for imports: the import itself (``contact_import_run``) and the admin's import jobs around it.

An import (``run.ImportPass``, ``writes``) reads the file as a stream, validates each row, and writes in chunks of ``IMPORT_CHUNK_ROWS``
rows, one transaction per chunk: new contacts by a multi-row INSERT ... ON CONFLICT DO NOTHING, changed
ones by ``bulk_update``, list memberships the same way. When the database refuses a chunk, it is split
in halves until the refused row is found: that row is reported, every other one is written.

Memory does not grow with the file: the only thing kept for the whole import is which row each distinct
phone number was first seen on (``FirstRows``: two flat arrays, about 25 bytes per number), to find
duplicates across chunks. Everything that can make a whole file unusable (type, size, encoding, header,
mapping, default country, a phone column with no readable number) is checked before the first write, so
a refused file creates nothing, not even the list it was meant for.

An import job commits its counts with each chunk, conditionally on the count committed before (the
fence: a worker that was overtaken cannot commit), and holds a lease (see ``lease``) whose heartbeat
tells a live worker from a dead one. A job whose worker died is resumed from its last committed chunk:
the rows before it are read again only to learn their phone numbers, nothing is written twice, and the
problem report carries over.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from ..models import ContactList, ImportJob
from . import mapping as mapping_mod
from .lease import Lease, lease_claim, lease_mark_queued, lease_remove, lease_replace, lease_state
from .mapping import MappingError
from .readers import FileCutError, ImportFileError, Table, open_table
from .report import ErrorReport
from .run import ImportPass, ImportSummary, ImportTakenOver, ProgressCallback, Resume
from .validate import phone_normalize, region_clean, region_name

logger = logging.getLogger("campaigns.imports")
J = ImportJob.Status
SAMPLE_ROWS = 200


class ImportJobBusyError(Exception):
    """The job is being imported right now by a live worker."""


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
        try:
            for record in table.rows():
                if record.error or not any(v.strip() for v in record.cells):
                    continue
                rows += 1
                cell = record.cells[column].strip() if column < len(record.cells) else ""
                if cell:
                    filled += 1
                    phone = phone_normalize(cell, region)
                    if phone.e164:
                        return
                    first_problem = first_problem or (record.number, phone.error)
                if rows >= SAMPLE_ROWS:
                    break
        except FileCutError:
            pass  # judged on the rows that could be read; the import reports the cut
    if rows == 0:
        raise ImportFileError("The file has a header row but no data rows.")
    if filled == 0:
        raise ImportFileError(f"The column {name!r}, chosen for phone numbers, is empty in the first {rows} rows.")
    number, problem = first_problem
    raise ImportFileError(
        f"None of the first {filled} values in {name!r} is a usable phone number (row {number}: {problem}) "
        f"Check that this is the phone column and the default country ({region_name(region)})."
    )


def import_checks(*, path: str | Path, mapping: list[str], region: str | None,
                  max_bytes: int | None) -> tuple[list[str], str | None]:
    """Every check a file, a mapping and a default country must pass before anything is written.
    Returns the cleaned mapping and region; raises ImportFileError or MappingError."""
    region = region_clean(region)
    with import_file_open(path=path, max_bytes=max_bytes) as table:
        mapping = mapping_mod.check(table.header, mapping)
    import_sample_check(path=path, mapping=mapping, region=region, max_bytes=max_bytes)
    return mapping, region


# ---- the import --------------------------------------------------------------------------------------


def contact_import_run(
    *,
    path: str | Path,
    mapping: list[str],
    region: str | None,
    policy: str = ImportJob.Policy.UPDATE,
    kind: str = ImportJob.Kind.CONTACTS,
    contact_list_id: int | None = None,
    contact_list_name: str = "",
    user=None,
    report_path: str | Path | None = None,
    max_bytes: int | None = None,
    chunk_rows: int | None = None,
    detail: str = "",
    on_progress: ProgressCallback | None = None,
    on_chunk: ProgressCallback | None = None,
    resume: Resume | None = None,
) -> ImportSummary:
    """Import one file to the end. Raises ImportFileError/MappingError before writing anything when the
    file, mapping or region cannot be used; row problems go to the error report and never stop the import.

    ``contact_list_name``: the list is created (if missing) with the first contacts written, so a refused
    file leaves no empty list behind. ``on_chunk`` runs inside each chunk's transaction (an import job
    commits its counts there), ``on_progress`` after each commit. A file that cannot be read to its end is
    imported up to the row where it broke, and the summary says where and why (``cut_at_row``).
    """
    mapping, region = import_checks(path=path, mapping=mapping, region=region, max_bytes=max_bytes)
    if kind == ImportJob.Kind.SUPPRESSION:
        mapping = ["phone" if m == "phone" else "" for m in mapping]
    summary = replace(resume.summary) if resume else ImportSummary()
    with import_file_open(path=path, max_bytes=max_bytes) as table:
        run = ImportPass(
            table=table, mapping=mapping, region=region, policy=policy, kind=kind,
            contact_list_id=contact_list_id, contact_list_name=contact_list_name, user=user, detail=detail,
            chunk_rows=chunk_rows or settings.IMPORT_CHUNK_ROWS, summary=summary,
            on_chunk=on_chunk, on_progress=on_progress,
        )
        records = table.rows()
        done_until = run.replay(records, summary.rows) if summary.rows else 0
        run.report = ErrorReport(report_path, table.header, carry_from=resume.report if resume else None,
                                 carry_until=done_until)
        try:
            run.run(records)
        finally:
            run.report.close()
    return summary


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
    if job.kind == ImportJob.Kind.CONTACTS and contact_list is None and not new_list_name.strip():
        raise MappingError("Choose the list these contacts go into, or name a new one.")
    mapping, region = import_checks(path=job.file.path, mapping=mapping, region=region,
                                    max_bytes=settings.IMPORT_MAX_BYTES)
    with transaction.atomic():
        if job.kind == ImportJob.Kind.CONTACTS and contact_list is None:
            contact_list, _ = ContactList.objects.get_or_create(name=new_list_name.strip()[:120])
        if job.kind != ImportJob.Kind.CONTACTS:
            contact_list = None
        changed = ImportJob.objects.filter(pk=job.pk, status=J.NEW).update(
            status=J.QUEUED, mapping=mapping, region=region or "", policy=policy, contact_list=contact_list
        )
        if not changed:
            raise MappingError("This import has already been started.")
        transaction.on_commit(lambda: _enqueue(job.pk))
    job.refresh_from_db()
    return job


def _enqueue(job_id: int) -> None:
    from campaigns import tasks

    lease_mark_queued(job_id)
    tasks.import_contacts.delay(job_id)


def import_report_path(job: ImportJob, attempt: str) -> tuple[Path, str]:
    """Each attempt at a job writes its own report (a worker that was overtaken may still be writing)."""
    name = f"imports/reports/import-{job.pk}-{attempt}-problems.csv"
    return Path(settings.MEDIA_ROOT) / name, name


def _claim(job_id: int) -> tuple[ImportJob, Lease, Resume | None] | None:
    """Become the job's worker: a queued job by moving it to running (the database decides who), a running
    one only if its worker is gone (stale lease) and we win its lease. None: someone else has it."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return None
    if job.status == J.QUEUED:
        if not ImportJob.objects.filter(pk=job_id, status=J.QUEUED).update(status=J.RUNNING,
                                                                            started_at=timezone.now()):
            return None
        lease = lease_replace(job_id)
        job.refresh_from_db()
        return job, lease, None
    if job.status != J.RUNNING:
        return None
    # Running: this is a second delivery of the task (acks_late: a redelivery after the broker's visibility
    # timeout, or after the worker process died) or a resume put on the queue by the sweep.
    lease = lease_claim(job_id)
    if lease is None:
        return None
    job.refresh_from_db()
    if job.status != J.RUNNING:
        lease.release()
        return None
    previous = Path(job.error_report.path) if job.error_report else None
    logger.warning("import %s: resuming after row %s (its worker stopped)", job_id, job.rows)
    return job, lease, Resume(summary=_summary_of(job), report=previous)


def import_job_run(*, job_id: int) -> dict:
    """Run a queued job to the end, or resume a running one whose worker died. Only the caller that claims
    the job imports it; any other delivery of the task is a no-op."""
    claimed = _claim(job_id)
    if claimed is None:
        return {"skipped": 1}
    job, lease, resume = claimed
    report_file, report_name = import_report_path(job, lease.token[:12])
    committed = {"rows": job.rows}  # the fence: what this worker knows the job has committed

    def on_chunk(summary: ImportSummary, fraction: float) -> None:
        fields = {"progress": round(fraction * 100, 1), **_counts(summary)}
        if report_file.exists():
            fields["error_report"] = report_name
        if not ImportJob.objects.filter(pk=job_id, status=J.RUNNING, rows=committed["rows"]).update(**fields):
            raise ImportTakenOver

    def on_progress(summary: ImportSummary, fraction: float) -> None:
        committed["rows"] = summary.rows
        if not lease.beat():
            raise ImportTakenOver

    def finish(**fields) -> None:
        if report_file.exists():
            fields["error_report"] = report_name
        ImportJob.objects.filter(pk=job_id, status=J.RUNNING, rows=committed["rows"]).update(
            finished_at=timezone.now(), **fields)

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
            on_chunk=on_chunk,
            on_progress=on_progress,
            resume=resume,
        )
    except ImportTakenOver:
        logger.warning("import %s: another worker took it over; this one stops", job_id)
        return {"taken_over": 1}
    except (ImportFileError, MappingError) as exc:
        finish(status=J.FAILED, error_message=str(exc))
        result = {"failed": 1}
    except Exception as exc:
        logger.exception("import %s stopped", job_id)
        finish(status=J.FAILED, error_message=(
            f"The import stopped unexpectedly ({type(exc).__name__}) after {committed['rows']} rows. The rows "
            "counted below were imported; importing the same file again will update them rather than "
            "duplicate them."))
        result = {"failed": 1}
    else:
        if summary.cut:
            finish(status=J.FAILED, error_message=summary.cut_message(), **_counts(summary))
            result = {"failed": 1, **summary.as_dict()}
        else:
            finish(status=J.COMPLETED, progress=100.0, **_counts(summary))
            result = summary.as_dict()
    lease.release()
    if report_file.exists():  # otherwise the job may still name an earlier attempt's report
        _reports_prune(job_id, keep=report_file)
    return result


def _summary_of(job: ImportJob) -> ImportSummary:
    return ImportSummary(
        rows=job.rows, created=job.created_count, updated=job.updated_count, skipped=job.skipped_count,
        invalid=job.invalid_count, duplicate=job.duplicate_count, fixed_line=job.fixed_line_count,
        warnings=job.warning_count,
    )


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


def _reports_prune(job_id: int, *, keep: Path | None = None) -> None:
    """Remove the reports of earlier attempts at a job (and all of them when ``keep`` is None)."""
    folder = Path(settings.MEDIA_ROOT) / "imports" / "reports"
    for path in folder.glob(f"import-{job_id}-*-problems.csv"):
        if path != keep:
            path.unlink(missing_ok=True)


def import_job_stalled(*, job: ImportJob) -> bool:
    """A job queued or running that no live worker holds: put back on the queue by ``import_jobs_sweep``."""
    return job.status in (J.QUEUED, J.RUNNING) and lease_state(job.pk).stale


def import_jobs_sweep() -> dict:
    """Put back on the queue the jobs whose worker is gone (a running job then resumes from its last
    committed chunk) and the queued ones whose task was lost. Meant to run periodically (beat); each job
    is put back at most once per IMPORT_STALE_SECONDS, and the claim makes extra deliveries no-ops."""
    from campaigns import tasks

    counts = {"resumed": 0, "requeued": 0}
    for job_id, status in ImportJob.objects.filter(status__in=(J.QUEUED, J.RUNNING)).values_list("id", "status"):
        if not lease_state(job_id).stale:
            continue
        lease_mark_queued(job_id)
        tasks.import_contacts.delay(job_id)
        counts["resumed" if status == J.RUNNING else "requeued"] += 1
    return counts


def import_job_resume(*, job: ImportJob) -> bool:
    """Put a stalled job back on the queue now (the admin's button). False if a live worker has it."""
    if not import_job_stalled(job=job):
        return False
    _enqueue(job.pk)
    return True


def import_job_delete(*, job: ImportJob) -> None:
    """Forget an import: its uploaded file, its reports, its lease, its record. Imported contacts stay.
    Refused only while a live worker is importing it (a worker found dead is simply forgotten: if it was
    only paused, its next commit finds the job gone and it stops)."""
    if job.status == J.RUNNING and lease_state(job.pk).alive:
        raise ImportJobBusyError("This import is running; delete it once it has finished.")
    for stored in (job.file, job.error_report):
        if stored:
            stored.delete(save=False)
    _reports_prune(job.pk)
    lease_remove(job.pk)
    job.delete()
