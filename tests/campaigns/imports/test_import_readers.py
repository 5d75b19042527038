"""Detecting what a file is before importing it: encodings, delimiters, XLSX, and files refused whole."""

from __future__ import annotations

import codecs
import zipfile

import pytest

from campaigns.imports.readers import ImportFileError, open_table

ROWS = [["Phone", "First Name", "Last Name"], ["+14155550100", "José", "Müller"], ["+14155550101", "Zoë", "Ødegård"]]


def text(rows, delimiter=","):
    return "\r\n".join(delimiter.join(r) for r in rows) + "\r\n"


def read_records(path, **kw):
    with open_table(path, **kw) as table:
        return table, list(table.rows())


def read_all(path, **kw):
    """(table, header, [(row number, cells)]) for a file whose every row can be read."""
    table, records = read_records(path, **kw)
    assert not any(r.error or r.warning for r in records), records
    return table, table.header, [(r.number, r.cells) for r in records]


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


# ---- encodings decided late, undecodable rows -------------------------------------------------------


def ascii_rows(n):
    return [[f"+1212{2_000_000 + i:07d}", f"Person{i}", "plain"] for i in range(n)]


def test_windows_1252_whose_first_accent_is_past_the_sample(write_file):
    rows = [["phone", "name", "note"], *ascii_rows(12_000)]  # ~330 KB of ASCII before the first accent
    rows += [["+14155550100", "Renée", "café"], ["+14155550101", "Zoë", "“quoted”"]]
    data = text(rows).encode("cp1252")
    assert data.index("é".encode("cp1252")) > 256 * 1024
    table, records = read_records(write_file("late.csv", data))
    assert table.encoding == "utf-8" and table.read_as == "cp1252"  # detected on the sample, corrected later
    assert not any(r.error or r.warning for r in records)
    assert records[-2].cells == ["+14155550100", "Renée", "café"]
    assert records[-1].cells == ["+14155550101", "Zoë", "“quoted”"]
    assert not any("\ufffd" in cell for r in records for cell in r.cells)


def test_a_stray_windows_1252_row_in_a_utf8_file_is_read_with_a_warning(write_file):
    head = text([["phone", "name"], ["+14155550100", "José"]] + [r[:2] for r in ascii_rows(15_000)]).encode()
    assert len(head) > 256 * 1024  # the stray row comes after the sample the encoding is detected on
    stray = "+14155550101,Renée\r\n".encode("cp1252")
    tail = "+14155550102,Zoë\r\n".encode()
    table, records = read_records(write_file("mixed.csv", head + stray + tail))
    assert table.read_as == "utf-8"
    row = records[-2]
    assert row.cells == ["+14155550101", "Renée"] and not row.error and "Windows-1252" in row.warning
    assert records[-1].cells == ["+14155550102", "Zoë"] and not records[-1].warning


def test_a_row_that_cannot_be_decoded_is_reported_not_guessed(write_file):
    # 0x81 is not a character in Windows-1252: the row cannot be read as text at all.
    data = text([["phone", "name"], ["+14155550100", "Renée"]]).encode("cp1252")
    data += b"+14155550101,Bad\x81name\r\n" + "+14155550102,Zoë\r\n".encode("cp1252")
    table, records = read_records(write_file("bad.csv", data))
    assert table.encoding == "cp1252"
    assert [r.cells for r in records if not r.error] == [["+14155550100", "Renée"], ["+14155550102", "Zoë"]]
    bad = [r for r in records if r.error]
    assert [r.number for r in bad] == [3] and "not valid cp1252 text" in bad[0].error


def test_nul_bytes_are_dropped(write_file):
    data = b"phone,name\r\n+14155550100,Ann\x00e\r\n" + b"+14155550101,B\x00ob\r\n"
    _, _, rows = read_all(write_file("nul.csv", data))
    assert rows == [(2, ["+14155550100", "Anne"]), (3, ["+14155550101", "Bob"])]


# ---- unclosed quotes -------------------------------------------------------------------------------


def test_an_unclosed_quote_does_not_swallow_the_rows_after_it(write_file):
    raw = (
        "phone;name;note\r\n"
        "+14155550100;Ann;ok\r\n"
        '+14155550101;"Bob;oops\r\n'
        "+14155550102;Carl;ok\r\n"
        "+14155550103;Dora;ok\r\n"
        "+14155550104;Eve;ok\r\n"
    )
    _, records = read_records(write_file("quote.csv", raw.encode()))
    assert [(r.number, r.cells) for r in records if not r.error] == [
        (2, ["+14155550100", "Ann", "ok"]), (4, ["+14155550102", "Carl", "ok"]),
        (5, ["+14155550103", "Dora", "ok"]), (6, ["+14155550104", "Eve", "ok"])]
    bad = [r for r in records if r.error]
    assert [r.number for r in bad] == [3] and "never closed" in bad[0].error
    assert bad[0].cells == ["+14155550101", '"Bob', "oops"]


def test_an_unclosed_quote_closed_by_a_later_quote_is_found_too(write_file):
    raw = (
        "phone,name,note\r\n"
        '+14155550101,"Bob,oops\r\n'
        "+14155550102,Carl,ok\r\n"
        "+14155550103,Dora,ok\r\n"
        '+14155550104,Eve,"a ""real"" quote"\r\n'
        "+14155550105,Finn,ok\r\n"
    )
    _, records = read_records(write_file("quote.csv", raw.encode()))
    good = {r.cells[0] for r in records if not r.error and r.cells}
    assert {"+14155550102", "+14155550103", "+14155550105"} <= good
    assert [r.number for r in records if r.error][0] == 2


def test_a_quote_that_runs_past_a_hundred_lines_is_cut(write_file):
    lines = ["phone,name\r\n", '+14155550100,"Ann\r\n'] + [f"+1212{2_000_000 + i:07d}\r\n" for i in range(150)]
    lines.append('x"\r\n')  # a quote far below finally closes it
    _, records = read_records(write_file("long.csv", "".join(lines).encode()))
    assert records[0].error and records[0].number == 2
    assert sum(1 for r in records if not r.error and r.cells and r.cells[0].startswith("+1212")) >= 149


def test_multi_line_addresses_still_work(write_file):
    raw = (
        "phone,name,address,city\r\n"
        '+14155550100,Ann,"Flat 2\r\n10 Downing Street\r\nLondon, SW1A 2AA",London\r\n'
        '+14155550101,Bob,"PO Box 7\r\n+1 415 555 0199, ask for Bob",Paris\r\n'
        "+14155550102,Carl,Main St,Rome\r\n"
    )
    _, _, rows = read_all(write_file("addresses.csv", raw.encode()))
    assert rows == [
        (2, ["+14155550100", "Ann", "Flat 2\r\n10 Downing Street\r\nLondon, SW1A 2AA", "London"]),
        (3, ["+14155550101", "Bob", "PO Box 7\r\n+1 415 555 0199, ask for Bob", "Paris"]),
        (4, ["+14155550102", "Carl", "Main St", "Rome"]),
    ]


def test_a_cell_over_the_size_limit_is_one_unreadable_row(write_file):
    raw = "phone,note\r\n+14155550100,ok\r\n+14155550101," + "x" * (1024 * 1024 + 10) + "\r\n+14155550102,ok\r\n"
    _, records = read_records(write_file("huge.csv", raw.encode()))
    assert [(r.number, bool(r.error)) for r in records] == [(2, False), (3, True), (4, False)]
    assert "longer than 1,048,576 characters, the limit for one cell" in records[1].error


def test_a_damaged_workbook_is_read_up_to_the_damage(cut_workbook):
    from campaigns.imports.readers import FileCutError

    cut = cut_workbook(["phone", "name"], lambda n: [f"+1212{2_000_000 + n:07d}", f"N{n}"])
    seen = []
    with open_table(cut) as table, pytest.raises(FileCutError) as raised:
        for record in table.rows():
            seen.append(record.number)
    assert seen and seen == list(range(2, seen[-1] + 1)) and raised.value.row == seen[-1] + 1
    assert "damaged" in str(raised.value)
