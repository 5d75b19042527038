"""Importing whole files: messy real-world CSVs, policies, the error report, refusals, 100k rows."""

from __future__ import annotations

import codecs
import csv

import pytest

from campaigns.imports.mapping import MappingError, auto_map
from campaigns.imports.readers import ImportFileError, open_table
from campaigns.imports.services import contact_import_run
from campaigns.models import Contact, ContactList, ImportJob, ListMembership
from messaging.models import ConsentEvent, Suppression

pytestmark = pytest.mark.django_db

MESSY = (
    "Mobile Number;First Name;Surname;E-mail;Company;Notes\r\n"
    '(415) 555-0100;Ann;Lee;ann@example.com;Acme;"line one\r\nline two"\r\n'  # row 2
    "415.555.0101;Bob;;not-an-email;Beta;\r\n"  # row 3: imported without the email
    "\r\n"  # row 4: blank
    "1.41555E+10;Carl;;;;\r\n"  # row 5: Excel ate the digits
    "+1 415 555 0100;Annie;;;Acme Corp;\r\n"  # row 6: same number as row 2
    "hello;Dan;;;;\r\n"  # row 7
    ";Nobody;;;;\r\n"  # row 8
    "+44 20 7946 0018;Pat;;;UK Ltd;;extra;cells\r\n"  # row 9: fixed line, extra cells
)


def run(path, *, list_name="Leads", region="US", **kw):
    with open_table(path) as table:
        mapping = auto_map(table.header)
    contact_list, _ = ContactList.objects.get_or_create(name=list_name)
    return contact_import_run(path=path, mapping=mapping, region=region, contact_list_id=contact_list.pk, **kw)


def report_rows(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


@pytest.fixture
def messy(write_file):
    return write_file("export.csv", codecs.BOM_UTF8 + MESSY.encode())


def test_messy_file(messy, tmp_path):
    report = tmp_path / "problems.csv"
    summary = run(messy, report_path=report)

    assert (summary.rows, summary.created, summary.updated, summary.skipped) == (7, 3, 0, 0)
    assert (summary.invalid, summary.duplicate, summary.fixed_line, summary.warnings) == (3, 1, 1, 1)
    ann = Contact.objects.get(phone="+14155550100")
    assert (ann.first_name, ann.last_name, ann.email) == ("Annie", "Lee", "ann@example.com")  # row 6 merged in
    assert ann.custom_fields == {"company": "Acme Corp", "notes": "line one\r\nline two"}
    bob = Contact.objects.get(phone="+14155550101")
    assert bob.email == "" and bob.custom_fields == {"company": "Beta"}
    pat = Contact.objects.get(phone="+442079460018")
    assert pat.is_fixed_line and not ann.is_fixed_line
    assert ListMembership.objects.filter(contact_list__name="Leads").count() == 3

    rows = report_rows(report)
    assert rows[0] == ["row", "problem", "Mobile Number", "First Name", "Surname", "E-mail", "Company", "Notes"]
    by_row = {r[0]: r for r in rows[1:]}
    assert sorted(by_row, key=int) == ["3", "5", "6", "7", "8"]
    assert "not an email address" in by_row["3"][1] and by_row["3"][2:4] == ["415.555.0101", "Bob"]
    assert "digits were lost" in by_row["5"][1] and by_row["5"][2] == "1.41555E+10"
    assert "as row 2" in by_row["6"][1]
    assert "not a phone number" in by_row["7"][1]
    assert by_row["8"][1] == "Not imported: No phone number."


def test_national_formats_with_a_default_region(make_csv):
    path = make_csv([["Phone", "Name"], ["07911 123456", "A"], ["020 7946 0018", "B"], ["+33 6 12 34 56 78", "C"],
                     ["(415) 555-0100", "D"]])
    summary = run(path, region="GB")
    assert set(Contact.objects.values_list("phone", flat=True)) == {"+447911123456", "+442079460018", "+33612345678"}
    assert summary.invalid == 1  # a US national number read as British


def test_without_a_default_region_numbers_need_a_country_code(make_csv, tmp_path):
    path = make_csv([["phone"], ["+14155550100"], ["4155550101"]])
    summary = run(path, region="", report_path=tmp_path / "r.csv")
    assert (summary.created, summary.invalid) == (1, 1)
    assert "no country code" in report_rows(tmp_path / "r.csv")[1][1]


def test_existing_contacts_update_policy(messy):
    Contact.objects.create(phone="+14155550101", first_name="Robert", last_name="Brown",
                           custom_fields={"tier": "gold", "company": "Old"})
    summary = run(messy, policy=ImportJob.Policy.UPDATE)
    assert (summary.created, summary.updated, summary.skipped) == (2, 1, 0)
    bob = Contact.objects.get(phone="+14155550101")
    assert (bob.first_name, bob.last_name) == ("Bob", "Brown")  # empty cells never blank a value
    assert bob.custom_fields == {"tier": "gold", "company": "Beta"}
    assert bob.lists.filter(name="Leads").exists()


def test_existing_contacts_skip_policy(messy):
    Contact.objects.create(phone="+14155550101", first_name="Robert", custom_fields={"tier": "gold"})
    summary = run(messy, policy=ImportJob.Policy.SKIP)
    assert (summary.created, summary.updated, summary.skipped, summary.duplicate) == (2, 0, 1, 1)
    bob = Contact.objects.get(phone="+14155550101")
    assert (bob.first_name, bob.custom_fields) == ("Robert", {"tier": "gold"})
    assert bob.lists.filter(name="Leads").exists()  # still added to the list
    assert Contact.objects.get(phone="+14155550100").first_name == "Ann"  # first row kept


def test_unchanged_contacts_count_as_skipped_and_reimport_is_idempotent(messy):
    run(messy)
    again = run(messy)
    assert (again.created, again.updated, again.skipped) == (0, 0, 3)
    assert Contact.objects.count() == 3


@pytest.mark.parametrize("policy, name", [("update", "Third"), ("skip", "First")])
def test_duplicates_across_chunks(make_csv, policy, name):
    rows = [["phone", "first name"], ["+14155550100", "First"]]
    rows += [[f"+1415555{n:04d}", f"n{n}"] for n in range(1, 8)]
    rows += [["+14155550100", "Second"], ["(415) 555-0100", "Third"]]
    summary = run(make_csv(rows), chunk_rows=3, policy=policy)
    assert (summary.created, summary.updated, summary.duplicate) == (8, 0, 2)
    assert Contact.objects.get(phone="+14155550100").first_name == name


def test_new_contact_of_an_opted_out_number_starts_opted_out(make_csv):
    Suppression.objects.create(phone="+14155550100", opted_out=True)
    run(make_csv([["phone"], ["+14155550100"], ["+14155550101"]]))
    assert list(Contact.objects.order_by("phone").values_list("opted_out", flat=True)) == [True, False]


def test_xlsx_import(make_xlsx):
    path = make_xlsx([["Cell", "Given Name", "Family Name", "Birthday"], [14155550100, "Ann", "Lee", 1990],
                      ["+1 (415) 555-0101", "Bob", None, None], [None, None, None, None], [12, "Bad", None, None]])
    summary = run(path)
    assert (summary.rows, summary.created, summary.invalid) == (3, 2, 1)
    assert Contact.objects.get(phone="+14155550100").custom_fields == {"birthday": "1990"}


def test_utf16_tab_separated_import(write_file):
    data = "Phone\tName\r\n+14155550100\tZoë\r\n".encode("utf-16")
    run(write_file("unicode.txt", data))
    assert Contact.objects.get().custom_fields == {"name": "Zoë"}


@pytest.mark.parametrize(
    "content, error, message",
    [
        (b"", ImportFileError, "empty"),
        (b"name,email\r\nAnn,ann@example.com\r\n", MappingError, "No column holds phone numbers"),
        (b"4155550100,Ann\r\n4155550101,Bob\r\n", ImportFileError, "instead of column names"),
        (b"phone,name\r\n", ImportFileError, "no data rows"),
        (b"phone,name\r\n,Ann\r\n,Bob\r\n", ImportFileError, "is empty in the first 2 rows"),
        (b"phone,name\r\nabc,Ann\r\nxyz,Bob\r\n+1 415 555 0100,Late\r\n", None, None),
        (b"phone,name\r\nabc,Ann\r\nxyz,Bob\r\n", ImportFileError, "None of the first 2 values"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04" * 30, ImportFileError, "spreadsheet"),
    ],
)
def test_unusable_files_create_nothing(write_file, content, error, message):
    path = write_file("upload.csv", content)
    lists = ContactList.objects.count()
    if error is None:  # a few bad numbers at the top do not refuse a file that has good ones
        header = ["phone", "name"]
        contact_import_run(path=path, mapping=auto_map(header), region="US")
        assert Contact.objects.count() == 1
        return
    with pytest.raises(error, match=message):
        with open_table(path) as table:
            mapping = auto_map(table.header)
        contact_import_run(path=path, mapping=mapping, region="US")
    assert Contact.objects.count() == 0 and ContactList.objects.count() == lists


def test_over_the_size_limit_creates_nothing(messy):
    with pytest.raises(ImportFileError, match="limit"):
        run(messy, max_bytes=100)
    assert Contact.objects.count() == 0


def test_suppression_list_import(make_csv):
    contact = Contact.objects.create(phone="+14155550100")
    Suppression.objects.create(phone="+14155550102", opted_out=True)
    path = make_csv([["Number", "Reason"], ["+14155550100", "asked"], ["415-555-0101", ""], ["4155550102", ""],
                     ["junk", ""], ["+14155550100", ""]])
    summary = contact_import_run(path=path, mapping=["phone", "custom:reason"], region="US",
                                 kind=ImportJob.Kind.SUPPRESSION, detail="list from old tool")
    assert (summary.created, summary.skipped, summary.invalid, summary.duplicate) == (2, 1, 1, 1)
    assert set(Suppression.objects.filter(opted_out=True).values_list("phone", flat=True)) == {
        "+14155550100", "+14155550101", "+14155550102"}
    events = ConsentEvent.objects.filter(method=ConsentEvent.Method.IMPORT)
    assert events.count() == 2 and events.first().detail == "list from old tool"
    contact.refresh_from_db()
    assert contact.opted_out
    assert Contact.objects.count() == 1  # a suppression list creates no contacts


def test_100k_rows(tmp_path):
    def phone(n):
        return f"+1212{2_000_000 + n:07d}"

    path = tmp_path / "big.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["phone", "first_name", "last_name", "email", "city"])
        for n in range(100_000):
            if n % 1000 == 999:
                writer.writerow(["not a number", "x", "y", "", "z"])
            elif n % 500 == 1:
                writer.writerow([phone(n - 1), "dup", "", "", ""])  # same number as the row before
            else:
                writer.writerow([phone(n), f"F{n}", f"L{n}", f"u{n}@example.com", "NYC"])
    summary = run(path, report_path=tmp_path / "problems.csv")
    assert (summary.rows, summary.created, summary.invalid, summary.duplicate) == (100_000, 99_700, 100, 200)
    assert Contact.objects.count() == 99_700
    assert ListMembership.objects.count() == 99_700
    assert Contact.objects.get(phone=phone(500)).first_name == "dup"  # merged (policy update)
    assert Contact.objects.get(phone=phone(777)).custom_fields == {"city": "NYC"}
    assert len(report_rows(tmp_path / "problems.csv")) == 1 + 100 + 200


def test_plus_dropped_by_excel_is_recovered(make_xlsx):
    # Typed as +14155550100 in Excel, stored as the number 14155550100; the file's default country is GB.
    path = make_xlsx([["phone"], [14155550100], [447911123456], [4155550100]])
    summary = run(path, region="GB")
    assert (summary.created, summary.invalid) == (2, 1)
    assert set(Contact.objects.values_list("phone", flat=True)) == {"+14155550100", "+447911123456"}


# ---- rows the file or the database cannot give us do not take others with them ----------------------


def test_an_unclosed_quote_costs_one_row_and_says_so(write_file, tmp_path):
    raw = (
        "phone;first name\r\n"
        "+14155550100;Ann\r\n"
        '+14155550101;"Bob;oops\r\n'
        "+14155550102;Carl\r\n"
        "+14155550103;Dora\r\n"
        "+14155550104;Eve\r\n"
    )
    report = tmp_path / "r.csv"
    summary = run(write_file("quote.csv", raw.encode()), report_path=report)
    assert (summary.rows, summary.created, summary.invalid) == (5, 4, 1)
    assert set(Contact.objects.values_list("first_name", flat=True)) == {"Ann", "Carl", "Dora", "Eve"}
    problem = report_rows(report)[1]
    assert problem[0] == "3" and "quote" in problem[1] and "never closed" in problem[1]


def test_late_windows_1252_names_are_not_corrupted(write_file, tmp_path):
    rows = [["phone", "first name"]] + [[f"+1212{2_000_000 + n:07d}", f"P{n}"] for n in range(16_000)]
    rows.append(["+14155550100", "Renée"])
    data = "".join(f"{a},{b}\r\n" for a, b in rows).encode("cp1252")
    assert len(data) > 256 * 1024
    summary = run(write_file("late.csv", data), report_path=tmp_path / "r.csv")
    assert summary.invalid == 0 and summary.created == 16_001
    assert Contact.objects.get(phone="+14155550100").first_name == "Renée"


def test_an_undecodable_row_is_reported_and_the_others_imported(write_file, tmp_path):
    data = "phone,first name\r\n+14155550100,Renée\r\n".encode("cp1252") + b"+14155550101,Bad\x81\r\n"
    data += "+14155550102,Zoë\r\n".encode("cp1252")
    report = tmp_path / "r.csv"
    summary = run(write_file("bad.csv", data), report_path=report)
    assert (summary.rows, summary.created, summary.invalid) == (3, 2, 1)
    assert not Contact.objects.filter(phone="+14155550101").exists()
    line = report_rows(report)[1]
    assert line[0] == "3" and "not valid cp1252" in line[1] and line[3] == "Bad\ufffd"


def test_nul_bytes_in_cells_never_reach_the_database(write_file):
    rows = "".join(f"+1212{2_000_000 + n:07d},P{n}\r\n" for n in range(20_000))  # the NUL is past the sample
    data = ("phone,first name\r\n" + rows).encode() + b"+14155550100,Zo\x00e\r\n+14155550101,Bob\r\n"
    summary = run(write_file("nul.csv", data), chunk_rows=5000)
    assert summary.created == 20_002 and summary.invalid == 0
    assert Contact.objects.get(phone="+14155550100").first_name == "Zoe"


@pytest.fixture
def refuse_first_name():
    """Make the real database refuse a contact whose first name is ``Boom`` (a trigger), as a database
    refuses a value it cannot store."""
    from django.db import connection

    table = Contact._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_boom() RETURNS trigger AS $$ BEGIN IF NEW.first_name = 'Boom' THEN "
                "RAISE EXCEPTION 'value refused' USING ERRCODE = '22000'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(f"CREATE TRIGGER refuse_boom BEFORE INSERT OR UPDATE ON {table} "
                           "FOR EACH ROW EXECUTE FUNCTION refuse_boom()")
        else:
            cursor.execute(f"CREATE TRIGGER refuse_boom BEFORE INSERT ON {table} WHEN NEW.first_name = 'Boom' "
                           "BEGIN SELECT RAISE(ABORT, 'value refused'); END")
    yield  # the test's transaction is rolled back afterwards, trigger included


def test_a_row_the_database_refuses_does_not_roll_back_its_chunk(make_csv, tmp_path, refuse_first_name):
    rows = [["phone", "first name"]] + [[f"+1212{2_000_000 + n:07d}", f"P{n}"] for n in range(1200)]
    rows[699][1] = "Boom"  # row 700 of the file (the header is row 1)
    report = tmp_path / "r.csv"
    summary = run(make_csv(rows), chunk_rows=500, report_path=report)
    assert (summary.rows, summary.created, summary.invalid) == (1200, 1199, 1)
    assert Contact.objects.count() == 1199 and ListMembership.objects.count() == 1199
    assert not Contact.objects.filter(first_name="Boom").exists()
    line = report_rows(report)[1]
    assert line[0] == "700" and "database refused" in line[1] and "value refused" in line[1]


def test_the_report_header_is_formula_escaped_too(make_csv, tmp_path):
    path = make_csv([["phone", "=HYPERLINK(\"http://evil\")", "@cmd"], ["junk", "a", "b"], ["+14155550100", "", ""]])
    report = tmp_path / "r.csv"
    contact_import_run(path=path, mapping=["phone", "custom:x", "custom:y"], region="US", report_path=report)
    header = report_rows(report)[0]
    assert header == ["row", "problem", "phone", "'=HYPERLINK(\"http://evil\")", "'@cmd"]


def test_a_file_cut_part_way_keeps_what_was_read_and_says_where_it_stopped(cut_workbook):
    cut = cut_workbook(["phone", "first name"], lambda n: [f"+1212{2_000_000 + n:07d}", f"P{n}"])
    summary = run(cut, chunk_rows=500)
    assert summary.cut and summary.created == summary.rows == Contact.objects.count() > 500
    assert summary.cut_at_row == summary.rows + 2  # the header is row 1
    assert f"cut at row {summary.cut_at_row}" in str(summary)
    assert f"row {summary.cut_at_row} and everything after it were not" in summary.cut_message()


def test_unknown_default_country_is_refused_before_anything_is_written(messy):
    with pytest.raises(MappingError, match="use GB"):
        run(messy, region="UK")
    assert not Contact.objects.exists()
