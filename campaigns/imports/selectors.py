"""Reads for imports: the preview of an uploaded file and the progress of a job."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from django.conf import settings

from ..models import ImportJob
from .lease import lease_state
from .readers import ImportFileError, open_table
from .report import clip

PREVIEW_ROWS = 10
PREVIEW_CELL_CHARS = 200  # a longer value is shown cut (the import itself takes it whole)


@dataclass
class Preview:
    header: list[str]
    rows: list[tuple[int, list[str]]]
    description: str
    total_rows: int | None


def import_preview(*, job: ImportJob, rows: int = PREVIEW_ROWS) -> Preview:
    """The first non-blank rows of a job's file, padded to the header's width, each value cut for display. The
    file is opened as for the import: within its limits (``readers``), or not at all."""
    try:
        table = open_table(job.file.path, max_bytes=settings.IMPORT_MAX_BYTES)
    except ImportFileError:
        return Preview(header=job.header, rows=[], description="", total_rows=None)
    with table:
        width = len(table.header)
        sample = []
        try:
            for record in table.rows():
                if not record.error and not any(v.strip() for v in record.cells):
                    continue
                cells = [clip(cell, PREVIEW_CELL_CHARS) for cell in (record.cells + [""] * width)[:width]]
                sample.append((record.number, cells))
                if len(sample) >= rows:
                    break
        except ImportFileError:
            pass  # a file cut short: the preview shows what could be read
        return Preview(header=table.header, rows=sample, description=table.describe(), total_rows=table.total_rows)


def import_progress(*, job: ImportJob) -> dict:
    """What the admin's progress bar polls. ``stalled``: queued or running, and no live worker has it (it
    waits for the sweep, or the admin's resume button, to be put back on the queue)."""
    stalled = job.status in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING) and lease_state(job.pk).stale
    return {
        "id": job.pk,
        "status": job.status,
        "status_display": job.get_status_display(),
        "progress": job.progress,
        "rows": job.rows,
        "created": job.created_count,
        "updated": job.updated_count,
        "skipped": job.skipped_count,
        "invalid": job.invalid_count,
        "duplicate": job.duplicate_count,
        "fixed_line": job.fixed_line_count,
        "warnings": job.warning_count,
        "error_message": job.error_message,
        "has_report": bool(job.error_report),
        "finished": job.status in (ImportJob.Status.COMPLETED, ImportJob.Status.FAILED),
        "stalled": stalled,
    }


def region_choices() -> list[tuple[str, str]]:
    """Default-country choices: ISO code and calling code, e.g. ('GB', 'GB +44')."""
    choices = [("", "none: every number has a + country code")]
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        choices.append((region, f"{region} +{phonenumbers.country_code_for_region(region)}"))
    return choices


def custom_field_keys(*, jobs: int = 50, contacts: int = 500) -> list[str]:
    """Custom field names in use, from recent imports' mappings and the newest contacts (cheap at any size)."""
    from ..models import Contact
    from .mapping import CUSTOM

    keys: dict[str, None] = {}
    for mapping in ImportJob.objects.order_by("-id").values_list("mapping", flat=True)[:jobs]:
        for target in mapping or []:
            if target.startswith(CUSTOM):
                keys.setdefault(target[len(CUSTOM):], None)
    for fields in Contact.objects.order_by("-id").values_list("custom_fields", flat=True)[:contacts]:
        for key in fields or {}:
            keys.setdefault(key, None)
    return sorted(keys)
