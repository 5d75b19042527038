"""Staff path in a real browser: log in to the admin, launch a campaign, watch recipients reach delivered."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign
from messaging.models import Message

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

def test_staff_launches_a_campaign_and_sees_it_delivered(
    browser, workers, live_server, sandbox, make_sender, make_audience, make_campaign, django_user_model, tmp_path
):
    sandbox.config(delivered=1.0, undelivered=0.0, failed=0.0)
    django_user_model.objects.create_superuser("staff", "staff@example.com", "a-long-password-1")
    sender = make_sender("plivo")
    campaign = make_campaign(sender, [make_audience(15)], body="Hi {{ first_name }}", name="Browser campaign")
    workers.start(beat=True)

    page = browser.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "a-long-password-1")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
    assert page.locator("#campaign-status").inner_text() == "Draft"
    page.click("#launch-campaign")
    assert page.locator('[data-figure="recipients"]').inner_text() == "15"
    page.click("#confirm-launch")
    assert "Launched to 15 recipients" in page.locator(".messagelist").inner_text()

    # The page polls its stats endpoint and reloads when the campaign's status changes.
    try:
        page.wait_for_function(
            "() => document.querySelector('[data-count=\"delivered\"]')?.textContent.trim() === '15'", timeout=60_000
        )
        page.wait_for_function(
            "() => document.querySelector('#campaign-status')?.textContent.trim() === 'Completed'", timeout=30_000
        )
    except Exception:
        page.screenshot(path=str(tmp_path / "campaign.png"), full_page=True)
        print(workers.logs())
        raise
    page.reload()
    rows = page.locator("#campaign-recipients tbody tr[data-status='delivered']")
    assert rows.count() == 15
    page.screenshot(path=str(tmp_path / "campaign.png"), full_page=True)
    assert Campaign.objects.get(pk=campaign.pk).status == "completed"
    assert Message.objects.filter(campaign=campaign, status="delivered").count() == 15
    assert sandbox.ledger()["duplicates"] == 0

    # The messages list names each message's campaign (from its dispatch record) and links to it.
    page.goto(f"{live_server.url}/admin/messaging/message/?campaign__exact={campaign.pk}")
    names = page.locator("td.field-campaign_name a")
    assert names.count() == 15 and set(names.all_inner_texts()) == {"Browser campaign"}
    page.screenshot(path=str(tmp_path / "messages.png"), full_page=True)
    message = Message.objects.filter(campaign=campaign).first()
    page.goto(f"{live_server.url}/admin/messaging/message/{message.pk}/change/")
    assert "Browser campaign" in page.locator(".field-campaign_name").inner_text()
    assert f"contact #{message.contact_id}" in page.locator(".field-contact_link").inner_text()
    page.screenshot(path=str(tmp_path / "message.png"), full_page=True)
    page.click(".field-campaign_name a")
    assert page.locator("#campaign-status").inner_text() == "Completed"
