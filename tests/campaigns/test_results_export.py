"""Export of a campaign's results: the filtered rows as CSV (UTF-8 with its byte order mark) or XLSX, every text
cell formula-safe, streamed in chunks, refused without the export permission, recorded in the audit log."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.admin.models import LogEntry
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from campaigns.exports import RESULT_COLUMNS, xlsx_stream
from campaigns.models import Contact
from campaigns.roles import CAMPAIGN_MANAGER, VIEWER
from campaigns.services import campaign_launch
from messaging.models import Message
from messaging.services.status import message_move

pytestmark = pytest.mark.django_db
S = Message.Status
EVIL = '=HYPERLINK("http://evil.example","click")'


@pytest.fixture
def campaign(make_sender, make_audience, make_campaign, engine):
    campaign = make_campaign(make_sender("plivo", name="Main line"), [make_audience(4)])
    campaign_launch(campaign=campaign, check_media=False)
    messages = list(Message.objects.filter(campaign=campaign).order_by("id"))
    Contact.objects.filter(phone=messages[0].to).update(first_name=EVIL, last_name="Renée")
    for message in messages[:2]:
        assert message_move(message.pk, S.SENT, fields={"provider_message_id": f"pm-{message.pk}",
                                                        "sent_at": timezone.now()})
    assert message_move(messages[0].pk, S.DELIVERED, fields={"delivered_at": timezone.now()})
    assert message_move(messages[1].pk, S.FAILED, fields={"error_cause": "carrier_filtered", "error_code": "30",
                                                          "error_message": "-spam detected"})
    campaign.messages_in_order = messages
    return campaign


def export(client, campaign, fmt, **query):
    return client.get(reverse("campaigns:campaign_export", args=[campaign.pk, fmt]), query)


def test_csv_export_has_the_filtered_rows_formula_safe_with_a_bom(client, roles, campaign):
    client.force_login(roles.user(CAMPAIGN_MANAGER))
    response = export(client, campaign, "csv")
    assert isinstance(response, StreamingHttpResponse) and response["Content-Type"].startswith("text/csv")
    assert 'filename="campaign-' in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 byte order mark, once
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == RESULT_COLUMNS and len(rows) == 5
    first, failed = (dict(zip(rows[0], row, strict=True)) for row in rows[1:3])
    messages = campaign.messages_in_order
    assert first["to"] == "'" + messages[0].to  # "+1..." would be read as a formula
    assert first["first name"] == "'" + EVIL and first["last name"] == "Renée"
    assert (first["sender"], first["provider"], first["status"], first["round"]) == ("Main line", "Plivo",
                                                                                     "delivered", "0")
    assert first["delivered at"].startswith(str(timezone.now().year)) and "T" in first["delivered at"]
    assert (failed["status"], failed["cause"], failed["error code"]) == ("failed", "Carrier filtered", "30")
    assert failed["error message"] == "'-spam detected"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)

    filtered = export(client, campaign, "csv", status="failed")
    rows = list(csv.reader(io.StringIO(b"".join(filtered.streaming_content).decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == ["'" + messages[1].to]
    entries = LogEntry.objects.filter(object_id=str(campaign.pk)).order_by("id")
    assert [e.change_message for e in entries][-2:] == ["Exported its results (CSV): all messages",
                                                        "Exported its results (CSV): status=failed"]


def test_xlsx_export_reads_back_with_text_kept_as_text(client, roles, campaign):
    client.force_login(roles.user(CAMPAIGN_MANAGER))
    response = export(client, campaign, "xlsx", q="renée")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = book.active
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[0] == RESULT_COLUMNS and len(rows) == 2  # the search kept one recipient
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["first name"] == "'" + EVIL and sheet["B2"].data_type == "s"  # text, never a formula
    assert record["last name"] == "Renée" and record["status"] == "delivered"
    assert record["attempts"] == 0 and record["round"] == 0 and sheet["K2"].data_type == "n"  # numbers as numbers
    assert sheet["A1"].font.b  # the header in bold
    assert LogEntry.objects.filter(object_id=str(campaign.pk), change_message__startswith="Exported its results (XLSX)",
                                   change_message__contains="q=renée").exists()


def test_xlsx_goes_on_in_a_next_sheet_when_one_is_full_and_drops_what_xml_cannot_hold():
    rows = [["name", "n"], *([f"row\x01{i} <&>", i] for i in range(5))]
    book = load_workbook(io.BytesIO(b"".join(xlsx_stream(rows, sheet_rows=3))))
    sheets = [[[cell.value for cell in row] for row in sheet.iter_rows()] for sheet in book]
    assert [len(s) for s in sheets] == [3, 3, 2]  # each with its header
    assert all(s[0] == ["name", "n"] for s in sheets)
    assert [r for s in sheets for r in s[1:]] == [[f"row{i} <&>", i] for i in range(5)]
    assert book.sheetnames == ["Results", "Results (2)", "Results (3)"]


def test_a_large_export_is_read_in_chunks_and_streamed(client, roles, make_sender, make_audience, make_campaign,
                                                      engine):
    campaign = make_campaign(make_sender("plivo"), [make_audience(2100)])
    campaign_launch(campaign=campaign, check_media=False)
    client.force_login(roles.user(CAMPAIGN_MANAGER))
    response = export(client, campaign, "csv")
    chunks = iter(response.streaming_content)
    assert next(chunks) == b"\xef\xbb\xbf"  # the first bytes leave before the rows are read
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8"))))
    expected = ["'" + to for to in Message.objects.filter(campaign=campaign).order_by("id").values_list("to", flat=True)]
    assert [row[0] for row in rows[1:]] == expected and len(expected) == 2100  # past the 2,000-row chunk, in order
    xlsx = b"".join(export(client, campaign, "xlsx").streaming_content)
    assert sum(1 for _ in load_workbook(io.BytesIO(xlsx), read_only=True).active.iter_rows()) == 2101


def test_export_is_refused_without_the_permission_and_its_buttons_hidden(client, roles, campaign):
    client.force_login(roles.user(VIEWER))
    for fmt in ("csv", "xlsx"):
        assert export(client, campaign, fmt).status_code == 403
    assert not LogEntry.objects.filter(change_message__startswith="Exported its results").exists()
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert 'id="campaign-recipients"' in page and 'id="export-csv"' not in page

    client.force_login(roles.user(CAMPAIGN_MANAGER))
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]), {"status": "failed"}).content
    csv_url = reverse("campaigns:campaign_export", args=[campaign.pk, "csv"])
    xlsx_url = reverse("campaigns:campaign_export", args=[campaign.pk, "xlsx"])
    assert f'href="{csv_url}?status=failed"'.encode() in page and f'href="{xlsx_url}?status=failed"'.encode() in page
    assert export(client, campaign, "pdf").status_code == 404
