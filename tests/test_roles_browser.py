"""The roles in a real browser: a Viewer sees a campaign without its controls and is refused its confirmation
page; a Campaign manager launches it; an Administrator finds the launch, by whom, in the audit log and in the
campaign's History."""

from __future__ import annotations

import os

import pytest

from campaigns.roles import ADMINISTRATOR, CAMPAIGN_MANAGER, VIEWER

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-password-1"
SHOTS = os.environ.get("SCREENSHOT_DIR", "")


def _log_in(browser, live_server, username: str):
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
    return page


def _shot(page, name: str, tmp_path) -> None:
    page.screenshot(path=os.path.join(SHOTS or str(tmp_path), f"{name}.png"), full_page=True)


def test_each_role_sees_and_does_what_it_may(browser, live_server, roles, make_sender, make_audience, make_campaign,
                                            engine, example_prices, tmp_path):
    from django.contrib.auth.models import Group, User

    from campaigns.models import Campaign

    for role, username in ((VIEWER, "vera"), (CAMPAIGN_MANAGER, "manon"), (ADMINISTRATOR, "adam")):
        user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
        user.groups.add(Group.objects.get(name=role))
    campaign = make_campaign(make_sender("plivo"), [make_audience(5)], name="Spring sale")
    change_url = f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/"

    viewer = _log_in(browser, live_server, "vera")
    viewer.goto(change_url)
    viewer.wait_for_selector("#campaign-panel")
    for control in ("#launch-campaign", "#cancel-campaign", ".test-send", "input[name=_save]"):
        assert viewer.locator(control).count() == 0, control
    _shot(viewer, "campaign-as-viewer", tmp_path)
    response = viewer.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/confirm/launch/")
    assert response.status == 403
    viewer.goto(f"{live_server.url}/admin/")
    assert "Audit log" not in viewer.content()

    manager = _log_in(browser, live_server, "manon")
    manager.goto(change_url)
    manager.click("#launch-campaign")
    manager.wait_for_selector("text=Launch now: Spring sale")
    _shot(manager, "confirm-as-manager", tmp_path)
    manager.click("#confirm-launch")
    manager.wait_for_selector(".messagelist .success")
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENDING

    administrator = _log_in(browser, live_server, "adam")
    administrator.goto(f"{live_server.url}/admin/messaging/auditentry/")
    row = administrator.locator("#result_list tbody tr").filter(has_text="Spring sale").first
    assert "Launched: 5 recipients" in row.inner_text()
    assert "manon" in row.inner_text()
    _shot(administrator, "audit-log", tmp_path)
    administrator.goto(f"{change_url.removesuffix('change/')}history/")
    assert "Launched: 5 recipients" in administrator.locator("#change-history").inner_text()
    _shot(administrator, "campaign-history", tmp_path)
