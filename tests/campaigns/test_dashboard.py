"""The campaign page's figures, read against the database: recipients told apart from messages after a resend,
progress and delivery rate, the timeline per minute or per hour, failover banner, figures by sender and failure
codes, the stats JSON the page polls, and the results table's filters and keyset pages."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Contact
from campaigns.selectors import ResultFilters, campaign_dashboard, campaign_results_page
from campaigns.services import campaign_launch, campaign_resend_failed
from messaging.models import Message
from messaging.services.outcomes import message_fail_over
from messaging.services.status import message_move
from messaging.services.tallies import outcomes_tally

pytestmark = pytest.mark.django_db
S = Message.Status


def launched(make_sender, make_audience, make_campaign, n=4, **fields):
    campaign = make_campaign(make_sender("plivo"), [make_audience(n)], **fields)
    campaign_launch(campaign=campaign, check_media=False)
    campaign.refresh_from_db()
    return campaign, list(Message.objects.filter(campaign=campaign).order_by("id"))


def sent(message):
    assert message_move(message.pk, S.SENT, fields={"provider_message_id": f"pm-{message.pk}",
                                                    "sent_at": timezone.now()})


def outcome(message, status, cause="", code=""):
    sent(message)
    fields = {"error_cause": cause, "error_code": code} if cause else {"delivered_at": timezone.now()}
    assert message_move(message.pk, status, fields=fields)


def page_of(admin_client, campaign, **query) -> str:
    return admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]), query).content.decode()


def test_recipients_and_messages_are_told_apart_after_a_resend(make_sender, make_audience, make_campaign, engine,
                                                               admin_client):
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=4)
    outcome(messages[0], S.DELIVERED)
    outcome(messages[1], S.DELIVERED)
    outcome(messages[2], S.FAILED, "carrier_filtered", "30")
    outcome(messages[3], S.UNDELIVERED, "invalid_number", "50")
    figures = campaign_dashboard(campaign=campaign)
    assert figures["recipients"]["done_percent"] == 100.0
    assert figures["recipients"]["delivery_rate"] == 50.0  # 2 delivered of 4 recipients with an outcome

    assert campaign_resend_failed(campaign=campaign) == 2
    campaign.refresh_from_db()
    figures = campaign_dashboard(campaign=campaign)
    recipients = figures["recipients"]
    assert figures["counts"]["failed"] == 1 and figures["counts"]["undelivered"] == 1 and figures["total"] == 6
    assert (recipients["total"], recipients["superseded"]) == (4, 2)
    assert recipients["counts"]["failed"] == recipients["counts"]["undelivered"] == 0
    assert recipients["counts"]["queued"] == 2 and recipients["counts"]["delivered"] == 2
    assert recipients["done_percent"] == 50.0  # two of four recipients wait for their second message
    assert recipients["delivery_rate"] == 100.0  # of the recipients with an outcome: both delivered

    again = Message.objects.filter(campaign=campaign, round=1).order_by("id")
    outcome(again[0], S.DELIVERED)
    outcome(again[1], S.FAILED, "carrier_filtered", "30")
    recipients = campaign_dashboard(campaign=campaign)["recipients"]
    assert (recipients["counts"]["delivered"], recipients["counts"]["failed"], recipients["final"]) == (3, 1, 4)
    assert recipients["done_percent"] == 100.0 and recipients["delivery_rate"] == 75.0

    html = page_of(admin_client, campaign)
    assert 'data-count="delivered">3<' in html and 'data-count="failed">1<' in html  # recipients
    assert 'data-message-count="failed">2<' in html and 'data-message-count="total">6<' in html  # messages
    assert 'data-figure="delivery_rate">75.0%<' in html and 'data-figure="done_percent">100.0%<' in html
    assert 'data-count="cause-carrier_filtered">2<' in html  # why messages failed: two messages, one recipient


def test_failures_by_provider_code_say_what_the_code_means(make_sender, make_audience, make_campaign, engine,
                                                           admin_client):
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=3)
    outcome(messages[0], S.UNDELIVERED, "content", "110")
    outcome(messages[1], S.UNDELIVERED, "content", "110")
    outcome(messages[2], S.FAILED, "invalid_number", "50")
    codes = campaign_dashboard(campaign=campaign)["failure_codes"]
    assert [(c["code"], c["provider_name"], c["count"]) for c in codes] == [("110", "Plivo", 2), ("50", "Plivo", 1)]
    assert codes[0]["meaning"] == "Message too long" and codes[0]["cause"]["code"] == "content"
    html = page_of(admin_client, campaign)
    table = html[html.index('id="campaign-failure-codes"'):]
    assert "Message too long" in table[:table.index("</table>")]


def test_the_timeline_is_per_minute_then_per_hour_for_a_long_campaign(make_sender, make_audience, make_campaign,
                                                                       engine):
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=3)
    outcome(messages[0], S.DELIVERED)
    outcome(messages[1], S.FAILED, "carrier_filtered", "30")
    timeline = campaign_dashboard(campaign=campaign)["timeline"]
    assert timeline["unit"] == "minute"
    assert sum(p["sent"] for p in timeline["points"]) == 2
    assert sum(p["delivered"] for p in timeline["points"]) == 1 and sum(p["failed"] for p in timeline["points"]) == 1

    # An outcome five hours earlier (a campaign sent over an afternoon): the timeline becomes hourly, without gaps.
    outcomes_tally(campaign_id=campaign.pk, sender_id=campaign.sender_id, old=S.SENDING, new=S.SENT,
                   at=timezone.now() - timedelta(hours=5))
    timeline = campaign_dashboard(campaign=campaign)["timeline"]
    assert timeline["unit"] == "hour"
    assert len(timeline["points"]) in (6, 7) and sum(p["sent"] for p in timeline["points"]) == 3
    assert timeline["points"][0]["sent"] == 1


def test_failover_banner_names_the_backup_sender_and_why(make_sender, make_audience, make_campaign, engine,
                                                          admin_client):
    backup = make_sender("sendblue", name="Backup line")
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=3, backup_sender=backup)
    for message in messages[:2]:
        assert message_fail_over(message, backup, "circuit open", from_status=S.QUEUED, cause="unreachable",
                                 code="circuit_open")
    figures = campaign_dashboard(campaign=campaign)
    assert [(f["backup"], f["count"], f["code"], f["circuit_open"]) for f in figures["failovers"]] == [
        ("Backup line", 2, "circuit_open", True)]
    by_sender = {row["name"]: row for row in figures["by_sender"]}
    assert by_sender["Backup line"]["failover_in"] == 2
    html = page_of(admin_client, campaign)
    banner = html[html.index('id="campaign-failovers"'):]
    banner = banner[:banner.index("</ul>")]
    assert "2 messages moved to backup sender Backup line" in banner
    assert "(code circuit_open: the main sender's circuit was open)" in banner
    # the recipients table says which sender each message went through
    rows = html[html.index('id="campaign-recipients"'):]
    assert rows.count(">Backup line<") == 2


def test_the_stats_json_carries_everything_the_page_shows(make_sender, make_audience, make_campaign, engine,
                                                           admin_client):
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=2)
    outcome(messages[0], S.DELIVERED)
    data = admin_client.get(reverse("campaigns:campaign_stats", args=[campaign.pk])).json()
    assert data["status"] == "sending"
    assert {"counts", "total", "recipients", "timeline", "by_sender", "failures", "failure_codes", "failovers",
            "replies", "awaiting_receipt"} <= set(data)
    assert data["recipients"] == {"total": 2, "counts": data["counts"], "final": 1, "done_percent": 50.0,
                                  "outcomes": 1, "delivery_rate": 100.0, "superseded": 0}
    assert data["timeline"]["unit"] == "minute" and data["timeline"]["points"][-1]["delivered"] == 1
    assert data["by_sender"][0]["delivered"] == 1 and data["by_sender"][0]["provider_name"] == "Plivo"
    # The page is rendered with the same figures, for the chart and the first paint (no wait for a poll).
    html = page_of(admin_client, campaign)
    embedded = html[html.index('id="campaign-dashboard-data"'):]
    embedded = json.loads(embedded[embedded.index(">") + 1:embedded.index("</script>")])
    assert embedded["timeline"] == data["timeline"] and embedded["recipients"] == data["recipients"]


# ---- the results table ---------------------------------------------------------------------------------------


@pytest.fixture
def results(make_sender, make_audience, make_campaign, engine):
    backup = make_sender("sendblue", name="Backup line")
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=9, backup_sender=backup)
    Contact.objects.filter(phone=messages[4].to).update(first_name="Renée", last_name="Zamora")
    outcome(messages[0], S.DELIVERED)
    outcome(messages[1], S.FAILED, "carrier_filtered", "30")
    outcome(messages[2], S.UNDELIVERED, "invalid_number", "50")
    message_fail_over(messages[3], backup, "circuit open", from_status=S.QUEUED, code="circuit_open")
    return campaign, messages, backup


def ids(page) -> list[int]:
    return [m.pk for m in page.rows]


def test_results_filter_by_status_cause_sender_provider_number_and_name(results):
    campaign, messages, backup = results

    def found(**filters):
        return ids(campaign_results_page(campaign=campaign, filters=ResultFilters(**filters)))

    assert found() == [m.pk for m in messages]
    assert found(status="failed") == [messages[1].pk]
    assert found(cause="invalid_number") == [messages[2].pk]
    assert found(sender=backup.pk) == [messages[3].pk]
    assert found(provider="sendblue") == [messages[3].pk]
    assert found(provider="plivo") == [m.pk for m in messages if m.pk != messages[3].pk]
    assert found(q="zamora") == [messages[4].pk]  # a last name, any case
    assert found(q="renée zam") == [messages[4].pk]  # every word in a name
    written = f"({messages[5].to[2:5]}) {messages[5].to[5:8]}-{messages[5].to[8:]}"  # (212) 555-0005
    assert found(q=written) == [messages[5].pk]
    assert found(status="delivered", q="zamora") == []


def test_results_page_by_keyset_with_the_total_from_the_counters(results):
    campaign, messages, _backup = results
    everything = ResultFilters()
    with CaptureQueriesContext(connection) as queries:
        first = campaign_results_page(campaign=campaign, filters=everything, size=4)
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]  # never counted
    assert ids(first) == [m.pk for m in messages[:4]] and first.total == 9 and first.previous_before is None
    second = campaign_results_page(campaign=campaign, filters=everything, after=first.next_after, size=4)
    third = campaign_results_page(campaign=campaign, filters=everything, after=second.next_after, size=4)
    assert ids(second) == [m.pk for m in messages[4:8]] and ids(third) == [messages[8].pk]
    assert third.next_after is None
    back = campaign_results_page(campaign=campaign, filters=everything, before=third.previous_before, size=4)
    assert ids(back) == ids(second) and back.next_after == second.next_after
    assert back.previous_before == second.previous_before
    assert campaign_results_page(campaign=campaign, filters=ResultFilters(status="queued")).total == 6
    assert campaign_results_page(campaign=campaign, filters=ResultFilters(cause="carrier_filtered")).total is None


def test_the_results_table_links_each_message_and_keeps_filters_across_pages(results, admin_client, settings):
    campaign, messages, backup = results
    html = page_of(admin_client, campaign, provider="plivo")
    table = html[html.index('id="campaign-recipients"'):]
    table = table[:table.index("</table>")]
    assert reverse("admin:messaging_message_change", args=[messages[0].pk]) in table
    assert table.count("<tr data-status") == 8 and messages[3].to not in table
    assert "8 message" not in html  # a filter the counters do not know: no total claimed
    assert f'{reverse("campaigns:campaign_export", args=[campaign.pk, "csv"])}?provider=plivo' in html
    html = page_of(admin_client, campaign, status="queued")
    assert "6 messages queued" in html
    # keyset links: the next page after the last id shown
    import campaigns.selectors as selectors

    page = selectors.campaign_results_page(campaign=campaign, filters=ResultFilters(), size=selectors.RESULTS_PAGE)
    assert page.next_after is None  # nine messages fit one page
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"


@pytest.mark.parametrize("query", [
    {"after": "9" * 30}, {"before": "99999999999999999999"}, {"sender": "\u00b2"}, {"after": "\u0661\u0662"},
    {"q": "Ren\x00ée"}, {"status": "\x00"}, {"cause": "x" * 500}, {"provider": "<script>"},
])
def test_hostile_filters_and_page_bounds_answer_a_page_not_an_error(results, admin_client, query):
    """Numbers too large for an id column, characters Python calls digits, a NUL: the page and the export answer
    200 with what the rest of the filters keep."""
    campaign, _messages, _backup = results
    assert admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]), query).status_code == 200
    export = admin_client.get(reverse("campaigns:campaign_export", args=[campaign.pk, "csv"]), query)
    assert export.status_code == 200
    b"".join(export.streaming_content)


# ---- in a real browser ---------------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_page_shows_its_figures_at_once_then_updates_and_fits_a_laptop_screen(
        browser, live_server, roles, make_sender, make_audience, make_campaign, engine, tmp_path):
    import os

    from django.contrib.auth.models import Group, User

    from campaigns.roles import CAMPAIGN_MANAGER

    backup = make_sender("sendblue", name="Backup line")
    campaign, messages = launched(make_sender, make_audience, make_campaign, n=12, backup_sender=backup,
                                  name="Autumn newsletter")
    for message in messages[:6]:
        outcome(message, S.DELIVERED)
    outcome(messages[6], S.FAILED, "carrier_filtered", "30")
    outcome(messages[7], S.UNDELIVERED, "invalid_number", "50")
    message_fail_over(messages[8], backup, "circuit open", from_status=S.QUEUED, cause="unreachable",
                      code="circuit_open")
    user = User.objects.create_user("dana", password="a-long-password-1", is_staff=True)
    user.groups.add(Group.objects.get(name=CAMPAIGN_MANAGER))
    shots = os.environ.get("SCREENSHOT_DIR") or str(tmp_path)

    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "dana")
    page.fill("#id_password", "a-long-password-1")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
    # First paint: the figures and the chart are there before any poll.
    assert page.locator('#campaign-counts [data-count="delivered"]').inner_text() == "6"
    assert page.locator('[data-figure="delivery_rate"]').first.inner_text() == "75.0%"  # 6 of 8 with an outcome
    assert page.locator("#campaign-chart svg polyline").count() == 3
    assert page.locator("#campaign-chart .chart-legend li").count() == 3
    assert "moved to backup sender Backup line" in page.locator("#campaign-failovers").inner_text()
    assert page.locator("#campaign-senders tbody tr").count() == 2
    assert page.locator("#campaign-recipients tbody tr").count() == 12
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    page.screenshot(path=os.path.join(shots, "campaign-dashboard-1366.png"), full_page=True)

    # While it sends, the page follows the database without a reload.
    outcome(messages[9], S.DELIVERED)
    page.wait_for_function("() => document.querySelector('#campaign-counts [data-count=\"delivered\"]')"
                           "?.textContent.trim() === '7'", timeout=15_000)
    page.wait_for_function("() => document.querySelector('[data-figure=\"delivery_rate\"]')"
                           "?.textContent.trim() === '77.8%'", timeout=15_000)

    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/?provider=sendblue#campaign-results")
    assert page.locator("#campaign-recipients tbody tr").count() == 1
    assert page.locator("#export-xlsx").get_attribute("href").endswith("?provider=sendblue")
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    page.screenshot(path=os.path.join(shots, "campaign-results-filtered-1366.png"), full_page=True)
