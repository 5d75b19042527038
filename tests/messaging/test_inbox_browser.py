"""The inbox in a real browser: a campaign goes out through the emulator, a recipient answers through it, a
Campaign manager finds the unread reply with its contact and campaign, reads the conversation, answers (the
answer reaches the emulator through the same sender), and after the recipient's STOP the page refuses to answer."""

from __future__ import annotations

import os

import pytest

from campaigns.models import Campaign
from campaigns.roles import CAMPAIGN_MANAGER
from campaigns.services import campaign_launch
from messaging.models import Message
from tests.support import wait_until
from tests.test_replies_end_to_end import answer, sent_to

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-password-1"
SHOTS = os.environ.get("SCREENSHOT_DIR", "")


def _shot(page, name: str, tmp_path) -> None:
    page.screenshot(path=os.path.join(SHOTS or str(tmp_path), f"{name}.png"), full_page=True)


def test_a_manager_reads_and_answers_a_reply(browser, workers, live_server, sandbox, roles, make_sender,
                                             make_audience, make_campaign, tmp_path):
    from django.contrib.auth.models import Group, User

    sandbox.config(delivered=1.0, undelivered=0.0, failed=0.0)
    user = User.objects.create_user("manon", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=CAMPAIGN_MANAGER))
    sender = make_sender("plivo", name="Main line", mps=50)
    campaign = make_campaign(sender, [make_audience(3)], name="Spring sale",
                             body="Hi {{ first_name }}, 20% off everything this weekend.")
    workers.start(concurrency=2, beat=True)
    campaign_launch(campaign=campaign, check_media=False)
    wait_until(lambda: Campaign.objects.get(pk=campaign.pk).status == "completed", timeout=60, interval=0.5,
               message="the campaign to complete")
    phone = Message.objects.filter(campaign=campaign).order_by("id").first().to
    answer(sandbox, sender, phone, "Is it on Sunday too?")
    wait_until(lambda: Message.objects.filter(direction="inbound").exists(), timeout=30, interval=0.2,
               message="the reply to arrive")

    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "manon")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
    page.click("text=Inbox (replies)")
    page.wait_for_selector("#result_list")
    row = page.locator("#result_list tbody tr").first
    assert "Is it on Sunday too?" in row.inner_text()
    assert "Person0" in row.inner_text() and "Spring sale" in row.inner_text() and "Main line" in row.inner_text()
    assert row.locator("a.reply-unread").count() == 1
    _shot(page, "inbox", tmp_path)

    row.locator("a.reply-unread").click()
    page.wait_for_selector("#conversation")
    bubbles = page.locator("#conversation li")
    assert bubbles.count() == 2
    assert bubbles.nth(0).get_attribute("data-direction") == "outbound"
    assert "20% off everything" in bubbles.nth(0).inner_text()
    assert "Is it on Sunday too?" in bubbles.nth(1).inner_text()
    page.fill("#id_body", "Yes, until Sunday 6 pm.")
    page.click("#send-answer")
    page.wait_for_selector("text=Answer queued")
    assert page.locator("#conversation li").count() == 3
    wait_until(lambda: "Yes, until Sunday 6 pm." in sent_to(sandbox, phone), timeout=30, interval=0.2,
               message="the answer to reach the provider")
    answer_row = Message.objects.get(kind="answer")
    assert (answer_row.sender_id, answer_row.to) == (sender.pk, phone)
    assert Message.objects.get(direction="inbound").read_at is not None
    _shot(page, "conversation", tmp_path)

    answer(sandbox, sender, phone, "STOP")
    wait_until(lambda: Message.objects.filter(direction="inbound").count() == 2, timeout=30, interval=0.2,
               message="the STOP to arrive")
    page.reload()
    page.wait_for_selector("#opted-out-banner")
    assert page.locator("#send-answer").is_disabled()
    _shot(page, "conversation-opted-out", tmp_path)
