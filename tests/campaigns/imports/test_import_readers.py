"""Detecting what a file is before importing it: encodings, delimiters, XLSX, and files refused whole."""

from __future__ import annotations

import codecs
import zipfile

import pytest

from campaigns.imports.readers import ImportFileError, open_table

ROWS = [["Phone", "First Name", "Last Name"], ["+14155550100", "José", "Müller"], ["+14155550101", "Zoë", "Ødegård"]]


def text(rows, delimiter=","):
    return "\r\n".join(delimiter.join(r) for r in rows) + "\r\n"


def read_all(path, **kw):
    with open_table(path, **kw) as table:
        return table, table.header, [r for r in table.rows()]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_detected(write_file, delimiter):
    path = write_file("c.csv", text(ROWS, delimiter).encode())
    table, header, rows = read_all(path)
    assert table.delimiter == delimiter
    assert header == ["Phone", "First Name", "Last Name"]
    assert rows[0] == (2, ["+14155550100", "José", "Müller"])


@pytest.mark.parametrize(
    "encoded, encoding",
    [
        (codecs.BOM_UTF8 + text(ROWS).encode("utf-8"), "utf-8-sig"),
        (text(ROWS).encode("utf-8"), "utf-8"),
        (text(ROWS, "\t").encode("utf-16"), "utf-16"),  # Excel's "Unicode text": BOM, tab separated
        (text(ROWS).encode("utf-16-le"), "utf-16-le"),  # no BOM
        (text(ROWS, ";").encode("cp1252"), "cp1252"),  # Excel on Windows, "CSV (semicolon)"
    ],
)
def test_encodings_are_detected_and_names_survive(write_file, encoded, encoding):
    table, header, rows = read_all(write_file("c.csv", encoded))
    assert table.encoding == encoding
    assert header[0] == "Phone"  # no BOM left on the first column name
    assert [r[1][1:] for r in rows] == [["José", "Müller"], ["Zoë", "Ødegård"]]


def test_cp1252_with_typographic_characters(write_file):
    rows = [["phone", "name", "note"], ["+14155550100", "Renée", "“quoted” – café €5"]] * 3
    table, _, data = read_all(write_file("c.csv", text(rows).encode("cp1252")))
    assert table.encoding == "cp1252"
    assert data[0][1][2] == "“quoted” – café €5"


def test_quoted_newlines_keep_row_numbers_as_a_spreadsheet_shows_them(write_file):
    raw = 'phone,note\r\n+14155550100,"two\r\nlines"\r\n\r\n+14155550101,after\r\n'
    _, _, rows = read_all(write_file("c.csv", raw.encode()))
    assert rows == [(2, ["+14155550100", "two\r\nlines"]), (3, []), (4, ["+14155550101", "after"])]


def test_header_cleanup(write_file):
    raw = "Phone,,Email,email,\r\n1,2,3,4,\r\n"
    _, header, _ = read_all(write_file("c.csv", raw.encode()))
    assert header == ["Phone", "Column B", "Email", "email (2)"]


def test_xlsx_is_streamed_with_numbers_as_written(make_xlsx):
    path = make_xlsx([["Mobile", "Name", "Joined"], [14155550100, "Ann", None], [4155550101.0, "Bob", 3.5]])
    table, header, rows = read_all(path)
    assert table.file_format == "xlsx"
    assert header == ["Mobile", "Name", "Joined"]
    assert rows == [(2, ["14155550100", "Ann"]), (3, ["4155550101", "Bob", "3.5"])]


def test_escaped_formula_cells_are_read_back(write_file):
    raw = "phone,name\r\n'+14155550100,'=not a formula\r\n"
    _, _, rows = read_all(write_file("c.csv", raw.encode()))
    assert rows == [(2, ["+14155550100", "=not a formula"])]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"\r\n\r\n  \r\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" * 50, "does not look like a spreadsheet"),
        (bytes(range(256)) * 40, "does not look like a spreadsheet"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, ".xls"),
    ],
)
def test_files_that_are_not_spreadsheets_are_refused(write_file, data, message):
    with pytest.raises(ImportFileError, match=message):
        open_table(write_file("upload.csv", data))


def test_zip_that_is_not_a_workbook(tmp_path):
    path = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ImportFileError, match="not an Excel workbook"):
        open_table(path)


def test_size_limit(write_file):
    path = write_file("big.csv", text(ROWS * 1000).encode())
    with pytest.raises(ImportFileError, match="the limit is"):
        open_table(path, max_bytes=1024)


def test_a_cyrillic_file_is_not_forced_into_windows_1252(write_file):
    rows = [["phone", "name"], ["+74951234567", "Иван Петров"], ["+74951234568", "Мария Сидорова"]]
    _, _, data = read_all(write_file("c.csv", text(rows).encode("cp1251")))
    assert data[0][1][1] == "Иван Петров"
