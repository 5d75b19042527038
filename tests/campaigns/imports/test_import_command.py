"""``manage.py import_contacts``: header auto-mapping, --map, --region, --errors, --policy, refusals."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from campaigns.models import Contact, ContactList
from messaging.models import Suppression

pytestmark = pytest.mark.django_db


def command(*args) -> str:
    out = io.StringIO()
    call_command("import_contacts", *map(str, args), stdout=out)
    return out.getvalue()


def test_import_with_report(make_csv, tmp_path):
    path = make_csv([["MSISDN", "Given name", "Family_Name", "e-mail", "Time Zone", "Plan"],
                     ["07911 123456", "Ann", "Lee", "ann@example.com", "europe/london", "gold"],
                     ["1.41555E+10", "Bob", "", "", "", ""]])
    report = tmp_path / "errors.csv"
    out = command(path, "--list", "UK leads", "--region", "GB", "--errors", report)
    assert "'MSISDN' -> phone" in out and "'Plan' -> custom field {{ plan }}" in out
    assert "2 rows: 1 created, 0 updated, 0 skipped, 1 invalid, 0 duplicate" in out
    contact = Contact.objects.get()
    assert (str(contact.phone), contact.first_name, contact.last_name, contact.email, contact.timezone) == (
        "+447911123456", "Ann", "Lee", "ann@example.com", "Europe/London")
    assert contact.custom_fields == {"plan": "gold"}
    assert list(contact.lists.values_list("name", flat=True)) == ["UK leads"]
    rows = list(csv.reader(report.open(encoding="utf-8-sig")))
    assert rows[1][0] == "3" and "digits were lost" in rows[1][1]


def test_map_overrides_the_header(make_csv):
    path = make_csv([["Phone", "Work", "Name"], ["", "+14155550100", "Ann"]])
    out = command(path, "--list", "L", "--map", "Work=phone", "--map", "Name=first_name", "--map", "phone=ignore")
    assert "1 created" in out
    assert Contact.objects.get().first_name == "Ann"


def test_skip_policy(make_csv):
    Contact.objects.create(phone="+14155550100", first_name="Keep")
    out = command(make_csv([["phone", "first name"], ["+14155550100", "New"]]), "--list", "L", "--policy", "skip")
    assert "0 created, 0 updated, 1 skipped" in out
    assert Contact.objects.get().first_name == "Keep"


def test_suppression_file(make_csv):
    out = command(make_csv([["phone"], ["+14155550100"]]), "--suppression")
    assert "1 created" in out
    assert Suppression.objects.get().opted_out


@pytest.mark.parametrize(
    "rows, args, message",
    [
        ([["name"], ["Ann"]], ["--list", "L"], "No column holds phone numbers"),
        ([["phone"], ["+14155550100"]], [], "--list"),
        ([["phone"], ["+14155550100"]], ["--list", "L", "--map", "nope=phone"], "no column 'nope'"),
    ],
)
def test_refusals(make_csv, rows, args, message):
    with pytest.raises(CommandError, match=message):
        command(make_csv(rows), *args)
    assert Contact.objects.count() == 0 and not ContactList.objects.exists()


def test_a_refused_file_leaves_no_list_behind(make_csv):
    path = make_csv([["phone", "name"], ["abc", "Ann"], ["xyz", "Bob"]])
    with pytest.raises(CommandError, match="None of the first 2 values"):
        command(path, "--list", "Never made")
    assert not ContactList.objects.exists()


def test_the_list_is_created_with_the_first_contacts(make_csv):
    out = command(make_csv([["phone"], ["+14155550100"]]), "--list", "Fresh")
    assert "1 created" in out
    assert list(ContactList.objects.get(name="Fresh").contacts.values_list("phone", flat=True)) == ["+14155550100"]


@pytest.mark.parametrize("region, message", [("UK", "use GB"), ("XX", "two-letter ISO 3166 code")])
def test_an_unknown_region_is_refused_with_a_clear_message(make_csv, region, message):
    with pytest.raises(CommandError, match=message):
        command(make_csv([["phone"], ["07911 123456"]]), "--list", "L", "--region", region)
    assert not ContactList.objects.exists() and not Contact.objects.exists()


def test_lower_case_and_empty_regions(make_csv):
    assert "1 created" in command(make_csv([["phone"], ["07911 123456"]]), "--list", "L", "--region", "gb")
    with pytest.raises(CommandError, match="no country code"):
        command(make_csv([["phone"], ["07911 123457"]]), "--list", "L", "--region", "")


def test_a_file_cut_part_way_prints_the_summary_and_fails(cut_workbook):
    cut = cut_workbook(["phone"], lambda n: [f"+1212{2_000_000 + n:07d}"])
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"cut at row \d+"):
        call_command("import_contacts", str(cut), "--list", "L", stdout=out)
    assert "cut at row" in out.getvalue() and Contact.objects.count() > 0
