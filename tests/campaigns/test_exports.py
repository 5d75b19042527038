"""CSV export: formula injection neutralized, lists exported, and an export imports back unchanged."""

from __future__ import annotations

import csv
import io

import pytest

from campaigns.exports import contacts_export, csv_safe, lists_export
from campaigns.imports.mapping import auto_map
from campaigns.imports.services import contact_import_run
from campaigns.models import Contact, ContactList, ListMembership, Tag

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "value, expected",
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=cmd", "'\t=cmd"),
        ("\rx", "'\rx"),
        ("Ann", "Ann"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (5, "5"),
    ],
)
def test_csv_safe(value, expected):
    assert csv_safe(value) == expected


def parse(lines) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(lines))))


def test_contacts_export_escapes_every_cell():
    evil = "=HYPERLINK(\"http://evil\",\"x\")"
    c = Contact.objects.create(phone="+14155550100", first_name=evil, last_name="@cmd", email="a@example.com",
                               custom_fields={"note": "-1+1", "plain": "ok"})
    c.tags.add(Tag.objects.create(name="+vip"))
    rows = parse(contacts_export(queryset=Contact.objects.all()))
    header, row = rows
    assert header[:3] == ["phone", "first_name", "last_name"] and header[-2:] == ["note", "plain"]
    record = dict(zip(header, row, strict=False))
    assert record["phone"] == "'+14155550100"
    assert record["first_name"] == "'" + evil and record["last_name"] == "'@cmd"
    assert record["note"] == "'-1+1" and record["plain"] == "ok" and record["tags"] == "'+vip"
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


def test_lists_export_has_each_contact_once():
    a = Contact.objects.create(phone="+14155550100")
    b = Contact.objects.create(phone="+14155550101")
    Contact.objects.create(phone="+14155550102")
    one, two = ContactList.objects.create(name="one"), ContactList.objects.create(name="two")
    for contact_list, contact in [(one, a), (two, a), (two, b)]:
        ListMembership.objects.create(contact_list=contact_list, contact=contact)
    rows = parse(lists_export(lists=[one, two]))
    assert [r[0] for r in rows[1:]] == ["'+14155550100", "'+14155550101"]
    assert rows[1][7] == "one; two"


def test_an_export_imports_back_unchanged(tmp_path):
    Contact.objects.create(phone="+14155550100", first_name="=Ann", custom_fields={"score": "-5"})
    path = tmp_path / "export.csv"
    path.write_text("".join(contacts_export(queryset=Contact.objects.all())))
    Contact.objects.all().delete()
    header = next(csv.reader(path.open()))
    mapping = [m if m in ("phone", "first_name", "custom:score") else "" for m in auto_map(header)]
    summary = contact_import_run(path=path, mapping=mapping, region="US")
    assert summary.created == 1
    c = Contact.objects.get()
    assert (str(c.phone), c.first_name, c.custom_fields) == ("+14155550100", "=Ann", {"score": "-5"})


def test_export_command(tmp_path):
    from django.core.management import CommandError, call_command

    a = Contact.objects.create(phone="+14155550100", first_name="@Ann")
    Contact.objects.create(phone="+14155550101")
    ListMembership.objects.create(contact_list=ContactList.objects.create(name="VIP"), contact=a)
    out = io.StringIO()
    call_command("export_contacts", "--list", "VIP", stdout=out)
    rows = parse([out.getvalue()])
    assert [r[:2] for r in rows[1:]] == [["'+14155550100", "'@Ann"]]
    target = tmp_path / "all.csv"
    call_command("export_contacts", "-o", str(target))
    assert len(parse([target.read_text(encoding="utf-8-sig")])) == 3
    with pytest.raises(CommandError, match="No list named Nope"):
        call_command("export_contacts", "--list", "Nope")


def test_with_bom():
    from campaigns.exports import with_bom

    lines = list(with_bom(contacts_export(queryset=Contact.objects.none())))
    assert lines[0] == "\ufeff" and lines[1].startswith("phone,")
