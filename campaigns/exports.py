"""CSV export of contacts and lists, safe to open in a spreadsheet.

Any cell that a spreadsheet would read as a formula (beginning with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return) gets a leading apostrophe, so it is shown as text and never evaluated. Our importer
removes that apostrophe again, so an export can be imported back unchanged.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet

from .models import Contact, ContactList, ListMembership

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"  # first in a downloaded file: without it Excel reads UTF-8 as its ANSI code page (Renée -> RenÃ©e)
STANDARD_COLUMNS = ["phone", "first_name", "last_name", "email", "timezone", "opted_out", "is_fixed_line",
                    "lists", "tags", "created_at"]


def csv_safe(value) -> str:
    """One value as a spreadsheet-safe CSV cell."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[list]) -> Iterator[str]:
    """Rows as CSV text lines, every cell neutralized; for a StreamingHttpResponse or a file."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([csv_safe(cell) for cell in row])


def with_bom(lines: Iterable[str]) -> Iterator[str]:
    """A download's lines, after the byte order mark that tells Excel the file is UTF-8."""
    yield BOM
    yield from lines


def _custom_keys(queryset: QuerySet[Contact]) -> list[str]:
    keys: dict[str, None] = {}
    for fields in queryset.values_list("custom_fields", flat=True).iterator(chunk_size=2000):
        for key in fields or {}:
            keys.setdefault(key, None)
    return list(keys)


def contacts_rows(*, queryset: QuerySet[Contact]) -> Iterator[list]:
    """The header, then one row per contact: standard fields, lists, tags, then each custom field."""
    queryset = queryset.order_by("pk")
    keys = _custom_keys(queryset)
    yield STANDARD_COLUMNS + keys
    batch = 2000
    last = 0
    while True:
        contacts = list(queryset.filter(pk__gt=last).prefetch_related("lists", "tags")[:batch])
        if not contacts:
            return
        for c in contacts:
            custom = c.custom_fields or {}
            yield [
                str(c.phone), c.first_name, c.last_name, c.email, c.timezone,
                "yes" if c.opted_out else "no", "yes" if c.is_fixed_line else "no",
                "; ".join(sorted(x.name for x in c.lists.all())),
                "; ".join(sorted(t.name for t in c.tags.all())),
                c.created_at.isoformat(timespec="seconds"),
            ] + [custom.get(k, "") for k in keys]
        last = contacts[-1].pk


def contacts_export(*, queryset: QuerySet[Contact]) -> Iterator[str]:
    return csv_lines(contacts_rows(queryset=queryset))


def lists_export(*, lists: Iterable[ContactList]) -> Iterator[str]:
    """The contacts of several lists in one file (a contact in two of them appears once)."""
    ids = [x.pk for x in lists]
    contact_ids = ListMembership.objects.filter(contact_list_id__in=ids).values("contact_id")
    return contacts_export(queryset=Contact.objects.filter(pk__in=contact_ids))
