"""The dashboards in a real browser, end to end: a campaign goes out through the emulator with real workers; its
main sender's credentials are refused, so its messages fail over to the backup sender; some recipients' carriers
fail them. Staff watch the campaign page reach 100% with its chart filled, and every figure on it, on the admin
home and on the senders' pages is checked against the database; the results are exported as CSV and XLSX and
read back. Screenshots of the three pages are saved as test artifacts (SCREENSHOT_DIR, by default
var/test-artifacts/screenshots)."""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter

import pytest
from django.db.models import Sum
from playwright.sync_api import expect

from campaigns.models import Campaign
from campaigns.services import campaign_launch
from messaging.models import CallbackTally, CampaignTally, Message, MessageEvent, SenderHour
from messaging.services.circuit import circuit_open_until
from tests.support import ROOT, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-password-1"
SHOTS = os.environ.get("SCREENSHOT_DIR") or str(ROOT / "var" / "test-artifacts" / "screenshots")
FAILING = {"0003": "failed", "0007": "undelivered", "0011": "undelivered"}


def shot(page, name: str) -> None:
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def number(text: str) -> int:
    return int(re.sub(r"[^\d]", "", text) or 0)


def test_staff_follow_a_campaign_with_failures_and_a_failover_on_every_dashboard(
        browser, workers, live_server, sandbox, make_sender, make_audience, make_campaign, tmp_path):
    from django.contrib.auth.models import User

    sandbox.config(latency_ms=5, delivered=1.0, undelivered=0.0, failed=0.0, outcomes_by_suffix=FAILING,
                   reject_credentials=["revoked-token"])
    main = make_sender("plivo", name="Main line", mps=20,
                       credentials={"auth_id": "MAMAINLINE0000000001", "auth_token": "revoked-token"})
    backup = make_sender("bandwidth", name="Backup line", mps=20)
    campaign = make_campaign(main, [make_audience(24)], name="Winter sale", backup_sender=backup)
    User.objects.create_superuser("dana", "dana@example.com", PASSWORD)
    workers.start(concurrency=2, beat=True)

    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "dana")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")

    campaign_launch(campaign=campaign, check_media=False)
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
    page.wait_for_selector("#campaign-figures")
    # The page follows the campaign by itself until every recipient has a final status.
    expect(page.locator("#campaign-figures [data-figure=done_percent]")).to_have_text("100.0%", timeout=120_000)
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == "completed", timeout=60, interval=0.5,
               message="the campaign to complete")
    page.reload()
    page.wait_for_selector("#campaign-chart svg")

    # ---- the campaign page, against the rows
    messages = Message.objects.filter(campaign=campaign)
    by_status = Counter(messages.values_list("status", flat=True))
    assert by_status == {"delivered": 21, **Counter(FAILING.values())}
    assert set(messages.values_list("sender_id", flat=True)) == {backup.pk}
    figure = {name: page.locator(f"#campaign-figures [data-figure={name}]").inner_text().strip()
              for name in ("done_percent", "delivery_rate", "recipients_total", "messages_total")}
    assert figure == {"done_percent": "100.0%", "delivery_rate": f"{100 * 21 / 24:.1f}%", "recipients_total": "24",
                      "messages_total": "24"}
    for status in ("delivered", "undelivered", "failed", "queued", "sending", "sent"):
        assert number(page.locator(f'#campaign-counts [data-count="{status}"]').inner_text()) == by_status[status]
        assert number(page.locator(f'#campaign-counts [data-message-count="{status}"]').inner_text()) == \
            by_status[status]
    assert page.locator("#campaign-progress").evaluate("bar => bar.style.width") == "100%"

    moved = MessageEvent.objects.filter(message__campaign=campaign, source="system",
                                        error_message__startswith="Moved to backup sender").count()
    assert moved == 24
    banner = page.locator("#campaign-failovers")
    assert banner.is_visible()
    banner_total = sum(number(li.split(" message")[0]) for li in banner.locator("li").all_inner_texts())
    assert banner_total == moved
    assert "Backup line" in banner.inner_text() and "Account or configuration" in banner.inner_text()

    senders = {row.get_attribute("data-sender"): row.locator("td").all_inner_texts()
               for row in page.locator("#campaign-senders tbody tr").all()}
    backup_row = senders[str(backup.pk)]
    assert backup_row[:2] == ["Backup line", "Bandwidth v1"] or backup_row[0] == "Backup line"
    assert [number(cell) for cell in backup_row[2:7]] == [
        24, 21, by_status["undelivered"], by_status["failed"], 24]

    failed_rows = list(messages.filter(status__in=("failed", "undelivered")).values_list("error_cause", "error_code"))
    shown = Counter()
    for row in page.locator("#campaign-failure-codes tbody tr").all():
        cells = row.locator("td").all_inner_texts()
        shown[(cells[2].replace("–", ""), )] += number(cells[4])
        assert cells[3] and cells[3] != "not documented" or not cells[2].strip("–")
    assert sum(shown.values()) == len(failed_rows) == 3
    assert shown == Counter((code,) for _cause, code in failed_rows)
    causes_shown = {row.get_attribute("data-cause"): number(row.locator("td").nth(1).inner_text())
                    for row in page.locator("#campaign-failures tbody tr").all()}
    assert causes_shown == dict(Counter(cause or "unknown" for cause, _code in failed_rows))

    points = page.locator("#campaign-chart svg").evaluate("svg => svg.querySelectorAll('circle, path, polyline').length")
    assert points > 0
    shot(page, "campaign-dashboard")

    # ---- the results, exported and read back
    with page.expect_download() as download:
        page.click("#export-csv")
    text = open(download.value.path(), encoding="utf-8-sig").read()
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 25
    header = [h.lower() for h in rows[0]]
    status_column = header.index("status")
    assert Counter(r[status_column] for r in rows[1:]) == by_status
    with page.expect_download() as download:
        page.click("#export-xlsx")
    from openpyxl import load_workbook

    assert download.value.suggested_filename.endswith(".xlsx")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    sheet = load_workbook(saved, read_only=True).worksheets[0]
    table = [[cell for cell in row] for row in sheet.iter_rows(values_only=True)]
    assert len(table) == 25
    assert Counter(r[status_column] for r in table[1:]) == by_status

    # ---- the admin home
    page.goto(f"{live_server.url}/admin/")
    page.wait_for_selector("#overview-volume")
    today = page.locator('#overview-volume tbody[data-provider="bandwidth"] tr[data-period="today"]')
    hours = {status: SenderHour.objects.filter(sender=backup, status=status).aggregate(n=Sum("count"))["n"] or 0
             for status in ("sent", "delivered", "undelivered", "failed")}
    assert hours == {"sent": 24, "delivered": 21, "undelivered": by_status["undelivered"],
                     "failed": by_status["failed"]}
    for status, n in hours.items():
        assert number(today.locator(f'[data-figure="{status}"]').inner_text()) == n
    attention = page.locator("#overview-attention")
    assert circuit_open_until(main.pk) is not None
    assert "Main line" in attention.inner_text()
    assert attention.locator(f'tr[data-sender="{main.pk}"] a').first.get_attribute("href").endswith(
        f"/admin/messaging/sender/{main.pk}/change/")
    failures = page.locator("#overview-failures")
    for cause, n in Counter(cause or "unknown" for cause, _code in failed_rows).items():
        assert number(failures.locator(f'tr[data-cause="{cause}"] td.overview-number').inner_text()) == n
    shot(page, "overview")

    # ---- the senders' pages
    page.goto(f"{live_server.url}/admin/messaging/sender/{main.pk}/change/")
    circuit = page.locator("#sender-circuit")
    assert circuit.get_attribute("data-state") == "open"
    assert "Account or configuration" in circuit.inner_text()
    shot(page, "sender-main")

    import requests

    # A callback with the wrong password, as from a console holding an old URL.
    refused = requests.post(f"{live_server.url}/webhooks/bandwidth/{backup.uuid}/status/",
                            json={"eventType": "sms", "state": "completed"}, auth=("callbacks", "an-old-password"),
                            timeout=10)
    assert refused.status_code == 403
    page.goto(f"{live_server.url}/admin/messaging/sender/{backup.pk}/change/")
    accepted = CallbackTally.objects.filter(sender=backup, accepted=True).aggregate(n=Sum("count"))["n"]
    assert accepted >= 24  # a delivery report per message at least
    assert number(page.locator('#sender-callbacks [data-count="accepted"]').inner_text()) == accepted
    assert number(page.locator('#sender-callbacks [data-count="refused"]').inner_text()) == 1
    assert "403 signature refused: HTTP Basic credentials do not match" in page.locator("#sender-refusals").inner_text()
    assert CampaignTally.objects.filter(campaign=campaign, event="failover").aggregate(n=Sum("count"))["n"] == 24
    shot(page, "sender-backup")
