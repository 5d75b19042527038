"""The admin home and the main lists in a real browser on a 1366x900 screen: an Administrator sees the overview
(a campaign sending with its progress, one the product paused with why, one scheduled, volume per provider,
failures by cause, a sender to fix) and follows its links; the home and every main list fit the screen's width
without scrolling sideways."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.roles import ADMINISTRATOR

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-password-1"
SHOTS = os.environ.get("SCREENSHOT_DIR", "")
WIDTH, HEIGHT = 1366, 900
LISTS = [
    "campaigns/campaign", "campaigns/contact", "campaigns/contactlist", "campaigns/importjob", "campaigns/price",
    "messaging/sender", "messaging/message", "messaging/reply", "messaging/messageevent",
    "messaging/consentevent", "messaging/suppression", "messaging/auditentry",
]
# Widths that do not fit: the page's own, and every element that scrolls sideways (the lists' tables).
OVERFLOW = """() => {
  const out = [];
  if (document.documentElement.scrollWidth > window.innerWidth) out.push(["page", document.documentElement.scrollWidth]);
  for (const el of document.querySelectorAll("#content *")) {
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== "visible"
        && getComputedStyle(el).overflowX !== "hidden" && el.clientWidth > 0)
      out.push([el.tagName + (el.id ? "#" + el.id : "") + "." + el.className, el.scrollWidth, el.clientWidth]);
  }
  return out;
}"""


def report(message, status: str, code: str = "") -> None:
    from messaging.models import Message
    from messaging.providers.base import StatusEvent
    from messaging.services import events_apply

    message = Message.objects.get(pk=message.pk)
    events_apply(sender=message.sender, events=[StatusEvent(
        provider_message_id=message.provider_message_id, status=status, raw_status=status,
        occurred_at=timezone.now(), error_code=code, event_id=f"browser-{message.pk}-{status}")])


def _shot(page, name: str, tmp_path) -> None:
    page.screenshot(path=os.path.join(SHOTS or str(tmp_path), f"{name}.png"), full_page=True)


def test_the_overview_and_the_main_lists_fit_a_laptop_screen(browser, live_server, roles, make_sender, make_audience,
                                                            make_campaign, engine, sandbox, tmp_path):
    from django.contrib.auth.models import Group, User

    from campaigns.services import campaign_launch, campaign_pause_for, campaign_schedule
    from messaging.models import Message, Sender
    from messaging.services import message_send
    from messaging.services.circuit import circuit_open_now
    from messaging.services.tallies import callback_tally, outcomes_tally

    User.objects.create_user("adam", password=PASSWORD, is_staff=True).groups.add(
        Group.objects.get(name=ADMINISTRATOR))
    main = make_sender("plivo", name="Main line (Plivo, +1 415 555 0100)")
    other = make_sender("bandwidth", name="Bandwidth short code 55512")
    sending = make_campaign(main, [make_audience(6)], name="Spring sale: 20% off everything this weekend only")
    paused = make_campaign(other, [make_audience(4, start=100)], name="Store opening in Springfield")
    for campaign in (sending, paused):
        campaign_launch(campaign=campaign, check_media=False)
    messages = list(Message.objects.filter(campaign=sending).order_by("id"))
    for message in messages[:4]:
        message_send(message_id=message.pk)
    report(messages[0], "delivered")
    report(messages[1], "undelivered", "300")
    report(messages[2], "failed", "1000")
    now = timezone.now()
    outcomes_tally(campaign_id=None, sender_id=other.pk, old="sending", new="delivered", n=40, at=now)
    reason = "Carriers filtered 12% of its last 200 messages: review the wording and links, then resume."
    campaign_pause_for(paused.pk, reason)
    campaign_schedule(campaign=make_campaign(main, [make_audience(3, start=200)], name="Summer newsletter"),
                      at=now + timedelta(days=2))
    circuit_open_now(other.pk, reason="401 from the provider: the account's credentials were refused")
    Sender.objects.filter(pk=other.pk).update(callback_password="")
    for _ in range(3):
        callback_tally(sender_id=main.pk, accepted=False, reason="403 signature refused: X-Plivo-Signature-V3")

    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "adam")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#overview-in-flight")
    assert page.title() == "Overview | Campaign messaging"
    assert page.locator("#site-name").inner_text() == "Campaign messaging"
    assert page.get_by_text("View site").count() == 0
    assert reason in page.locator("#overview-paused").inner_text()
    row = page.locator(f'#overview-in-flight tr[data-campaign="{sending.pk}"]')
    assert "Sending" in row.inner_text() and "50.0% done: 3 of 6 recipients" in row.inner_text()
    assert "Summer newsletter" in page.locator("#overview-scheduled").inner_text()
    attention = page.locator("#overview-attention").inner_text()
    assert "Sending stopped for now" in attention and "Delivery reports and replies refused" in attention
    assert "3 callbacks refused" in attention
    failures = page.locator("#overview-failures").inner_text()
    from messaging.selectors import campaign_failure_causes

    causes = campaign_failure_causes(campaign_id=sending.pk)
    assert sum(c["count"] for c in causes) == 2 and all(c["cause"].label in failures for c in causes)
    assert "Spring sale: 20% off everything this weekend only (" in failures
    assert page.locator('#overview-volume tbody[data-provider="bandwidth"] tr[data-period="today"] '
                        '[data-figure="delivered"]').inner_text() == "40"
    assert page.evaluate(OVERFLOW) == []
    _shot(page, "overview", tmp_path)

    page.locator(f'#overview-attention tr[data-sender="{other.pk}"] th a').click()
    page.wait_for_url(f"**/admin/messaging/sender/{other.pk}/change/")

    too_wide = {}
    for name in LISTS:
        page.goto(f"{live_server.url}/admin/{name}/")
        page.wait_for_selector("#content-main")
        found = page.evaluate(OVERFLOW)
        if found:
            too_wide[name] = found
        _shot(page, "list-" + name.replace("/", "-"), tmp_path)
    assert too_wide == {}
