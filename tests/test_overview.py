"""The admin home: the product's name instead of Django's, no link to a public site, and the overview (campaigns in
flight and how far they are, those the product paused, those scheduled next, volume and delivery rate per
provider today and this week in the staff member's timezone, why recent campaigns' messages failed, senders
that need attention), each panel only for staff who may view what it links to, read without the message
table."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from campaigns import overview
from campaigns.models import Campaign
from campaigns.services import campaign_launch, campaign_pause_for, campaign_schedule
from messaging import pacing
from messaging.models import Message, Sender
from messaging.providers.base import StatusEvent
from messaging.selectors import campaigns_accepted_per_minute, senders_attention
from messaging.services import events_apply, message_send
from messaging.services.circuit import circuit_open_now
from messaging.services.tallies import callback_tally, outcomes_tally

pytestmark = pytest.mark.django_db
S = Message.Status
HOME = "/admin/"
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
_ids = iter(range(1, 1_000_000))


def report(message: Message, status: str, code: str = "") -> None:
    message.refresh_from_db()
    event = StatusEvent(provider_message_id=message.provider_message_id, status=status, raw_status=status,
                        occurred_at=datetime.now(UTC), error_code=code, event_id=f"ov-{next(_ids)}")
    events_apply(sender=message.sender, events=[event])


def home(client, user, tz: str = ""):
    client.force_login(user)
    if tz:
        client.cookies["tz"] = tz
    response = client.get(HOME)
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, panel: str) -> str:
    """One panel of the overview (its <section>), or '' when the page has none."""
    found = re.search(rf'<section id="overview-{panel}".*?</section>', html, re.S)
    return found.group(0) if found else ""


def sent(sender, n: int, at: datetime, *, outcome: str = "", cause: str = "", campaign=None) -> None:
    """Count ``n`` messages accepted by the provider at ``at`` and, with ``outcome``, reaching it then, as the
    status changes record them."""
    campaign_id = campaign.pk if campaign else None
    outcomes_tally(campaign_id=campaign_id, sender_id=sender.pk, old=S.SENDING, new=S.SENT, n=n, at=at)
    if outcome:
        outcomes_tally(campaign_id=campaign_id, sender_id=sender.pk, old=S.SENT, new=outcome, n=n, cause=cause,
                       at=at)


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("boss", password="pw")


# ---- the product's name ---------------------------------------------------------------------------------


def test_the_header_and_title_name_the_product_and_no_link_leads_to_a_public_site(client, admin_user):
    html = home(client, admin_user)
    assert re.search(r"<title>\s*Overview \| Campaign messaging\s*</title>", html)
    assert re.search(r'<div id="site-name"><a href="/admin/">Campaign messaging</a></div>', html)
    assert "Django administration" not in html and "Django site admin" not in html
    assert "View site" not in html
    assert 'href="/"' not in html
    changelist = client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "| Campaign messaging</title>" in changelist.replace("\n", "")
    assert "View site" not in changelist and "Django administration" not in changelist


# ---- campaigns -----------------------------------------------------------------------------------------


def test_a_sending_campaign_shows_its_progress_from_its_counters(client, admin_user, make_sender, make_audience,
                                                                 make_campaign, engine, sandbox):
    sandbox.config(callback_retries=0)
    campaign = make_campaign(make_sender("plivo", name="Main line"), [make_audience(4)], name="Spring sale")
    campaign_launch(campaign=campaign, check_media=False)
    messages = list(Message.objects.filter(campaign=campaign).order_by("id"))
    for message in messages[:3]:
        assert message_send(message_id=message.pk) == "sent"
    report(messages[0], "delivered")
    report(messages[1], "failed", "1000")

    panel = section(home(client, admin_user), "in-flight")
    row = re.search(rf'<tr data-campaign="{campaign.pk}">.*?</tr>', panel, re.S).group(0)
    assert reverse("admin:campaigns_campaign_change", args=[campaign.pk]) in row
    assert "Spring sale" in row and "from Main line" in row and "Sending" in row
    assert "50.0% done: 2 of 4 recipients" in row  # delivered and failed are final; one sent, one queued are not
    assert 'value="50.0"' in row
    per_minute = re.search(r'<td class="overview-number">([\d.]+)</td>', row).group(1)
    assert 0 < float(per_minute) <= 3 / overview.messaging.PACE_MINUTES  # 3 accepted within the last minutes


def test_a_resent_campaign_shows_its_progress_in_recipients_as_its_page_does(client, admin_user, make_sender,
                                                                              make_audience, make_campaign, engine,
                                                                              sandbox):
    from campaigns.services import campaign_resend_failed

    sandbox.config(callback_retries=0)
    campaign = make_campaign(make_sender("plivo"), [make_audience(2)], name="Resent")
    campaign_launch(campaign=campaign, check_media=False)
    first, second = Message.objects.filter(campaign=campaign).order_by("id")
    for message in (first, second):
        assert message_send(message_id=message.pk) == "sent"
    report(first, "delivered")
    report(second, "failed", "1000")
    assert campaign_resend_failed(campaign=Campaign.objects.get(pk=campaign.pk)) == 1  # a third message

    (entry,) = overview.campaigns_in_flight()
    assert (entry["total"], entry["final"], entry["done_percent"]) == (2, 1, 50.0)
    row = re.search(rf'<tr data-campaign="{campaign.pk}">.*?</tr>', section(home(client, admin_user), "in-flight"),
                    re.S).group(0)
    assert "50.0% done: 1 of 2 recipients" in row


def test_the_pace_is_the_messages_accepted_per_minute_over_the_last_minutes(make_sender, make_audience,
                                                                             make_campaign):
    sender = make_sender("plivo")
    campaign = make_campaign(sender, [make_audience(1)])
    quiet = make_campaign(sender, [make_audience(1, start=50)], name="Quiet")
    now = datetime(2024, 6, 5, 14, 30, tzinfo=UTC)
    sent(sender, 10, now - timedelta(minutes=2), campaign=campaign)
    sent(sender, 5, now - timedelta(minutes=4, seconds=30), campaign=campaign)
    sent(sender, 100, now - timedelta(minutes=9), campaign=campaign)  # too long ago to count
    pace = campaigns_accepted_per_minute(campaign_ids=[campaign.pk, quiet.pk], now=now)
    assert pace == {campaign.pk: 3.0, quiet.pk: 0.0}  # 15 messages over the last 5 minutes


def test_a_campaign_the_product_paused_is_shown_first_with_its_reason(client, admin_user, make_sender,
                                                                      make_audience, make_campaign, engine):
    campaign = make_campaign(make_sender("plivo"), [make_audience(2)], name="Flash sale")
    by_staff = make_campaign(make_sender("plivo"), [make_audience(2, start=10)], name="Newsletter")
    for c in (campaign, by_staff):
        campaign_launch(campaign=c, check_media=False)
    reason = "Carriers filtered 12% of its messages in the last 10 minutes: review the wording and links."
    assert campaign_pause_for(campaign.pk, reason)

    html = home(client, admin_user)
    paused = section(html, "paused")
    assert html.index('id="overview-paused"') < html.index('id="overview-in-flight"')
    assert "Flash sale" in paused and reason in paused and "Newsletter" not in paused
    assert reverse("admin:campaigns_campaign_change", args=[campaign.pk]) in paused
    in_flight = section(html, "in-flight")
    assert re.search(rf'data-campaign="{campaign.pk}">.*?Paused by the product', in_flight, re.S)
    assert re.search(rf'data-campaign="{by_staff.pk}">.*?Sending', in_flight, re.S)


def test_no_campaign_paused_by_the_product_means_no_such_panel(client, admin_user):
    html = home(client, admin_user)
    assert section(html, "paused") == ""
    assert "No campaign is sending right now." in section(html, "in-flight")
    assert "No campaign is scheduled." in section(html, "scheduled")


def test_scheduled_campaigns_come_soonest_first_with_their_time_and_recipients(client, admin_user, make_sender,
                                                                              make_audience, make_campaign):
    sender = make_sender("plivo")
    later = make_campaign(sender, [make_audience(3)], name="Later")
    sooner = make_campaign(sender, [make_audience(5, start=10), make_audience(2, start=20)], name="Sooner")
    at = datetime(2031, 3, 4, 15, 0, tzinfo=UTC)
    campaign_schedule(campaign=later, at=at + timedelta(days=1))
    campaign_schedule(campaign=sooner, at=at)

    panel = section(home(client, admin_user, tz="America/New_York"), "scheduled")
    assert panel.index("Sooner") < panel.index("Later")
    row = re.search(rf'<tr data-campaign="{sooner.pk}">.*?</tr>', panel, re.S).group(0)
    assert "Tue 4 Mar 10:00" in row  # 15:00 UTC, in the staff member's timezone
    assert '<td class="overview-number">7</td>' in row
    assert reverse("admin:campaigns_campaign_change", args=[sooner.pk]) in row


def test_recent_failures_are_counted_by_cause_for_campaigns_launched_this_week(client, admin_user, make_sender,
                                                                              make_audience, make_campaign):
    sender = make_sender("plivo")
    recent = make_campaign(sender, [make_audience(1)], name="Recent", status="completed",
                           launched_at=timezone.now() - timedelta(days=2))
    other = make_campaign(sender, [make_audience(1, start=10)], name="Other", status="sending",
                          launched_at=timezone.now() - timedelta(hours=3))
    old = make_campaign(sender, [make_audience(1, start=20)], name="Old", status="completed",
                        launched_at=timezone.now() - timedelta(days=9))
    now = timezone.now()
    sent(sender, 6, now, outcome=S.UNDELIVERED, cause="carrier_filtered", campaign=recent)
    sent(sender, 2, now, outcome=S.FAILED, cause="carrier_filtered", campaign=other)
    sent(sender, 3, now, outcome=S.FAILED, cause="invalid_number", campaign=other)
    sent(sender, 50, now, outcome=S.FAILED, cause="account", campaign=old)

    rows = overview.failures_recent()
    assert [(r["cause"].code, r["count"]) for r in rows] == [("carrier_filtered", 8), ("invalid_number", 3)]
    assert [(hit["campaign"].name, hit["count"]) for hit in rows[0]["campaigns"]] == [("Recent", 6), ("Other", 2)]

    panel = section(home(client, admin_user), "failures")
    assert "launched in the last 7 days" in panel
    assert "Carrier filtered" in panel and "Invalid number" in panel and "Old" not in panel
    assert reverse("admin:campaigns_campaign_change", args=[recent.pk]) in panel


def test_no_recent_failure_is_said_plainly(client, admin_user):
    assert "No message of these campaigns has failed." in section(home(client, admin_user), "failures")


# ---- volume per provider ----------------------------------------------------------------------------------


def test_volume_per_provider_today_and_this_week_begin_in_the_staff_members_timezone(make_sender):
    plivo, bandwidth = make_sender("plivo"), make_sender("bandwidth")
    # Wednesday 5 June 2024, 10:30 in New York (14:30 UTC); the week began on Monday 3 June, 00:00 New York.
    now = datetime(2024, 6, 5, 10, 30, tzinfo=NEW_YORK)
    sent(plivo, 4, datetime(2024, 6, 5, 9, 10, tzinfo=NEW_YORK), outcome=S.DELIVERED)
    sent(plivo, 1, datetime(2024, 6, 5, 9, 20, tzinfo=NEW_YORK), outcome=S.FAILED, cause="invalid_number")
    sent(plivo, 7, datetime(2024, 6, 4, 23, 30, tzinfo=NEW_YORK), outcome=S.DELIVERED)  # Wed 03:30 UTC: not today
    sent(plivo, 2, datetime(2024, 6, 3, 0, 30, tzinfo=NEW_YORK), outcome=S.UNDELIVERED)  # Monday: this week
    sent(plivo, 100, datetime(2024, 6, 2, 23, 0, tzinfo=NEW_YORK), outcome=S.DELIVERED)  # Sunday: last week
    sent(bandwidth, 3, datetime(2024, 6, 4, 12, 0, tzinfo=NEW_YORK))  # accepted, no outcome yet
    sent(plivo, 9, datetime(2024, 6, 5, 11, 0, tzinfo=NEW_YORK), outcome=S.DELIVERED)  # after "now"

    with timezone.override(NEW_YORK):
        rows = overview.providers_volume(now=now)
    assert [r["provider_name"] for r in rows] == ["Bandwidth", "Plivo"]
    (bw_today, bw_week), (pl_today, pl_week) = [[figures for _period, figures in r["periods"]] for r in rows]
    figures = ("sent", "delivered", "undelivered", "failed", "delivery_rate")
    assert bw_today is None
    assert [bw_week[f] for f in figures] == [3, 0, 0, 0, None]
    assert [pl_today[f] for f in figures] == [5, 4, 0, 1, 80.0]
    assert [pl_week[f] for f in figures] == [14, 11, 2, 1, 78.6]

    # The same moment in UTC: Tuesday 23:30 New York is already Wednesday, and Sunday 23:00 is Monday.
    with timezone.override(UTC):
        (_bw, (pl_today, pl_week)) = [[f for _p, f in r["periods"]] for r in overview.providers_volume(now=now)]
    assert pl_today["sent"] == 12 and pl_week["sent"] == 114


def test_the_home_shows_each_providers_volume_in_the_staff_members_timezone(client, admin_user, make_sender):
    plivo = make_sender("plivo")
    now = timezone.now()
    sent(plivo, 3, now, outcome=S.DELIVERED)
    sent(plivo, 1, now, outcome=S.UNDELIVERED, cause="carrier_filtered")
    panel = section(home(client, admin_user, tz="Asia/Tokyo"), "volume")
    body = re.search(r'<tbody data-provider="plivo">.*?</tbody>', panel, re.S).group(0)
    today, week = re.findall(r'<tr data-period="(?:today|week)">.*?</tr>', body, re.S)
    for row in (today, week):
        assert re.search(r'data-figure="sent">4<', row) and re.search(r'data-figure="delivered">3<', row)
        assert re.search(r'data-figure="undelivered">1<', row) and re.search(r'data-figure="rate">75.0%<', row)
    assert reverse("admin:messaging_sender_changelist") + "?provider=plivo" in body
    assert "in your timezone" in panel


def test_no_volume_this_week_is_said_plainly(client, admin_user):
    assert "No message has been sent this week." in section(home(client, admin_user), "volume")


# ---- senders that need attention ------------------------------------------------------------------------


def attention(sender) -> dict[str, dict]:
    for entry in senders_attention():
        if entry["sender"].pk == sender.pk:
            return {problem["kind"]: problem for problem in entry["problems"]}
    return {}


def test_a_sender_whose_circuit_is_open_needs_attention_until_it_closes(make_sender):
    sender = make_sender("plivo")
    circuit_open_now(sender.pk, reason="401 from the provider: invalid auth ID or token")
    problem = attention(sender)["circuit_open"]
    assert "invalid auth ID or token" in problem["detail"] and problem["until"] > timezone.now()
    assert attention(sender) and not [e for e in senders_attention(now=problem["until"] + timedelta(seconds=1))
                                      if e["sender"].pk == sender.pk]


def test_a_sender_whose_credentials_cannot_be_used_needs_attention(make_sender):
    sender = make_sender("plivo", options={"callback_password": "kept-in-the-wrong-place"})
    assert "Callback password field" in attention(sender)["credentials"]["detail"]
    assert "kept-in-the-wrong-place" not in str(senders_attention())


def test_a_sender_without_the_callback_password_its_provider_needs_needs_attention(make_sender):
    sender = make_sender("bandwidth")
    assert attention(sender) == {}
    Sender.objects.filter(pk=sender.pk).update(callback_password="")  # cleared on its page
    assert set(attention(sender)) == {"callbacks_unprotected"}
    Sender.objects.filter(pk=sender.pk).update(is_active=False)  # not in use: nothing to fix now
    assert attention(sender) == {}


def test_callbacks_refused_in_the_last_day_need_attention_with_the_most_frequent_reason(make_sender):
    sender = make_sender("plivo")
    now = timezone.now()
    callback_tally(sender_id=sender.pk, accepted=False, reason="old refusal", at=now - timedelta(hours=30))
    for _ in range(5):
        callback_tally(sender_id=sender.pk, accepted=True, at=now)
    assert attention(sender) == {}
    for _ in range(3):
        callback_tally(sender_id=sender.pk, accepted=False, reason="403 signature refused", at=now)
    callback_tally(sender_id=sender.pk, accepted=False, reason="400 unreadable body", at=now - timedelta(hours=2))
    problem = attention(sender)["callbacks_refused"]
    assert problem["title"] == "4 callbacks refused in the last 24 hours"
    assert problem["detail"] == "Most often: 403 signature refused (3)."
    assert abs((problem["last_at"] - now).total_seconds()) < 1


def test_a_sender_slowed_down_after_429s_needs_attention_until_its_pace_is_back(make_sender, engine):
    sender = make_sender("plivo", mps=40.0)
    pacing.slow_down(sender.pk)
    problem = attention(sender)["pace_reduced"]
    assert problem["title"] == "Sending slower: 50% of its pace"
    assert "20 messages per second instead of 40" in problem["detail"]
    for _ in range(20):
        pacing.speed_up(sender.pk)
    assert "pace_reduced" not in attention(sender)


def test_the_home_lists_each_sender_to_fix_with_a_link_to_its_page(client, admin_user, make_sender):
    healthy, broken = make_sender("plivo", name="Healthy line"), make_sender("plivo", name="Broken line")
    assert "Nothing needs attention" in section(home(client, admin_user), "attention")
    circuit_open_now(broken.pk, reason="account suspended")
    panel = section(home(client, admin_user), "attention")
    assert "Broken line" in panel and "Healthy line" not in panel
    assert "Sending stopped for now" in panel and "account suspended" in panel
    assert reverse("admin:messaging_sender_change", args=[broken.pk]) in panel
    assert healthy.pk != broken.pk


# ---- who sees what ----------------------------------------------------------------------------------------


PANELS = ("attention", "in-flight", "scheduled", "volume", "failures")


def test_a_viewer_sees_every_panel(client, roles):
    html = home(client, roles.user("Viewer"))
    assert all(section(html, panel) for panel in PANELS)


def test_staff_without_view_permissions_see_the_plain_home(client, roles):
    html = home(client, roles.user(None))
    assert not any(section(html, panel) for panel in PANELS)
    assert 'class="overview"' not in html and "overview.css" not in html
    assert "Campaign messaging" in html


def test_each_panel_needs_the_permission_to_view_what_it_links_to(client, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("camp", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_campaign", content_type__app_label="campaigns"))
    html = home(client, user)
    assert section(html, "in-flight") and section(html, "scheduled") and section(html, "failures")
    assert not section(html, "attention") and not section(html, "volume")

    user = django_user_model.objects.create_user("send", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_sender", content_type__app_label="messaging"))
    html = home(client, user)
    assert section(html, "attention") and section(html, "volume")
    assert not section(html, "in-flight") and not section(html, "scheduled") and not section(html, "failures")


# ---- what it costs ----------------------------------------------------------------------------------------


def test_the_home_never_reads_the_message_table(client, admin_user, make_sender, make_audience, make_campaign,
                                                engine):
    sender = make_sender("plivo")
    campaign = make_campaign(sender, [make_audience(5)])
    campaign_launch(campaign=campaign, check_media=False)
    campaign_schedule(campaign=make_campaign(sender, [make_audience(2, start=40)], name="Next"),
                      at=timezone.now() + timedelta(days=1))
    sent(sender, 2, timezone.now(), outcome=S.FAILED, cause="invalid_number", campaign=campaign)
    client.force_login(admin_user)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(HOME).status_code == 200
    table = Message._meta.db_table
    assert not [q["sql"] for q in queries if re.search(rf'\b{table}\b(?!_)', q["sql"].replace('"', ""))]
    assert Campaign.objects.filter(status="sending").exists()
