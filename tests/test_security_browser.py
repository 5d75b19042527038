"""The product's pages in a real browser under their content security policy, and the login throttle as staff
meet it.

Every page is walked with a listener for the browser's ``securitypolicyviolation`` events and its console
("Refused to ..."): a script, style, image, font, fetch or form the policy refuses fails the test, with the page
and what was refused. The pages are driven as staff use them (the compose counter and preview, the list
widgets, the calendar, the cancel confirmation), so that scripts adding content later are checked too."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.urls import reverse

from campaigns.models import Campaign, Contact
from campaigns.services import campaign_launch
from messaging.models import Message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-password-1"

# Installed before any of the page's own scripts run (and not subject to its policy).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.effectiveDirective} refused ${e.blockedURI || "inline"}` +
                           (e.sourceFile ? ` (${e.sourceFile}:${e.lineNumber})` : ""));
});
"""


class Watch:
    """What the policy refused on each page, from the events and the console."""

    def __init__(self, page):
        self.page = page
        self.refused: list[str] = []
        self.console: list[str] = []
        self.visited: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._console)

    def _console(self, message):
        text = message.text
        if "Content Security Policy" in text or text.startswith("Refused to"):
            self.console.append(f"{self.page.url}: {text}")

    def collect(self) -> None:
        """Take the violations recorded on the page shown now (call before leaving it)."""
        found = self.page.evaluate("() => window.__violations || []")
        self.refused += [f"{self.page.url}: {v}" for v in found]

    def visit(self, url: str) -> None:
        response = self.page.goto(url)
        assert response is not None and response.status < 500, f"{url} answered {response and response.status}"
        self.page.wait_for_load_state("load")
        self.visited.append(url)
        self.collect()

    def assert_clean(self) -> None:
        found = list(dict.fromkeys(self.refused + self.console))  # each once, in order
        assert not found, f"{len(found)} refused by the content security policy:\n" + "\n".join(found)


def _log_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")


def test_no_admin_page_breaks_the_content_security_policy(browser, live_server, engine, sandbox, make_sender,
                                                          make_audience, make_campaign, django_user_model,
                                                          example_prices, tmp_path, settings):
    settings.PUBLIC_BASE_URL = live_server.url  # uploaded media served by this server, as in production
    settings.MEDIA_ROOT = tmp_path / "media"
    django_user_model.objects.create_superuser("staff", "staff@example.com", PASSWORD)
    sender = make_sender("plivo", name="Main line")
    customers = make_audience(5, name="Customers")
    draft = make_campaign(sender, [customers], name="Draft campaign", body="Hi {{ first_name }}!")
    sending = make_campaign(sender, [make_audience(3, name="Others", start=100)], name="Sending campaign")
    campaign_launch(campaign=sending)
    assert Message.objects.filter(campaign=sending).count() == 3
    base = live_server.url

    page = browser.new_page()
    watch = Watch(page)
    try:
        # The login page, then every page the admin lists: each model's list and its add page.
        watch.visit(f"{base}/admin/login/")
        _log_in(page, base, "staff", PASSWORD)
        page.wait_for_selector("#user-tools")
        watch.collect()
        watch.visit(f"{base}/admin/")
        for app in admin.site.get_app_list(_request_of(django_user_model)):
            for model in app["models"]:
                for url in (model["admin_url"], model["add_url"]):
                    if url:
                        watch.visit(base + url)
        for listed in ("/admin/campaigns/price/", "/admin/campaigns/campaign/add/", "/admin/messaging/sender/add/",
                       "/admin/messaging/message/", "/admin/axes/accessattempt/"):
            assert base + listed in watch.visited

        # Change pages with content: a sender, a contact, a list, a message.
        watch.visit(base + reverse("admin:messaging_sender_change", args=[sender.pk]))
        watch.visit(base + reverse("admin:campaigns_contactlist_change", args=[customers.pk]))
        watch.visit(base + reverse("admin:campaigns_contact_change", args=[Contact.objects.first().pk]))
        message = Message.objects.filter(campaign=sending).first()
        watch.visit(base + reverse("admin:messaging_message_change", args=[message.pk]))

        # The compose page: the live counter and the preview (a fetch), the list chooser, the calendar.
        watch.visit(base + reverse("admin:campaigns_campaign_change", args=[draft.pk]))
        page.fill("#id_body", "Hi {{ first_name }}, our \u201cbig\u201d sale \U0001F600")
        page.wait_for_selector("#compose-highlight mark")
        page.wait_for_selector(".compose-sample")
        page.select_option("#id_lists_to", str(customers.pk))
        page.click("#id_lists_remove")
        page.select_option("#id_lists_from", str(customers.pk))
        page.click("#id_lists_add")
        page.click("#calendarlink0")  # the date picker and the clock are built by the admin's scripts
        page.wait_for_selector("#calendarbox0", state="visible")
        page.click("#calendarbox0 .calendarnav-next")
        page.click("#clocklink0")
        page.wait_for_selector("#clockbox0", state="visible")
        watch.collect()
        page.screenshot(path=str(tmp_path / "compose.png"), full_page=True)

        # The confirmation before launching, and the page of a campaign that is sending (its counts are polled),
        # whose cancel button asks first.
        watch.visit(base + reverse("campaigns:campaign_confirm", args=[draft.pk, "launch"]))
        assert page.locator('[data-figure="recipients"]').inner_text().strip() == "5"
        watch.visit(base + reverse("admin:campaigns_campaign_change", args=[sending.pk]))
        with page.expect_response(lambda r: "/stats/" in r.url):
            pass
        assert page.locator("#campaign-progress").evaluate("bar => bar.style.width") != ""
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click("#cancel-campaign")
        watch.collect()
        assert Campaign.objects.get(pk=sending.pk).status == "sending"  # dismissed: nothing was canceled

        # A campaign with an uploaded image: its thumbnail loads from this site.
        page.goto(base + reverse("admin:campaigns_campaign_change", args=[draft.pk]))
        page.set_input_files("#id_media_upload", files=[{"name": "photo.png", "mimeType": "image/png",
                                                          "buffer": _png()}])
        page.click("input[name=_continue]")
        page.wait_for_selector("img.media-thumb")
        page.wait_for_function("() => document.querySelector('img.media-thumb').naturalWidth > 0")
        watch.collect()

        # The contact import: the upload page, then the mapping step with the file's preview.
        watch.visit(base + reverse("admin:campaigns_importjob_add"))
        page.set_input_files("#import-upload input[type=file]", files=[{
            "name": "people.csv", "mimeType": "text/csv", "buffer": b"phone,first_name\n+12125550199,Zed\n"}])
        page.check("#import-upload input[name=kind][value=contacts]")
        page.click("#import-upload input[type=submit]")
        page.wait_for_url(re.compile(r"/admin/campaigns/importjob/\d+/mapping/$"))
        watch.collect()
        watch.visit(page.url.replace("/mapping/", "/change/"))
    finally:
        page.screenshot(path=str(tmp_path / "last.png"), full_page=True)
    watch.assert_clean()


def test_a_locked_out_login_is_told_when_to_try_again_and_the_right_password_waits_too(browser, live_server,
                                                                                        django_user_model, tmp_path):
    django_user_model.objects.create_superuser("staff", "staff@example.com", PASSWORD)
    page = browser.new_page()
    watch = Watch(page)
    for n in range(1, 5):
        _log_in(page, live_server.url, "staff", f"wrong-{n}")
        assert "Please enter the correct username and password" in page.locator(".errornote").inner_text()
        watch.collect()
    _log_in(page, live_server.url, "staff", "wrong-5")
    note = page.locator("#login-locked").inner_text()
    assert note == "Too many failed login attempts: this login is locked. Try again in 15 minutes."
    assert page.title().startswith("Too many failed login attempts")
    watch.collect()
    page.screenshot(path=str(tmp_path / "locked.png"), full_page=True)

    page.click("text=Back to the login page")
    page.wait_for_selector("#id_username")
    page.fill("#id_username", "staff")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    assert "Try again in 15 minutes." in page.locator("#login-locked").inner_text()
    assert page.locator("#user-tools").count() == 0
    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url  # not logged in
    watch.collect()
    watch.assert_clean()


def _request_of(django_user_model):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = django_user_model.objects.get(username="staff")
    return request


def _png() -> bytes:
    """A 1x1 PNG image."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x80\x00"))
            + chunk(b"IEND", b""))
