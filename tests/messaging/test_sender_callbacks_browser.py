"""The sender pages in a real browser: a sender whose callbacks are unprotected is flagged in the list and on its
page, and the webhook URLs carry the callback password only for staff who may change the sender."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from messaging.models import Sender

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-password-1"


def _log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def test_unprotected_senders_are_flagged_and_urls_carry_the_password_for_changers_only(
    browser, live_server, make_sender, django_user_model, settings, tmp_path
):
    settings.PUBLIC_BASE_URL = "https://hooks.example"
    old = make_sender("bandwidth", name="Old Bandwidth line", options={"callback_username": "bw"})
    Sender.objects.filter(pk=old.pk).update(callback_password="")  # made before senders got one
    new = make_sender("fonedynamics", name="New Fone line", options={"callback_username": "fd"})
    make_sender("plivo", name="Plivo line")
    django_user_model.objects.create_superuser("staff", "staff@example.com", PASSWORD)
    viewer = django_user_model.objects.create_user("viewer", password=PASSWORD, is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_sender"))

    page = browser.new_page()
    _log_in(page, live_server, "staff")
    page.goto(f"{live_server.url}/admin/messaging/sender/")
    flags = {row.locator("th").inner_text(): row.locator("td.field-callbacks").inner_text().strip()
             for row in page.locator("#result_list tbody tr").all()}
    assert flags["Old Bandwidth line"] == "unprotected: set a callback password"
    assert flags["New Fone line"] == "protected by the callback password"
    assert flags["Plivo line"] == "verified with the provider's signature or secret"
    assert new.callback_password not in page.content()
    page.screenshot(path=str(tmp_path / "senders.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/messaging/sender/{old.pk}/change/")
    assert "Callbacks unprotected" in page.locator(".messagelist .warning").inner_text()
    assert "Callbacks unprotected" in page.locator(".field-webhook_urls_to_paste").inner_text()
    page.screenshot(path=str(tmp_path / "sender-unprotected.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/messaging/sender/{new.pk}/change/")
    urls = page.locator(".field-webhook_urls_to_paste code").all_inner_texts()
    assert urls == [f"https://fd:{new.callback_password}@hooks.example/webhooks/fonedynamics/{new.uuid}/status/",
                    f"https://fd:{new.callback_password}@hooks.example/webhooks/fonedynamics/{new.uuid}/inbound/"]
    assert not page.locator(".messagelist").count()
    page.screenshot(path=str(tmp_path / "sender-protected.png"), full_page=True)

    viewer_page = browser.new_page()
    _log_in(viewer_page, live_server, "viewer")
    viewer_page.goto(f"{live_server.url}/admin/messaging/sender/{new.pk}/change/")
    urls = viewer_page.locator(".field-webhook_urls code").all_inner_texts()
    assert urls == [f"https://fd:<password>@hooks.example/webhooks/fonedynamics/{new.uuid}/status/",
                    f"https://fd:<password>@hooks.example/webhooks/fonedynamics/{new.uuid}/inbound/"]
    assert new.callback_password not in viewer_page.content()
    viewer_page.screenshot(path=str(tmp_path / "sender-viewer.png"), full_page=True)
