"""Upload bombs: an XLSX whose size on disk says nothing of what it unpacks to (a sheet of hundreds of MB packed
into a few hundred KB, one enormous cell, columns or rows far past any contact file) is refused before openpyxl
reads it, naming the limit and where it applies, in memory far below what it would unpack to, and nothing is
imported. Problem reports are bounded too. The workbooks are written here part by part, as a hostile tool
would."""

from __future__ import annotations

import base64
import csv
import os
import tracemalloc
import zipfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.imports.readers import ImportFileError, open_table
from campaigns.imports.selectors import import_preview
from campaigns.imports.services import (
    contact_import_run,
    import_job_configure,
    import_job_create,
    import_job_run,
)
from campaigns.models import Contact, ImportJob, ListMembership

MB = 1024 * 1024
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
TYPES = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
         'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
         'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
         'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
         '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
         'officedocument.spreadsheetml.worksheet+xml"/>{shared}</Types>')
SHARED_TYPE = ('<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
               'officedocument.spreadsheetml.sharedStrings+xml"/>')
ROOT_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
             'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
             'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
BOOK = (f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="http://schemas.openxmlformats.'
        'org/officeDocument/2006/relationships"><sheets><sheet name="Contacts" sheetId="1" r:id="rId1"/></sheets>'
        '</workbook>')
BOOK_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
             'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
             'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>{shared}'
             '</Relationships>')
SHARED_REL = ('<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
              'sharedStrings" Target="sharedStrings.xml"/>')


def cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


HEADER = f'<row r="1">{cell("A1", "phone")}{cell("B1", "note")}</row>'


def sheet(*rows: str, dimension: str = "") -> list[bytes]:
    head = f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}">{dimension}<sheetData>'
    return [head.encode(), *(row.encode() for row in rows), b"</sheetData></worksheet>"]


def write_workbook(path: Path, sheet_parts: Iterable[bytes], *, shared: Iterable[bytes] | None = None,
                   level: int = 6) -> Path:
    """A workbook of one sheet named Contacts, its XML streamed from ``sheet_parts`` (and shared strings from
    ``shared``), never held whole."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        archive.writestr("[Content_Types].xml", TYPES.format(shared=SHARED_TYPE if shared else ""))
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", BOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", BOOK_RELS.format(shared=SHARED_REL if shared else ""))
        for name, parts in (("xl/worksheets/sheet1.xml", sheet_parts), ("xl/sharedStrings.xml", shared)):
            if parts is None:
                continue
            with archive.open(name, "w", force_zip64=True) as part:
                for chunk in parts:
                    part.write(chunk)
    return path


def repeated(piece: bytes, total: int) -> Iterable[bytes]:
    block = piece * (MB // len(piece))
    for _ in range(total // len(block)):
        yield block


def random_text(total: int) -> Iterable[bytes]:
    """``total`` characters that do not pack (base64 of random bytes)."""
    for _ in range(total // MB):
        yield base64.b64encode(os.urandom(MB * 3 // 4))


@contextmanager
def peak_memory():
    """The most memory Python allocated inside the block (``tracemalloc``), in ``peak[0]``."""
    peak = [0]
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def refused(path: Path, **kwargs) -> tuple[str, int]:
    """The refusal open_table gives for ``path`` and the peak memory it took."""
    with peak_memory() as peak, pytest.raises(ImportFileError) as caught:
        open_table(path, **kwargs)
    return str(caught.value), peak[0]


# ---- the zip: what it unpacks to, and how tightly ----


@pytest.mark.parametrize("shape", ["many rows", "one cell", "one shared text"])
def test_a_sheet_packed_a_thousand_times_is_refused_unpacked(tmp_path, shape):
    """200 MB of XML in a few hundred KB (the reported attack: one cell of 200 MB in 200 KB), as rows, as one
    cell, or as one shared text that openpyxl would load whole on opening the workbook."""
    path = tmp_path / "bomb.xlsx"
    if shape == "many rows":
        write_workbook(path, [*sheet(HEADER)[:2], *repeated(f"<row>{cell('', '+12125550100')}</row>".replace(
            ' r=""', "").encode(), 200 * MB), b"</sheetData></worksheet>"], level=9)
    elif shape == "one cell":
        write_workbook(path, [*sheet(HEADER)[:2], b'<row r="2"><c r="B2" t="inlineStr"><is><t>',
                              *repeated(b"A", 200 * MB), b"</t></is></c></row></sheetData></worksheet>"], level=9)
    else:
        write_workbook(path, sheet(HEADER, '<row r="2"><c r="A2" t="s"><v>0</v></c></row>'), level=9,
                       shared=[f'<sst xmlns="{MAIN}"><si><t>'.encode(), *repeated(b"A", 200 * MB),
                               b"</t></si></sst>"])
    assert path.stat().st_size < 1 * MB
    message, peak = refused(path)
    part = "xl/sharedStrings.xml" if shape == "one shared text" else "xl/worksheets/sheet1.xml"
    assert message.startswith(f"The workbook's part {part} unpacks from ")
    assert "to 200 MB" in message and "no spreadsheet packs more than 100 times, so the file is refused" in message
    assert peak < 2 * MB  # nothing of the 200 MB was unpacked


def test_over_the_unpacked_size_limit_is_refused(tmp_path, settings):
    settings.IMPORT_MAX_UNCOMPRESSED_BYTES = 2 * MB
    path = write_workbook(tmp_path / "big.xlsx", [*sheet(HEADER)[:2], b'<row r="2"><c r="B2" t="inlineStr"><is><t>',
                                                  *random_text(3 * MB), b"</t></is></c></row></sheetData></worksheet>"])
    message, _ = refused(path)
    assert message == "The workbook unpacks to 3 MB; the limit is 2 MB. Split it into smaller files."


def test_a_zip_of_too_many_parts_is_refused_before_its_directory_is_read(tmp_path):
    path = tmp_path / "parts.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        for n in range(10_001):
            archive.writestr(f"p/{n}", b"")
    message, _ = refused(path)
    assert message.startswith("The workbook has 10,001 parts; workbooks of more than 10,000 parts are refused.")


# ---- what a sheet holds: cells, rows, columns ----


def test_one_enormous_cell_is_refused_naming_its_row_and_column_in_little_memory(tmp_path):
    """A 48 MB cell of text that does not pack (so the zip's ratio says nothing): refused once the cell passes
    the limit for one cell (the same as a CSV cell's), with its sheet, row and column."""
    path = write_workbook(tmp_path / "cell.xlsx", [*sheet(HEADER)[:2], b'<row r="2">', cell("A2", "+12125550100").encode(),
                                                   b'<c r="B2" t="inlineStr"><is><t>', *random_text(48 * MB),
                                                   b"</t></is></c></row></sheetData></worksheet>"])
    message, peak = refused(path)
    assert message == ("Sheet 'Contacts', row 2, column B holds a cell longer than 1,048,576 characters, the limit "
                       "for one cell.")
    assert peak < 6 * MB


def test_one_enormous_shared_text_is_refused_in_little_memory(tmp_path):
    path = write_workbook(tmp_path / "shared.xlsx", sheet(HEADER, '<row r="2"><c r="A2" t="s"><v>0</v></c></row>'),
                          shared=[f'<sst xmlns="{MAIN}"><si><t>'.encode(), *random_text(48 * MB), b"</t></si></sst>"])
    message, peak = refused(path)
    assert message == ("The workbook's shared text number 1 holds a text longer than 1,048,576 characters, the "
                       "limit for one cell.")
    assert peak < 6 * MB


def test_an_enormous_tag_is_refused_before_the_parser_buffers_it(tmp_path, settings):
    """An attribute value of 48 MB: expat would have to hold the whole tag; the run of bytes without markup is
    refused as it arrives."""
    settings.IMPORT_MAX_CELL_CHARS = 1000
    path = write_workbook(tmp_path / "tag.xlsx", [*sheet(HEADER)[:2], b'<row r="2"><c r="A2" t="inlineStr" x="',
                                                  *random_text(48 * MB), b'"><is><t>1</t></is></c></row></sheetData>'
                                                  b"</worksheet>"])
    message, peak = refused(path)
    assert message == ("Sheet 'Contacts', row 2 holds a cell or a tag longer than 1,000 characters, the limit for "
                       "one cell.")
    assert peak < 2 * MB


def test_a_row_of_more_characters_than_one_cell_may_hold_is_refused(tmp_path, settings):
    settings.IMPORT_MAX_CELL_CHARS = 1000
    row = '<row r="2">' + "".join(cell(f"{c}2", "x" * 600) for c in "ABC") + "</row>"
    message, _ = refused(write_workbook(tmp_path / "row.xlsx", sheet(HEADER, row)))
    assert message == ("Sheet 'Contacts', row 2 holds more than 1,000 characters in all, the limit for one row.")


def test_too_many_columns_are_refused_naming_the_column(tmp_path):
    far = f'<row r="2">{cell("A2", "+12125550100")}{cell("XFD2", "far away")}</row>'
    message, _ = refused(write_workbook(tmp_path / "wide.xlsx", sheet(HEADER, far)))
    assert message == "Sheet 'Contacts', row 2, column XFD (16,384) is past the limit of 500 columns."
    unnumbered = "<row>" + '<c t="inlineStr"><is><t>x</t></is></c>' * 501 + "</row>"
    message, _ = refused(write_workbook(tmp_path / "wide2.xlsx", sheet(HEADER, unnumbered)))
    assert message == "Sheet 'Contacts', row 2, column SG (501) is past the limit of 500 columns."


def test_a_csv_header_of_too_many_columns_is_refused(write_file):
    path = write_file("wide.csv", (",".join(f"c{n}" for n in range(501)) + "\r\n" + "1," * 500 + "1\r\n").encode())
    message, _ = refused(path)
    assert message == "The header row (row 1) has 501 columns; the limit is 500."


def test_too_many_rows_are_refused_naming_the_limit(tmp_path, settings):
    settings.IMPORT_MAX_ROWS = 100
    rows = [f'<row r="{n}">{cell(f"A{n}", f"+1212555{n:04d}")}</row>' for n in range(2, 102)]
    message, _ = refused(write_workbook(tmp_path / "long.xlsx", sheet(HEADER, *rows)))
    assert message == "Sheet 'Contacts' has a row 101; the limit is 100 rows. Split it into smaller files."
    with open_table(write_workbook(tmp_path / "fits.xlsx", sheet(HEADER, *rows[:-1]))) as table:
        assert table.total_rows == 100 and sum(1 for _ in table.rows()) == 99


def test_a_row_number_past_the_limit_is_refused_without_reading_the_rows_between(tmp_path):
    far = f'<row r="5000000">{cell("A5000000", "+12125550100")}</row>'
    message, _ = refused(write_workbook(tmp_path / "far.xlsx", sheet(HEADER, far)))
    assert message == "Sheet 'Contacts' has a row 5,000,000; the limit is 1,048,576 rows. Split it into smaller files."


def test_declared_dimensions_are_not_trusted(tmp_path):
    """A sheet of two rows that declares every cell Excel can hold: read as the two rows it has (openpyxl would
    have padded 1,048,576 rows to 16,384 columns)."""
    path = write_workbook(tmp_path / "dim.xlsx", sheet(HEADER, f'<row r="2">{cell("A2", "+12125550100")}</row>',
                                                       dimension='<dimension ref="A1:XFD1048576"/>'))
    with open_table(path) as table:
        records = list(table.rows())
    assert table.header == ["phone", "note"] and table.total_rows == 2
    assert [(r.number, r.cells) for r in records] == [(2, ["+12125550100"])]


def test_a_dtd_is_refused(tmp_path):
    parts = sheet(HEADER)
    parts[0] = parts[0].replace(b"<worksheet", b'<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">]><worksheet')
    message, _ = refused(write_workbook(tmp_path / "dtd.xlsx", parts))
    assert message == "Sheet 'Contacts' declares a DTD, which no spreadsheet does: the file is refused."


def test_an_ordinary_workbook_still_imports(make_xlsx, db):
    path = make_xlsx([["Phone", "First name", "Note"], ["+12125550100", "Ann", "x" * 5000],
                      ["+12125550101", "Bob", "hello"]])
    summary = contact_import_run(path=path, mapping=["phone", "first_name", "custom:note"], region="US",
                                 contact_list_name="Ordinary")
    assert (summary.rows, summary.created) == (2, 2)
    assert Contact.objects.get(phone="+12125550100").custom_fields["note"] == "x" * 5000


# ---- nothing imported: the job fails before its first write ----


@pytest.mark.django_db
def test_an_upload_bomb_is_refused_on_upload_and_keeps_nothing(tmp_path, media_root):
    path = write_workbook(tmp_path / "bomb.xlsx", [*sheet(HEADER)[:2], b'<row r="2"><c r="B2" t="inlineStr"><is><t>',
                                                   *repeated(b"A", 200 * MB), b"</t></is></c></row></sheetData>"
                                                   b"</worksheet>"], level=9)
    with peak_memory() as peak, pytest.raises(ImportFileError, match="no spreadsheet packs more than 100 times"):
        import_job_create(upload=SimpleUploadedFile("bomb.xlsx", path.read_bytes()))
    assert peak[0] < 4 * MB
    assert not ImportJob.objects.exists()
    assert not [p for p in Path(media_root).rglob("*") if p.is_file()]


@pytest.mark.django_db
def test_a_job_over_a_limit_fails_before_writing_anything(make_xlsx, settings, media_root):
    """A job whose file is over a limit by the time its worker opens it (the limit lowered since it was
    queued): failed with the limit in its message, no contact, no membership, no report."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    rows = [["Phone", "First name"], *([f"+1212555{n:04d}", f"P{n}"] for n in range(300))]
    job = import_job_create(upload=SimpleUploadedFile("people.xlsx", make_xlsx(rows).read_bytes()))
    job = import_job_configure(job=job, mapping=["phone", "first_name"], region="US", policy="update",
                               new_list_name="People")
    settings.IMPORT_MAX_ROWS = 200
    assert import_job_run(job_id=job.pk) == {"failed": 1}
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert job.error_message == "Sheet 'Sheet' has a row 201; the limit is 200 rows. Split it into smaller files."
    assert (job.rows, job.created_count) == (0, 0)
    assert not Contact.objects.exists() and not ListMembership.objects.exists()
    assert not job.error_report


# ---- the problem report and the preview are bounded ----


@pytest.mark.django_db
def test_the_problem_report_lists_a_bounded_number_of_rows_and_cuts_long_values(write_file, settings, tmp_path):
    settings.IMPORT_REPORT_MAX_ROWS = 10
    settings.IMPORT_REPORT_MAX_VALUE_CHARS = 50
    lines = ["phone,note"] + [f"not a number {n},{'y' * 500}" for n in range(25)] + ["+12125550100,fine"]
    path = write_file("bad.csv", ("\r\n".join(lines) + "\r\n").encode())
    report = tmp_path / "report.csv"
    summary = contact_import_run(path=path, mapping=["phone", "custom:note"], region="US", report_path=report,
                                 contact_list_name="Bad")
    assert (summary.rows, summary.invalid, summary.created) == (26, 25, 1)
    with open(report, encoding="utf-8-sig", newline="") as fh:
        written = list(csv.reader(fh))
    assert written[0] == ["row", "problem", "phone", "note"]
    assert [line[0] for line in written[1:11]] == [str(n) for n in range(2, 12)]
    assert written[1][3] == "y" * 50 + "… (450 more characters)"
    assert written[11] == ["", "15 more rows with problems are not listed: this report lists the first 10. The "
                               "counts of the import include them all."]
    assert len(written) == 12 and report.stat().st_size < 5000


@pytest.mark.django_db
def test_the_preview_cuts_long_values(write_file, media_root):
    path = write_file("long.csv", ("phone,note\r\n+12125550100," + "z" * 100_000 + "\r\n").encode())
    job = import_job_create(upload=SimpleUploadedFile("long.csv", path.read_bytes()))
    preview = import_preview(job=job)
    assert preview.rows[0][1][1] == "z" * 200 + "… (99,800 more characters)"
