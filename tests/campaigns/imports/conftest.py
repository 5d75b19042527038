"""Fixtures for import tests: files written the way other tools write them, media in a temp dir,
Celery run eagerly (the task runs in the test process, on commit)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def write_file(tmp_path):
    """write_file(name, bytes) -> path"""

    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return write


@pytest.fixture
def make_csv(write_file):
    """make_csv(rows, delimiter=",", encoding="utf-8", name=...) -> path; rows are lists of cells."""

    def make(rows, *, delimiter=",", encoding="utf-8", name="contacts.csv", line_end="\r\n") -> Path:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator=line_end).writerows(rows)
        return write_file(name, buffer.getvalue().encode(encoding))

    return make


@pytest.fixture
def make_xlsx(tmp_path):
    def make(rows, name="contacts.xlsx") -> Path:
        import openpyxl

        workbook = openpyxl.Workbook()
        sheet = workbook.active
        for row in rows:
            sheet.append(row)
        path = tmp_path / name
        workbook.save(path)
        return path

    return make


@pytest.fixture
def eager_celery(settings, django_capture_on_commit_callbacks):
    """Tasks run in-process; on-commit callbacks (which enqueue them) are executed by the test."""
    from config.celery import app

    previous = app.conf.task_always_eager  # read first: reading loads the conf from the settings
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield django_capture_on_commit_callbacks
    app.conf.task_always_eager = previous


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def cut_workbook(tmp_path):
    """cut_workbook(header, rows) -> path of an XLSX file of 3000 numbered rows whose sheet data stops half way,
    as a download cut short leaves it. ``rows(n)`` gives the cells of row n."""
    import zipfile

    import openpyxl

    def make(header: list[str], rows) -> Path:
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        sheet.append(header)
        for n in range(3000):
            sheet.append(rows(n))
        whole, cut = tmp_path / "whole.xlsx", tmp_path / "cut.xlsx"
        workbook.save(whole)
        with zipfile.ZipFile(whole) as source, zipfile.ZipFile(cut, "w", zipfile.ZIP_DEFLATED) as target:
            for item in source.infolist():
                data = source.read(item.filename)
                target.writestr(item, data[: len(data) // 2] if item.filename == "xl/worksheets/sheet1.xml" else data)
        return cut

    return make

