"""Import jobs whose worker dies, is delivered twice, or is overtaken: resumed, never imported twice."""

from __future__ import annotations

import csv
import io
import os
import time
from contextlib import contextmanager

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from campaigns.imports.lease import lease_mark_queued, lease_path, lease_replace, lease_state
from campaigns.imports.selectors import import_progress
from campaigns.imports.services import (
    ImportJobBusyError,
    import_job_configure,
    import_job_create,
    import_job_delete,
    import_job_run,
    import_jobs_sweep,
)
from campaigns.models import Contact, ImportJob, ListMembership
from tests.support import PYTHON, Process, database_url, wait_until

ROWS = 30_000


def big_file(rows: int = ROWS) -> bytes:
    """Every 100th row is not a number, every 100th (another) repeats a number seen 7 rows earlier."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["phone", "first name"])
    for n in range(rows):
        if n % 100 == 99:
            writer.writerow(["n/a", f"F{n}"])
        else:
            writer.writerow([f"+1212{2_000_000 + (n - 7 if n % 100 == 50 else n):07d}", f"F{n}"])
    return out.getvalue().encode()


EXPECTED = {"rows": ROWS, "created_count": ROWS - 2 * ROWS // 100, "invalid_count": ROWS // 100,
            "duplicate_count": ROWS // 100}


def queued_job(data: bytes = None) -> ImportJob:
    job = import_job_create(upload=SimpleUploadedFile("big.csv", data or big_file()))
    return import_job_configure(job=job, mapping=["phone", "first_name"], region="US", policy="update",
                                new_list_name="Big")


def counts(job: ImportJob) -> dict:
    job.refresh_from_db()
    return {name: getattr(job, name) for name in EXPECTED}


def report_rows(job: ImportJob) -> list[int]:
    with job.error_report.open("rb") as fh:
        lines = list(csv.reader(io.StringIO(fh.read().decode("utf-8-sig"))))
    return [int(line[0]) for line in lines[1:]]


def assert_imported_once(job: ImportJob) -> None:
    assert job.status == ImportJob.Status.COMPLETED and counts(job) == EXPECTED
    assert Contact.objects.count() == EXPECTED["created_count"]
    assert ListMembership.objects.filter(contact_list__name="Big").count() == EXPECTED["created_count"]
    problems = report_rows(job)
    assert len(problems) == len(set(problems)) == EXPECTED["invalid_count"] + EXPECTED["duplicate_count"]
    assert Contact.objects.get(phone="+12122000043").first_name == "F50"  # row 52 merged into row 45


@contextmanager
def tasks_run_here():
    """Celery tasks enqueued inside the block run in this process (the sweep's, the resume button's)."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


def worker(job: ImportJob, media_root, tmp_path, chunk_rows: int = 500) -> Process:
    """``import_job_run`` in a process of its own, as a Celery worker would run it."""
    code = f"from campaigns.imports.services import import_job_run; print(import_job_run(job_id={job.pk}))"
    return Process([PYTHON, "manage.py", "shell", "-c", code], log=tmp_path / "worker.log", env={
        "DATABASE_URL": database_url(connection.settings_dict), "MEDIA_ROOT": str(media_root),
        "IMPORT_CHUNK_ROWS": str(chunk_rows), "CELERY_TASK_ALWAYS_EAGER": "false",
    })


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_was_killed_is_resumed_from_its_last_chunk(media_root, tmp_path):
    job = queued_job()  # its task goes to a broker nobody reads here: the worker below runs it
    process = worker(job, media_root, tmp_path)
    try:
        wait_until(lambda: counts(job)["rows"] >= 2000, timeout=60, message="the first chunks")
    finally:
        process.kill()  # SIGKILL: no cleanup, no exception handler, the job stays "running"
    job.refresh_from_db()
    assert job.status == ImportJob.Status.RUNNING and 2000 <= job.rows < ROWS, process.output()
    assert import_progress(job=job)["stalled"]  # its owner process is gone

    with tasks_run_here():
        swept = import_jobs_sweep()  # what beat runs
    assert swept == {"resumed": 1, "requeued": 0}
    job.refresh_from_db()
    assert_imported_once(job)
    assert not lease_path(job.pk).exists()
    assert len(list((media_root / "imports" / "reports").glob(f"import-{job.pk}-*"))) == 1


@pytest.mark.django_db(transaction=True)
def test_a_worker_overtaken_by_another_commits_nothing_more(media_root, tmp_path):
    job = queued_job()
    process = worker(job, media_root, tmp_path)
    try:
        wait_until(lambda: counts(job)["rows"] >= 1000, timeout=60, message="the first chunks")
        # Another worker took the job over and committed a chunk of its own meanwhile.
        ImportJob.objects.filter(pk=job.pk).update(rows=ROWS + 1)
        wait_until(lambda: not process.alive(), timeout=60, message="the overtaken worker to stop")
    finally:
        process.kill()
    assert "taken_over" in process.output()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.RUNNING and job.rows == ROWS + 1  # nothing written over it


@pytest.mark.django_db
def test_a_second_delivery_of_a_live_job_is_a_no_op_and_it_cannot_be_deleted(staff_client, settings):
    job = queued_job(big_file(50))
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING)
    lease_replace(job.pk)  # held by this (live) process: a worker busy importing it
    assert import_job_run(job_id=job.pk) == {"skipped": 1}
    job.refresh_from_db()
    assert job.rows == 0 and not Contact.objects.exists() and not import_progress(job=job)["stalled"]

    with pytest.raises(ImportJobBusyError):
        import_job_delete(job=job)
    page = staff_client.get(reverse("admin:campaigns_importjob_change", args=[job.pk])).content.decode()
    assert reverse("admin:campaigns_importjob_delete", args=[job.pk]) not in page
    assert staff_client.post(reverse("admin:campaigns_importjob_delete", args=[job.pk]),
                             {"post": "yes"}).status_code == 403

    # No heartbeat for longer than IMPORT_STALE_SECONDS: the worker is presumed dead.
    settings.IMPORT_STALE_SECONDS = 60
    old = time.time() - 120
    os.utime(lease_path(job.pk), (old, old))
    assert import_progress(job=job)["stalled"]
    page = staff_client.get(reverse("admin:campaigns_importjob_change", args=[job.pk])).content.decode()
    assert 'id="import-resume"' in page
    response = staff_client.post(reverse("admin:campaigns_importjob_delete", args=[job.pk]), {"post": "yes"})
    assert response.status_code == 302 and not ImportJob.objects.exists()
    assert not lease_path(job.pk).exists()


@pytest.mark.django_db
def test_a_stale_job_resumed_from_the_admin(staff_client, settings):
    settings.IMPORT_STALE_SECONDS = 60
    job = queued_job(big_file(300))
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING)
    lease_replace(job.pk)
    old = time.time() - 120
    os.utime(lease_path(job.pk), (old, old))
    with tasks_run_here():
        response = staff_client.post(reverse("admin:campaigns_importjob_resume", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportJob.Status.COMPLETED and job.created_count == 294


@pytest.mark.django_db
def test_a_queued_job_whose_task_was_lost_is_queued_again(settings):
    settings.IMPORT_STALE_SECONDS = 60
    job = queued_job(big_file(10))
    lease_mark_queued(job.pk)  # put on the queue (the message is then lost)
    assert import_jobs_sweep() == {"resumed": 0, "requeued": 0}  # it has not waited long yet
    old = time.time() - 120
    os.utime(lease_path(job.pk), (old, old))
    assert import_progress(job=job)["stalled"]
    with tasks_run_here():
        assert import_jobs_sweep() == {"resumed": 0, "requeued": 1}
    job.refresh_from_db()
    assert job.status == ImportJob.Status.COMPLETED and job.created_count == 10
    assert import_jobs_sweep() == {"resumed": 0, "requeued": 0}
    assert not lease_state(job.pk).exists


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["new", "queued", "completed", "failed"])
def test_a_job_in_any_other_state_can_be_deleted(staff_client, status):
    job = queued_job(big_file(10))
    ImportJob.objects.filter(pk=job.pk).update(status=status)
    response = staff_client.post(reverse("admin:campaigns_importjob_delete", args=[job.pk]), {"post": "yes"})
    assert response.status_code == 302 and not ImportJob.objects.exists()
