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
