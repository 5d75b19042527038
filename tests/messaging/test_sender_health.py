"""The sender page's health panel (circuit, pace, callbacks accepted and refused over the last day) and its
credentials in labelled, write-only fields for each key of the chosen provider."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from messaging import pacing
from messaging.models import AuditEntry, Sender
from messaging.providers import PROVIDERS
from messaging.sandbox.plivo import _signature_headers
from messaging.selectors import sender_health
from messaging.services.circuit import circuit_open_now, circuit_record
from messaging.services.tallies import callback_tally

pytestmark = pytest.mark.django_db

BAD_SIGNATURE = "403 signature refused: X-Plivo-Signature-V3 does not match"
SHOTS = Path("/tmp/shots")


def _page(client, sender) -> str:
    response = client.get(reverse("admin:messaging_sender_change", args=[sender.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _panel(html: str) -> str:
    """The health panel's text, tags stripped and spaces collapsed."""
    start = html.index('id="sender-health"')
    section = html[start:html.index("</section>", start)]
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", section)).split())


def _plivo_callback(client, sender, *, token: str, uuid: str = "in-1"):
    """A reply posted to the sender's inbound webhook as Plivo posts it, signed with ``token``."""
    path = reverse("messaging:webhook_inbound", args=["plivo", sender.uuid])
    fields = {"MessageUUID": uuid, "From": "12125550199", "To": sender.address.lstrip("+"), "Text": "Thanks",
              "Type": "sms", "Units": "1"}
    return client.post(path, data=fields, headers=_signature_headers(token, "POST", f"http://testserver{path}", fields))


# ---- the figures ----------------------------------------------------------------------------------


def test_callback_figures_over_the_last_day(make_sender):
    sender = make_sender("plivo")
    other = make_sender("plivo", name="Other line")
    now = timezone.now()
    for minutes in (5, 50, 70):
        callback_tally(sender_id=sender.pk, accepted=True, at=now - timedelta(minutes=minutes))
    for _ in range(2):
        callback_tally(sender_id=sender.pk, accepted=False, reason=BAD_SIGNATURE, at=now - timedelta(minutes=3))
    callback_tally(sender_id=sender.pk, accepted=False, reason="400 unreadable callback: not JSON",
                   at=now - timedelta(hours=3))
    callback_tally(sender_id=sender.pk, accepted=False, reason=BAD_SIGNATURE, at=now - timedelta(hours=30))  # older
    callback_tally(sender_id=other.pk, accepted=True, at=now - timedelta(minutes=1))  # another sender's

    health = sender_health(sender, now=now)
    assert (health.accepted, health.refused) == (3, 3)
    assert [(r.reason, r.count) for r in health.refusals] == [(BAD_SIGNATURE, 2),
                                                              ("400 unreadable callback: not JSON", 1)]
    assert health.last_accepted_at == now - timedelta(minutes=5)
    assert health.last_refused_at == now - timedelta(minutes=3)
    assert health.callbacks_warning == ""  # as many accepted as refused


def test_warning_when_refusals_outnumber_acceptances_or_none_is_accepted(make_sender):
    sender = make_sender("plivo")
    callback_tally(sender_id=sender.pk, accepted=False, reason=BAD_SIGNATURE)
    health = sender_health(sender)
    assert health.last_accepted_at is None
    assert health.callbacks_warning.startswith("1 callback refused and none accepted in the last day")
    callback_tally(sender_id=sender.pk, accepted=True)
    callback_tally(sender_id=sender.pk, accepted=False, reason=BAD_SIGNATURE)
    assert sender_health(sender).callbacks_warning.startswith("More callbacks refused (2) than accepted (1)")
    callback_tally(sender_id=sender.pk, accepted=True)
    assert sender_health(sender).callbacks_warning == ""


def test_a_sender_nothing_happened_to(admin_client, make_sender):
    sender = make_sender("plivo", mps=20.0)
    health = sender_health(sender)
    assert (health.circuit_open, health.consecutive_failures, health.open_reason) == (False, 0, "")
    assert (health.accepted, health.refused, health.refusals, health.last_accepted_at) == (0, 0, [], None)
    assert not health.pace_reduced and health.effective_mps == 20.0
    panel = _panel(_page(admin_client, sender))
    assert "Closed : messages go out. 0 provider failures in a row so far" in panel
    assert "Configured: 20 messages per second. In use: As configured." in panel
    assert "Last callback never." in panel
    assert "0 accepted, 0 refused." in panel
    assert "sender-callbacks-warning" not in _page(admin_client, sender)


# ---- through the real webhook, seen on the page ------------------------------------------------


def test_a_callback_refused_for_a_bad_signature_is_counted_with_its_reason_on_the_page(admin_client, client,
                                                                                        make_sender):
    sender = make_sender("plivo")
    token = sender.credentials["auth_token"]
    assert _plivo_callback(client, sender, token=token).status_code == 200
    for n in range(2):  # signed with a token that is not the one stored here
        assert _plivo_callback(client, sender, token="not-the-stored-token", uuid=f"bad-{n}").status_code == 403

    health = sender_health(sender)
    assert (health.accepted, health.refused) == (1, 2)
    assert [(r.reason, r.count) for r in health.refusals] == [(BAD_SIGNATURE, 2)]
    html = _page(admin_client, sender)
    panel = _panel(html)
    assert "More callbacks refused (2) than accepted (1) in the last day" in panel
    assert f"{BAD_SIGNATURE} 2" in panel
    assert "Plivo's signature did not match: check that the Plivo credentials above hold the secret" in panel
    assert "1 accepted, 2 refused." in panel
    assert health.last_accepted_at.strftime("%Y-%m-%d %H:%M") in panel
    assert token not in html


# ---- circuit and pace -------------------------------------------------------------------------------


def test_an_open_circuit_shows_until_when_and_why(admin_client, make_sender, settings):
    settings.CIRCUIT_FAILURES = 3
    sender = make_sender("plivo")
    circuit_record(sender.pk, ok=False, reason="HTTP 500")
    circuit_record(sender.pk, ok=False, reason="HTTP 500")
    health = sender_health(sender)
    assert (health.circuit_open, health.consecutive_failures, health.failures_to_open) == (False, 2, 3)
    assert "Closed : messages go out. 2 provider failures in a row so far (3 open it)." in _panel(
        _page(admin_client, sender))

    circuit_open_now(sender.pk, reason="Plivo refused the account: 401 authentication failed")
    health = sender_health(sender)
    assert health.circuit_open and health.open_until > timezone.now()
    assert health.open_reason == "Plivo refused the account: 401 authentication failed"
    panel = _panel(_page(admin_client, sender))
    until = timezone.localtime(health.open_until).strftime("%Y-%m-%d %H:%M:%S")
    assert (f"Open until {until} because Plivo refused the account: 401 authentication failed. Nothing is sent "
            "through this sender until then") in panel


def test_a_closed_circuit_says_why_it_last_opened(admin_client, make_sender):
    from messaging.models import SenderPace

    sender = make_sender("plivo")
    circuit_open_now(sender.pk, reason="account suspended")
    SenderPace.objects.filter(sender=sender).update(open_until=timezone.now() - timedelta(minutes=1))
    assert not sender_health(sender).circuit_open
    panel = _panel(_page(admin_client, sender))
    assert "Closed : messages go out." in panel and "because account suspended." in panel


def test_a_pace_reduced_after_429_says_so(admin_client, make_sender):
    sender = make_sender("plivo", mps=20.0)
    pacing.slow_down(sender.pk)
    pacing.slow_down(sender.pk)
    health = sender_health(sender)
    assert health.pace_reduced and health.rate_factor == 0.25 and health.effective_mps == 5.0
    panel = _panel(_page(admin_client, sender))
    assert ("Configured: 20 messages per second. In use: 5 messages per second (25% of the configured pace): "
            "reduced after the provider answered 429") in panel


# ---- credentials in labelled fields --------------------------------------------------------------

LABELS = {
    "plivo": {"auth_id": "Auth ID", "auth_token": "Auth token"},
    "bandwidth": {"user_id": "User ID", "api_token": "API token", "api_secret": "API secret"},
    "sendblue": {"api_key_id": "API key ID", "api_secret_key": "API secret key", "signing_secret": "Signing secret"},
    "cloudvno": {"api_key": "API key", "webhook_secret": "Webhook secret"},
    "fonedynamics": {"account_sid": "Account SID", "token": "Token", "property_sid": "Property SID"},
}


def _field(provider: str, key: str) -> str:
    return f"credential_{provider}_{key}"


def _form_data(provider: str, *, values: dict | None = None, remove=(), **fields) -> dict:
    data = {"name": f"{provider} line", "provider": provider, "address": "+14155550100", "is_active": "on",
            "mps": "", "api_base_url": "", "options": "{}", "callback_password_input": ""}
    data.update({_field(provider, key): value for key, value in (values or {}).items()})
    data.update({f"{_field(provider, key)}_clear": "on" for key in remove})
    data.update(fields)
    return data


def _raw_credentials(sender) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM messaging_sender WHERE id = %s", [sender.pk])
        return str(cursor.fetchone()[0])


def test_the_labels_cover_every_provider_and_key():
    assert {code: set(keys) for code, keys in LABELS.items()} == {
        code: set(cls.credential_keys) for code, cls in PROVIDERS.items()}


def test_the_add_page_has_a_labelled_password_field_per_key_grouped_by_provider(admin_client):
    html = admin_client.get(reverse("admin:messaging_sender_add")).content.decode()
    for code, cls in PROVIDERS.items():
        assert f">{cls.name} credentials</h2>" in html
        assert f"sender-credentials-{code}" in html
        for key, label in LABELS[code].items():
            assert f'<label for="id_{_field(code, key)}">{label}:</label>' in html
            assert re.search(rf'<input type="password" name="{_field(code, key)}"[^>]*autocomplete="new-password"',
                             html)
    assert "credentials_input" not in html and "key=value" not in html
    assert "messaging/sender.js" in html and "<script>" not in html.split("</head>")[1]


@pytest.mark.parametrize("provider", list(LABELS))
def test_credentials_of_each_provider_saved_encrypted_kept_replaced_and_never_shown(admin_client, provider):
    keys = list(PROVIDERS[provider].credential_keys)
    secrets = {key: f"{provider}-{key}-Secret-{n:04d}" for n, key in enumerate(keys, start=1001)}
    options = {"callback_username": "cb"} if PROVIDERS[provider].callback_basic_auth else {}

    # missing keys are named, by their label, and nothing is stored
    response = admin_client.post(reverse("admin:messaging_sender_add"),
                                 _form_data(provider, values={keys[0]: secrets[keys[0]]}, options=json.dumps(options)))
    assert response.status_code == 200
    html = response.content.decode()
    for key in keys[1:]:
        assert f"{PROVIDERS[provider].name} needs {LABELS[provider][key]}." in html
    assert not Sender.objects.exists()
    assert not any(secret in html for secret in secrets.values())  # never sent back, even on an error

    # a complete set is stored, encrypted at rest
    response = admin_client.post(reverse("admin:messaging_sender_add"),
                                 _form_data(provider, values=secrets, options=json.dumps(options)))
    assert response.status_code == 302, response.content.decode()[:3000]
    sender = Sender.objects.get()
    assert sender.credentials == secrets
    raw = _raw_credentials(sender)
    assert not any(secret in raw for secret in secrets.values())
    audit = " ".join(str(m) for m in AuditEntry.objects.filter(object_id=str(sender.pk))
                     .values_list("change_message", flat=True))
    assert all(f"credential {key}" in audit for key in keys)
    assert not any(secret in audit for secret in secrets.values())

    # the page shows each key's last 4 characters only
    html = _page(admin_client, sender)
    assert not any(secret in html for secret in secrets.values())
    for key in keys:
        assert f"Stored now: ••••••{secrets[key][-4:]}. Leave blank to keep it." in html
        assert f'name="{_field(provider, key)}_clear"' in html

    # blank keeps, a value replaces only its key
    change = reverse("admin:messaging_sender_change", args=[sender.pk])
    data = _form_data(provider, values={keys[-1]: "Replaced-Value-7777"}, options=json.dumps(sender.options),
                      mps=str(sender.mps), address=sender.address)
    assert admin_client.post(change, data).status_code == 302
    sender.refresh_from_db()
    assert sender.credentials == {**secrets, keys[-1]: "Replaced-Value-7777"}

    # removing a key the provider needs is refused, naming it; nothing changes
    data = _form_data(provider, remove=[keys[0]], options=json.dumps(sender.options), mps=str(sender.mps),
                      address=sender.address)
    response = admin_client.post(change, data)
    assert response.status_code == 200
    assert f"{PROVIDERS[provider].name} needs {LABELS[provider][keys[0]]}." in response.content.decode()
    sender.refresh_from_db()
    assert sender.credentials == {**secrets, keys[-1]: "Replaced-Value-7777"}

    # removing and giving a new value in one go replaces it
    data = _form_data(provider, values={keys[0]: "New-First-1234"}, remove=[keys[0]],
                      options=json.dumps(sender.options), mps=str(sender.mps), address=sender.address)
    assert admin_client.post(change, data).status_code == 302
    sender.refresh_from_db()
    assert sender.credentials[keys[0]] == "New-First-1234"


def test_sendblue_signing_secret_is_optional_when_the_callback_password_proves_callbacks(admin_client):
    values = {"api_key_id": "key-id-0001", "api_secret_key": "secret-key-0002", "signing_secret": "signing-0003"}
    url_token = json.dumps({"callback_verification": "url_token", "callback_username": "sb"})
    # by signature (the default): the signing secret is needed
    response = admin_client.post(reverse("admin:messaging_sender_add"),
                                 _form_data("sendblue", values={**values, "signing_secret": ""}))
    assert "Sendblue needs Signing secret." in response.content.decode()
    # with the callback password in the URLs: optional, and can be removed
    response = admin_client.post(reverse("admin:messaging_sender_add"), _form_data("sendblue", values=values,
                                                                                  options=url_token))
    assert response.status_code == 302, response.content.decode()[:3000]
    sender = Sender.objects.get()
    assert sender.callback_password  # generated
    html = _page(admin_client, sender)
    assert "Optional for this sender: its callbacks are proven by the callback password." in html
    data = _form_data("sendblue", remove=["signing_secret"], options=url_token, mps=str(sender.mps))
    assert admin_client.post(reverse("admin:messaging_sender_change", args=[sender.pk]), data).status_code == 302
    sender.refresh_from_db()
    assert sender.credentials == {"api_key_id": "key-id-0001", "api_secret_key": "secret-key-0002"}
    audit = [str(m) for m in AuditEntry.objects.filter(object_id=str(sender.pk))
             .values_list("change_message", flat=True)]
    assert any("credential signing_secret (removed)" in m for m in audit)


def test_changing_the_provider_stores_only_the_new_providers_keys(admin_client, make_sender):
    sender = make_sender("plivo", credentials={"auth_id": "MA1", "auth_token": "tok-12345678"})
    change = reverse("admin:messaging_sender_change", args=[sender.pk])
    data = _form_data("cloudvno", values={"api_key": "cv-key-1234"}, mps=str(sender.mps))
    response = admin_client.post(change, data)
    assert "CloudVNO needs Webhook secret." in response.content.decode()
    data = _form_data("cloudvno", values={"api_key": "cv-key-1234", "webhook_secret": "cv-hook-5678"},
                      mps=str(sender.mps), **{_field("plivo", "auth_token"): "ignored-0000"})
    assert admin_client.post(change, data).status_code == 302
    sender.refresh_from_db()
    assert sender.provider == "cloudvno"
    assert sender.credentials == {"api_key": "cv-key-1234", "webhook_secret": "cv-hook-5678"}


def test_someone_who_may_only_view_senders_cannot_post_credentials(client, roles, make_sender):
    from campaigns.roles import VIEWER

    sender = make_sender("plivo", credentials={"auth_id": "MA1", "auth_token": "tok-12345678"})
    viewer = roles.user(VIEWER)
    assert viewer.has_perm("messaging.view_sender") and not viewer.has_perm("messaging.change_sender")
    client.force_login(viewer)
    change = reverse("admin:messaging_sender_change", args=[sender.pk])
    html = client.get(change).content.decode()
    assert 'name="credential_plivo_auth_token"' not in html  # nothing to type a secret into
    assert "Bandwidth credentials" not in html  # only its own provider's keys, read-only
    assert "tok-12345678" not in html
    data = _form_data("plivo", values={"auth_token": "stolen-0000"}, mps=str(sender.mps), address=sender.address)
    assert client.post(change, data).status_code == 403
    sender.refresh_from_db()
    assert sender.credentials == {"auth_id": "MA1", "auth_token": "tok-12345678"}
    assert not AuditEntry.objects.filter(object_id=str(sender.pk), change_message__contains="credential").exists()
    assert client.post(reverse("admin:messaging_sender_add"),
                       _form_data("plivo", values={"auth_id": "MA2", "auth_token": "x-12345678"})).status_code == 403
    assert Sender.objects.count() == 1


# ---- in a real browser ---------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_sender_page_in_a_browser(browser, live_server, make_sender, django_user_model):
    SHOTS.mkdir(parents=True, exist_ok=True)
    django_user_model.objects.create_superuser("staff", "staff@example.com", "a-long-password-1")
    sender = make_sender("plivo", name="Main Plivo line", mps=20.0,
                         credentials={"auth_id": "MAXXXXXXXXXXXXXXXX01", "auth_token": "Browser-Token-4242"})
    now = timezone.now()
    for minutes in (2, 30):
        callback_tally(sender_id=sender.pk, accepted=True, at=now - timedelta(minutes=minutes))
    for _ in range(5):
        callback_tally(sender_id=sender.pk, accepted=False, reason=BAD_SIGNATURE, at=now - timedelta(minutes=1))
    callback_tally(sender_id=sender.pk, accepted=False, reason="400 unreadable callback: not a readable form")
    circuit_open_now(sender.pk, reason="Plivo refused the account: 401 authentication failed")
    pacing.slow_down(sender.pk)

    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "a-long-password-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    page.goto(f"{live_server.url}/admin/messaging/sender/{sender.pk}/change/")
    assert page.locator("#sender-circuit").get_attribute("data-state") == "open"
    assert "401 authentication failed" in page.locator("#sender-circuit").inner_text()
    assert "reduced after the provider answered 429" in page.locator("#sender-pace").inner_text()
    assert "More callbacks refused (6) than accepted (2)" in page.locator("#sender-callbacks-warning").inner_text()
    rows = page.locator("#sender-refusals tbody tr").all()
    assert [r.locator("td").nth(1).inner_text() for r in rows] == ["5", "1"]
    # only Plivo's credential fields are shown; its stored values by their last 4 characters only
    assert page.locator("fieldset.sender-credentials-plivo").is_visible()
    assert not page.locator("fieldset.sender-credentials-bandwidth").is_visible()
    assert "••••••4242" in page.locator("#id_credential_plivo_auth_token_helptext").inner_text()
    assert page.input_value("#id_credential_plivo_auth_token") == ""
    assert "Browser-Token-4242" not in page.content()
    page.screenshot(path=str(SHOTS / "sender-health.png"), full_page=False)
    page.screenshot(path=str(SHOTS / "sender-page-full.png"), full_page=True)

    # the add page: switching the provider shows that provider's fields
    page.goto(f"{live_server.url}/admin/messaging/sender/add/")
    page.select_option("#id_provider", "sendblue")
    assert page.locator("#id_credential_sendblue_signing_secret").is_visible()
    assert not page.locator("#id_credential_plivo_auth_token").is_visible()
    page.select_option("#id_provider", "fonedynamics")
    assert page.get_by_label("Property SID").is_visible()
    page.fill("#id_name", "Fone line")
    page.fill("#id_address", "+14155550123")
    page.fill("#id_options", '{"callback_username": "fd"}')
    page.fill("#id_credential_fonedynamics_account_sid", "AC-browser-0001")
    page.fill("#id_credential_fonedynamics_token", "fd-token-0002")
    page.click("input[name=_continue]")
    page.wait_for_selector(".errornote")
    assert "Fone Dynamics needs Property SID." in page.locator(".field-credential_fonedynamics_property_sid").inner_text()
    page.screenshot(path=str(SHOTS / "sender-add-missing-key.png"), full_page=True)
    page.fill("#id_credential_fonedynamics_account_sid", "AC-browser-0001")
    page.fill("#id_credential_fonedynamics_token", "fd-token-0002")
    page.fill("#id_credential_fonedynamics_property_sid", "PR-browser-0003")
    page.click("input[name=_continue]")
    page.wait_for_selector("#sender-health")
    created = Sender.objects.get(name="Fone line")
    assert created.credentials == {"account_sid": "AC-browser-0001", "token": "fd-token-0002",
                                   "property_sid": "PR-browser-0003"}
    assert "Last callback never." in " ".join(page.locator("#sender-health").inner_text().split())
    page.screenshot(path=str(SHOTS / "sender-new-fone.png"), full_page=True)
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_without_javascript_every_providers_fields_are_shown_under_its_heading(browser, live_server,
                                                                               django_user_model):
    SHOTS.mkdir(parents=True, exist_ok=True)
    django_user_model.objects.create_superuser("staff", "staff@example.com", "a-long-password-1")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "a-long-password-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
    page.goto(f"{live_server.url}/admin/messaging/sender/add/")
    headings = page.locator("fieldset.sender-credentials h2").all_inner_texts()
    assert [h.lower() for h in headings] == [f"{cls.name} credentials".lower() for cls in PROVIDERS.values()]
    assert all(page.locator(f"fieldset.sender-credentials-{code}").is_visible() for code in PROVIDERS)
    # only the chosen provider's fields are used
    page.fill("#id_name", "CloudVNO line")
    page.select_option("#id_provider", "cloudvno")
    page.fill("#id_address", "+14155550124")
    page.fill("#id_credential_plivo_auth_token", "not-used-0001")
    page.fill("#id_credential_cloudvno_api_key", "cv-key-0002")
    page.fill("#id_credential_cloudvno_webhook_secret", "cv-hook-0003")
    page.screenshot(path=str(SHOTS / "sender-add-without-javascript.png"), full_page=True)
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r"/admin/messaging/sender/$"))
    assert Sender.objects.get(name="CloudVNO line").credentials == {"api_key": "cv-key-0002",
                                                                    "webhook_secret": "cv-hook-0003"}
    context.close()
