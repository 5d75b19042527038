"""Composing in a real browser: the counter, the highlighted characters, the one-click replacement and the
preview follow what staff type; saving with a time goes through the confirmation, whose figures match the
database; the schedule is read in the staff member's timezone; launching goes through the confirmation too."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigns import preflight
from campaigns.models import Campaign, Contact, ContactList, ListMembership
from messaging.encoding import segment_info
from messaging.models import Message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-password-1"


def people(contact_list, rows):
    contacts = [Contact.objects.create(phone=phone, first_name=name) for phone, name in rows]
    ListMembership.objects.bulk_create([ListMembership(contact=c, contact_list=contact_list) for c in contacts])


def count(page) -> dict:
    return page.locator("#compose-count").evaluate("el => ({...el.dataset})")


def test_staff_compose_confirm_schedule_and_launch(browser, live_server, engine, sandbox, make_sender,
                                                  django_user_model, tmp_path, example_prices):
    django_user_model.objects.create_superuser("staff", "staff@example.com", PASSWORD)
    sender = make_sender("plivo", name="Main line")
    customers = ContactList.objects.create(name="Customers")
    people(customers, [("+12125550101", "Ann"), ("+12125550102", "Bo"), ("+12125550103", ""),
                       ("+12125550104", "Cy"), ("+12125550105", "Di")])
    Contact.objects.filter(phone="+12125550105").update(opted_out=True)

    context = browser.new_context(timezone_id="America/New_York")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "staff")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.goto(f"{live_server.url}/admin/campaigns/campaign/add/")
        assert "America/New_York" in page.locator("#staff-timezone").inner_text()
        page.fill("#id_name", "Browser compose")
        page.select_option("#id_sender", str(sender.pk))
        page.select_option("#id_lists_from", str(customers.pk))
        page.click("#id_lists_add")

        # An emoji and curly quotes: UCS-2, highlighted, and the preview follows.
        page.fill("#id_body", "Hi {{ first_name }}, our \u201cbig\u201d sale \u2014 50% off \U0001F600")
        text = page.input_value("#id_body")
        expected = segment_info(text)
        assert count(page) == {"encoding": "UCS-2", "segments": str(expected.segments), "units": str(expected.units)}
        marks = page.locator("#compose-highlight mark").all_inner_texts()
        assert set(marks) == {"\u201c", "\u201d", "\u2014", "\U0001F600"}
        page.wait_for_selector(".compose-sample")
        samples = page.locator(".compose-sample").all_inner_texts()
        assert any("Hi Ann, our" in s for s in samples)
        assert any("(no first_name)" in s for s in samples)
        assert "first_name is empty for 1 recipient" in page.locator("#compose-preview").inner_text()

        # One click replaces the look-alikes; the emoji stays (it has no GSM-7 look-alike).
        page.click("#compose-replace")
        assert page.input_value("#id_body") == 'Hi {{ first_name }}, our "big" sale - 50% off \U0001F600'
        assert page.locator("#compose-highlight mark").all_inner_texts() == ["\U0001F600"]
        assert count(page)["encoding"] == "UCS-2"
        page.fill("#id_body", 'Hi {{ first_name|default:"there" }}, our "big" sale - 50% off')
        assert count(page)["encoding"] == "GSM-7" and count(page)["segments"] == "1"
        assert page.locator("#compose-ucs2").is_hidden()
        page.wait_for_function("() => document.querySelector('#compose-preview').innerText.includes('Hi there')")
        page.screenshot(path=str(tmp_path / "compose.png"), full_page=True)

        # A time, entered in New York time: the confirmation comes first.
        local = (datetime.now(ZoneInfo("America/New_York")) + timedelta(days=2)).replace(
            hour=10, minute=30, second=0, microsecond=0)
        page.fill("#id_scheduled_at_0", local.strftime("%Y-%m-%d"))
        page.fill("#id_scheduled_at_1", local.strftime("%H:%M:%S"))
        page.click("input[name=_save]")
        campaign = Campaign.objects.get(name="Browser compose")
        assert page.url.endswith(f"/admin/campaigns/campaign/{campaign.pk}/confirm/schedule/")
        assert campaign.status == "draft"
        assert campaign.scheduled_at == local.astimezone(ZoneInfo("UTC"))
        figures = preflight.campaign_preflight(campaign=campaign, action="schedule")
        shown = {name: page.locator(f'[data-figure="{name}"]').inner_text()
                 for name in ("recipients", "opted_out", "duplicates", "segments")}
        assert shown == {"recipients": "4", "opted_out": "1", "duplicates": "0", "segments": str(figures.segments)}
        assert "uses example prices" in page.locator(".preflight-table").inner_text()
        assert page.locator(".sms-preview").first.inner_text() == 'Hi Ann, our "big" sale - 50% off'
        page.screenshot(path=str(tmp_path / "confirm-schedule.png"), full_page=True)
        page.click("#confirm-schedule")
        assert "Scheduled for" in page.locator(".messagelist").inner_text()
        assert "(America/New_York)" in page.locator(".messagelist").inner_text()
        campaign.refresh_from_db()
        assert campaign.status == "scheduled"

        # Launch now, from the campaign page, through its confirmation.
        page.click("#launch-campaign")
        assert page.locator('[data-figure="recipients"]').inner_text() == "4"
        page.screenshot(path=str(tmp_path / "confirm-launch.png"), full_page=True)
        page.click("#confirm-launch")
        assert "Launched to 4 recipients" in page.locator(".messagelist").inner_text()
        assert Campaign.objects.get(pk=campaign.pk).status == "sending"
        assert Message.objects.filter(campaign=campaign).count() == 4
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        raise
    finally:
        context.close()
