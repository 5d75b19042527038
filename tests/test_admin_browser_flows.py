"""Staff flows in a real browser: a contact import from a messy spreadsheet, and a sender's page and actions."""

from __future__ import annotations

import csv
import io
import re

import pytest

from campaigns.models import Contact, ContactList, ImportJob, ListMembership
from messaging.models import Sender

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-password-1"

# Semicolon-separated with a UTF-8 BOM, as Excel writes it in many locales. Header row, then:
# a national-format US number, an international one, a number with too few digits, the first number again
# in another spelling, and a "Notes" column the import is told to ignore.
MESSY_CSV = (
    "\ufeffPhone;First name;Last name;Company;Notes\r\n"
    "(415) 555-0101;Ann;Lee;Acme;call after 5\r\n"
    "+1 415 555 0102;Bob;Ray;Beta;\r\n"
    "12345;Carl;Bad;Gamma;typo?\r\n"
    "415.555.0101;Ann;Lee-Smith;Acme;same person\r\n"
).encode()


def _log_in(page, live_server, django_user_model):
    django_user_model.objects.create_superuser("staff", "staff@example.com", PASSWORD)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def _messages(page) -> list[tuple[str, str]]:
    """The admin's message list as (level class, text) pairs."""
    items = page.locator(".messagelist li")
    return [(items.nth(i).get_attribute("class") or "", items.nth(i).inner_text()) for i in range(items.count())]


@pytest.mark.worker
def test_staff_imports_a_messy_spreadsheet_and_downloads_the_problem_report(
    browser, workers, live_server, django_user_model, settings, tmp_path
):
    # The web server (this process) and the worker must read and write the same files.
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    workers.start(extra_env={"MEDIA_ROOT": str(media), "DEFAULT_REGION": "US"})
    upload = tmp_path / "messy contacts.csv"
    upload.write_bytes(MESSY_CSV)

    page = browser.new_page(accept_downloads=True)
    _log_in(page, live_server, django_user_model)
    page.goto(f"{live_server.url}/admin/campaigns/contact/")
    page.click("#import-contacts")
    assert page.url.endswith("/admin/campaigns/importjob/add/")

    # Step 1: upload. The file is checked at once (encoding, delimiter, header).
    page.set_input_files("#import-upload input[type=file]", str(upload))
    page.check("#import-upload input[name=kind][value=contacts]")
    page.click("#import-upload input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/campaigns/importjob/\d+/mapping/$"))

    # Step 2: the preview shows the file read correctly (no BOM in the header, semicolons split).
    headers = page.locator("#import-preview thead tr").first.locator("th").all_text_contents()
    assert [h.strip() for h in headers] == ["row", "Phone", "First name", "Last name", "Company", "Notes"]
    preview_rows = page.locator("#import-preview tbody tr")
    assert preview_rows.count() == 4
    assert "(415) 555-0101" in preview_rows.nth(0).inner_text()
    # Columns guessed from their names; the extra one is kept as a custom field unless told otherwise.
    assert page.input_value("#id_col_0") == "phone"
    assert page.input_value("#id_col_1") == "first_name"
    assert page.input_value("#id_col_2") == "last_name"
    assert page.input_value("#id_col_3") == "custom:company"
    assert page.input_value("#id_col_4") == "custom:notes"
    page.select_option("#id_col_4", "")  # ignore the notes
    assert page.input_value("#id_region") == "US"
    page.check("input[name=policy][value=update]")
    page.fill("#id_new_list_name", "Browser import")
    page.screenshot(path=str(tmp_path / "import-mapping.png"), full_page=True)
    # The job's page as first served (it may reload itself at once if the worker is quick).
    with page.expect_response(
        lambda r: re.search(r"/admin/campaigns/importjob/\d+/change/$", r.url) and r.request.resource_type == "document"
    ) as first_page:
        page.click("#start-import")
    assert "Importing messy contacts.csv in the background." in first_page.value.text()
    job = ImportJob.objects.get()

    # The page polls the progress endpoint and reloads once the worker has finished.
    try:
        page.wait_for_function(
            "() => document.querySelector('#import-status')?.textContent.trim() === 'Completed'"
            " && document.querySelector('#import-panel')?.dataset.finished === '1'",
            timeout=60_000,
        )
    except Exception:
        page.screenshot(path=str(tmp_path / "import.png"), full_page=True)
        print(workers.logs())
        raise
    counts = {
        name: page.locator(f'#import-counts [data-count="{name}"]').inner_text().strip()
        for name in ("rows", "created", "updated", "skipped", "invalid", "duplicate")
    }
    assert counts == {"rows": "4", "created": "2", "updated": "0", "skipped": "0", "invalid": "1", "duplicate": "1"}
    assert page.locator("#import-progress").evaluate("bar => bar.style.width") == "100%"
    assert page.locator("#import-error").is_hidden()
    page.screenshot(path=str(tmp_path / "import.png"), full_page=True)

    # The problem report: the invalid row and the merged duplicate, each with its file row number and reason.
    with page.expect_download() as download_info:
        page.click("#import-report")
    download = download_info.value
    assert download.suggested_filename == "messy contacts-problems.csv"
    report = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8-sig").read())))
    assert report[0] == ["row", "problem", "Phone", "First name", "Last name", "Company", "Notes"]
    problems = {row[0]: row for row in report[1:]}
    assert set(problems) == {"4", "5"}
    assert problems["4"][2:4] == ["12345", "Carl"]
    assert "Not imported" in problems["4"][1] and "wrong number of digits" in problems["4"][1]
    assert problems["5"][2] == "415.555.0101"
    assert "Same number (+14155550101) as row 2" in problems["5"][1]

    # The database: two contacts, merged values from the later row, ignored column absent, both in the list.
    job.refresh_from_db()
    assert job.status == ImportJob.Status.COMPLETED
    assert (job.created_count, job.invalid_count, job.duplicate_count) == (2, 1, 1)
    contacts = {c.phone: c for c in Contact.objects.all()}
    assert set(contacts) == {"+14155550101", "+14155550102"}
    ann = contacts["+14155550101"]
    assert (ann.first_name, ann.last_name, ann.custom_fields) == ("Ann", "Lee-Smith", {"company": "Acme"})
    assert contacts["+14155550102"].custom_fields == {"company": "Beta"}
    imported = ContactList.objects.get(name="Browser import")
    assert job.contact_list_id == imported.pk
    assert set(ListMembership.objects.filter(contact_list=imported).values_list("contact__phone", flat=True)) == {
        "+14155550101", "+14155550102"
    }


def test_staff_adds_a_sender_and_checks_credentials(
    browser, live_server, sandbox, make_sender, django_user_model, tmp_path
):
    token = "tok-Zq81mW4xV7pLr2Ks9"
    page = browser.new_page()
    _log_in(page, live_server, django_user_model)

    # Add: credentials typed in the provider's labelled fields, messages per second left blank.
    page.goto(f"{live_server.url}/admin/messaging/sender/add/")
    page.fill("#id_name", "Browser Plivo")
    page.select_option("#id_provider", "plivo")
    page.fill("#id_address", "+14155550100")
    page.fill("#id_mps", "")
    page.fill("#id_credential_plivo_auth_id", "MAXXXXXXXXXXXXXXXX01")
    page.fill("#id_credential_plivo_auth_token", token)
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r"/admin/messaging/sender/$"))
    assert not page.locator(".errornote").count()
    sender = Sender.objects.get(name="Browser Plivo")
    assert sender.credentials == {"auth_id": "MAXXXXXXXXXXXXXXXX01", "auth_token": token}
    assert sender.mps == 1.0

    # Reopen from the list.
    page.click("#result_list a:text('Browser Plivo')")
    page.wait_for_url(re.compile(rf"/admin/messaging/sender/{sender.pk}/change/$"))
    html = page.content()
    assert token not in html
    assert "MAXXXXXXXXXXXXXXXX01" not in html
    assert page.input_value("#id_credential_plivo_auth_token") == ""
    assert f"••••••{token[-4:]}" in page.locator("#id_credential_plivo_auth_token_helptext").inner_text()
    assert "••••••XX01" in page.locator("#id_credential_plivo_auth_id_helptext").inner_text()
    webhooks = page.locator(".field-webhook_urls_to_paste").inner_text()  # staff who may change the sender
    assert f"/webhooks/plivo/{sender.uuid}/status/" in webhooks
    assert f"/webhooks/plivo/{sender.uuid}/inbound/" in webhooks
    assert float(page.input_value("#id_mps")) == 1.0
    assert "1 message per second for this sender" in page.locator(".field-provider_limits").inner_text()
    page.screenshot(path=str(tmp_path / "sender.png"), full_page=True)

    # Saving again without touching the credentials keeps them (the box is write-only).
    page.click("input[name=_continue]")
    page.wait_for_url(re.compile(rf"/admin/messaging/sender/{sender.pk}/change/$"))
    sender.refresh_from_db()
    assert sender.credentials["auth_token"] == token

    # The "Check credentials" action against the emulator: one sender accepted, one refused.
    good = make_sender("plivo", name="Emulator good")
    bad = make_sender("plivo", name="Emulator bad", credentials={"auth_id": "MABADACCOUNT0001", "auth_token": "invalid"})
    page.goto(f"{live_server.url}/admin/messaging/sender/")
    for sender_ in (good, bad):
        page.check(f"input[name=_selected_action][value='{sender_.pk}']")
    page.select_option("select[name=action]", "check_credentials")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    shown = dict((text.split(":", 1)[0], (level, text)) for level, text in _messages(page))
    assert set(shown) == {"Emulator good", "Emulator bad"}
    level, text = shown["Emulator good"]
    assert "success" in level and "accepted the credentials" in text
    level, text = shown["Emulator bad"]
    assert "error" in level and "HTTP 401" in text and "Authentication failed" in text
    assert "invalid" not in text and "MABADACCOUNT0001" not in text  # neither the secret nor the account id
    html = page.content()
    assert "MABADACCOUNT0001" not in html
    assert "test-auth_token-value" not in html
    page.screenshot(path=str(tmp_path / "senders.png"), full_page=True)
