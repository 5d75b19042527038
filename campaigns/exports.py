"""Exports safe to open in a spreadsheet: contacts and lists as CSV, a campaign's results as CSV or XLSX.

Any cell that a spreadsheet would read as a formula (beginning with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return) gets a leading apostrophe, so it is shown as text and never evaluated. Our importer
removes that apostrophe again, so an export can be imported back unchanged.

A campaign's results may be millions of rows, so both formats are streamed: rows are read in keyset chunks and
each chunk's bytes leave before the next is read. The XLSX file is written here, by hand, as the few
SpreadsheetML parts a workbook needs, through ``zipfile`` into an unseekable stream whose bytes are handed on
as they come: openpyxl only builds a whole workbook (it assembles the zip when saving), which would hold the
whole file in memory or on disk before the first byte is sent.
"""

from __future__ import annotations

import csv
import re
import zipfile
from collections.abc import Iterable, Iterator
from xml.sax.saxutils import escape

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


# ---- a campaign's results --------------------------------------------------------------------------------

RESULT_COLUMNS = ["to", "first name", "last name", "sender", "provider", "status", "cause", "error code",
                  "error message", "attempts", "round", "sent at", "delivered at", "updated at"]
RESULT_FIELDS = ("id", "to", "contact__first_name", "contact__last_name", "sender__name", "sender__provider",
                 "status", "error_cause", "error_code", "error_message", "attempts", "round", "sent_at",
                 "delivered_at", "updated_at")
CHUNK = 2000  # rows read per query


def _iso(at) -> str:
    return at.isoformat(timespec="seconds") if at else ""


def results_rows(*, campaign, filters) -> Iterator[list]:
    """The header, then one row per message of ``campaign`` that ``filters`` keep (``selectors.ResultFilters``),
    read in keyset chunks of CHUNK rows as plain values: never the whole result set in memory. Numbers stay
    numbers; times are ISO 8601."""
    from messaging.providers import provider_choices
    from messaging.providers.base import cause_info

    from .selectors import campaign_results

    providers = dict(provider_choices())
    yield list(RESULT_COLUMNS)
    last = None
    while True:
        chunk = list(campaign_results(campaign=campaign, filters=filters, after=last)
                     .values_list(*RESULT_FIELDS)[:CHUNK])
        for (_pk, to, first, last_name, sender, provider, status, cause, code, error, attempts, round_,
             sent_at, delivered_at, updated_at) in chunk:
            yield [to, first or "", last_name or "", sender or "", providers.get(provider, provider or ""), status,
                   cause_info(cause).label if cause else "", code, error, attempts, round_, _iso(sent_at),
                   _iso(delivered_at), _iso(updated_at)]
        if len(chunk) < CHUNK:
            return
        last = chunk[-1][0]


def results_csv(*, campaign, filters) -> Iterator[str]:
    """The results as CSV lines (UTF-8 with its byte order mark once encoded), every cell formula-safe."""
    return with_bom(csv_lines(results_rows(campaign=campaign, filters=filters)))


# -- XLSX, streamed --

SHEET_ROWS = 1_048_576  # the most rows an XLSX sheet holds: the header and 1,048,575 data rows
CELL_CHARS = 32_767  # the most characters a cell holds
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_STYLES = (
    f'{_XML}<styleSheet xmlns="{_MAIN}"><fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/>'
    '</fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
)


class _Pipe:
    """A write-only, unseekable file that keeps what is written until it is taken (``zipfile`` then writes
    each entry with a data descriptor, never seeking back)."""

    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def xlsx_text(value) -> str:
    """A text cell's content: formula-safe (``csv_safe``), without characters XML cannot hold, escaped."""
    return escape(_NOT_XML.sub("", csv_safe(value))[:CELL_CHARS])


def _row_xml(number: int, cells: list, style: str = "") -> str:
    out = [f'<row r="{number}">']
    for index, value in enumerate(cells):
        ref = f"{_column(index)}{number}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            out.append(f'<c r="{ref}" t="inlineStr"{style}><is><t xml:space="preserve">{xlsx_text(value)}</t></is></c>')
        else:
            out.append(f'<c r="{ref}"{style}><v>{value}</v></c>')
    out.append("</row>")
    return "".join(out)


def xlsx_stream(rows: Iterable[list], *, sheet_rows: int = SHEET_ROWS, title: str = "Results") -> Iterator[bytes]:
    """An XLSX workbook of ``rows`` (the first is the header), as bytes while it is written. A sheet holds at
    most ``sheet_rows`` rows with its header: the rows go on in a next sheet, under the header again."""
    pipe = _Pipe()
    book = zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_DEFLATED)
    rows = iter(rows)
    header = next(rows)
    sheets = 0
    sheet = None
    number = 0
    for row in rows:
        if sheet is None or number >= sheet_rows:
            if sheet is not None:
                sheet.write(b"</sheetData></worksheet>")
                sheet.close()
            sheets += 1
            sheet = book.open(f"xl/worksheets/sheet{sheets}.xml", mode="w")
            sheet.write(f'{_XML}<worksheet xmlns="{_MAIN}"><sheetData>'.encode())
            sheet.write(_row_xml(1, header, ' s="1"').encode())
            number = 1
        number += 1
        sheet.write(_row_xml(number, row).encode())
        if number % 500 == 0:
            chunk = pipe.take()
            if chunk:
                yield chunk
    if sheet is None:  # no rows: the header alone
        sheets = 1
        sheet = book.open("xl/worksheets/sheet1.xml", mode="w")
        sheet.write(f'{_XML}<worksheet xmlns="{_MAIN}"><sheetData>'.encode())
        sheet.write(_row_xml(1, header, ' s="1"').encode())
    sheet.write(b"</sheetData></worksheet>")
    sheet.close()
    names = [title[:28] if n == 1 else f"{title[:24]} ({n})" for n in range(1, sheets + 1)]
    book.writestr("xl/workbook.xml", (
        f'{_XML}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
        + "".join(f'<sheet name="{escape(name)}" sheetId="{n}" r:id="rId{n}"/>' for n, name in enumerate(names, 1))
        + "</sheets></workbook>"))
    book.writestr("xl/_rels/workbook.xml.rels", (
        f'{_XML}<Relationships xmlns="{_PKG_REL}">'
        + "".join(f'<Relationship Id="rId{n}" Type="{_REL}/worksheet" Target="worksheets/sheet{n}.xml"/>'
                  for n in range(1, sheets + 1))
        + f'<Relationship Id="rId{sheets + 1}" Type="{_REL}/styles" Target="styles.xml"/></Relationships>'))
    book.writestr("xl/styles.xml", _STYLES)
    book.writestr("_rels/.rels", (
        f'{_XML}<Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" Type="{_REL}/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>'))
    book.writestr("[Content_Types].xml", (
        f'{_XML}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        + "".join(f'<Override PartName="/xl/worksheets/sheet{n}.xml" '
                  'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                  for n in range(1, sheets + 1))
        + "</Types>"))
    book.close()
    yield pipe.take()


def results_xlsx(*, campaign, filters) -> Iterator[bytes]:
    """The results as an XLSX workbook, streamed (see the module's docstring)."""
    return xlsx_stream(results_rows(campaign=campaign, filters=filters))
