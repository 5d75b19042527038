"""The sender page: write-only credentials, documented pace by kind of sender, webhook URLs."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from messaging.models import Sender
from messaging.providers.base import sender_type

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "address,kind",
    [("+14155550100", "long_code"), ("+18005550100", "toll_free"), ("12345", "short_code"),
     ("ACME", "alphanumeric"), ("", "leased")],
)
def test_sender_type(address, kind):
    assert sender_type(address) == kind


def _creds(provider: str, **values) -> dict:
    """The form fields of ``provider``'s credential keys (``auth_token="x"``; ``auth_token=None`` ticks its
    Remove box)."""
    return {f"credential_{provider}_{key}" + ("_clear" if value is None else ""): "on" if value is None else value
            for key, value in values.items()}


def _add(admin_client, credentials=None, **fields):
    data = {"name": "Line", "provider": "plivo", "address": "+14155550100", "is_active": "on", "mps": "",
            "api_base_url": "", "options": "{}"}
    provider = fields.get("provider", "plivo")
    data.update(_creds(provider, **(credentials if credentials is not None
                                    else {"auth_id": "MA123", "auth_token": "tok-secret-9876"})))
    data.update(fields)
    return admin_client.post(reverse("admin:messaging_sender_add"), data)


@pytest.mark.parametrize(
    "provider,address,credentials,mps",
    [
        ("plivo", "+14155550100", {"auth_id": "MA1", "auth_token": "t-12345"}, 1.0),  # US long code, unregistered
        ("plivo", "+18885550100", {"auth_id": "MA1", "auth_token": "t-12345"}, 25.0),  # verified toll-free
        ("plivo", "+447700900123", {"auth_id": "MA1", "auth_token": "t-12345"}, 5.0),  # account default
        ("cloudvno", "55123", {"api_key": "k-12345", "webhook_secret": "w-12345"}, 500.0),  # short code
    ],
)
def test_blank_pace_takes_the_documented_default(admin_client, provider, address, credentials, mps):
    response = _add(admin_client, credentials, provider=provider, address=address)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Sender.objects.get().mps == mps


def test_credentials_are_write_only_and_merged(admin_client):
    assert _add(admin_client, mps="7").status_code == 302
    sender = Sender.objects.get()
    assert sender.mps == 7 and sender.credentials == {"auth_id": "MA123", "auth_token": "tok-secret-9876"}
    page = admin_client.get(reverse("admin:messaging_sender_change", args=[sender.pk])).content.decode()
    assert "tok-secret-9876" not in page and "••••••9876" in page
    assert f"/webhooks/plivo/{sender.uuid}/status/" in page
    # Leaving a field empty keeps what is stored; a key given replaces only that key.
    data = {"name": "Line", "provider": "plivo", "address": "+14155550100", "is_active": "on", "mps": "7",
            "api_base_url": "", "options": "{}", **_creds("plivo", auth_id="", auth_token="new-token-5555")}
    assert admin_client.post(reverse("admin:messaging_sender_change", args=[sender.pk]), data).status_code == 302
    sender.refresh_from_db()
    assert sender.credentials == {"auth_id": "MA123", "auth_token": "new-token-5555"}


def test_another_providers_fields_are_not_used_and_a_missing_key_is_named(admin_client):
    response = _add(admin_client, {"auth_id": "MA1"}, **_creds("cloudvno", api_key="oops-1234"))
    assert response.status_code == 200
    assert "Plivo needs Auth token." in response.content.decode()
    assert not Sender.objects.exists()
    assert _add(admin_client, **_creds("cloudvno", api_key="oops-1234")).status_code == 302
    assert Sender.objects.get().credentials == {"auth_id": "MA123", "auth_token": "tok-secret-9876"}


def test_credentials_are_encrypted_at_rest(db):
    from django.db import connection

    sender = Sender.objects.create(name="x", provider="plivo", credentials={"auth_id": "MA1", "auth_token": "plain-9"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM messaging_sender WHERE id = %s", [sender.pk])
        stored = cursor.fetchone()[0]
    assert "plain-9" not in stored and "MA1" not in stored
    assert Sender.objects.get(pk=sender.pk).credentials["auth_token"] == "plain-9"


# ---- the callback password: its own encrypted, write-only field ----


def _change(admin_client, sender, **fields):
    data = {"name": sender.name, "provider": sender.provider, "address": sender.address, "is_active": "on",
            "mps": str(sender.mps), "api_base_url": sender.api_base_url, "options": json.dumps(sender.options),
            "callback_password_input": ""}
    data.update(fields)
    return admin_client.post(reverse("admin:messaging_sender_change", args=[sender.pk]), data)


def _raw_column(sender, column: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM messaging_sender WHERE id = %s", [sender.pk])
        return cursor.fetchone()[0]


BW_CREDENTIALS = {"user_id": "u-1", "api_token": "t-12345678", "api_secret": "s-12345678"}


def test_callback_password_is_encrypted_write_only_and_never_shown(admin_client):
    response = _add(admin_client, BW_CREDENTIALS, provider="bandwidth",
                    options='{"callback_username": "bw-user"}', callback_password_input="Cb-Pass-7731")
    assert response.status_code == 302, response.content.decode()[:2000]
    sender = Sender.objects.get()
    assert sender.callback_password == "Cb-Pass-7731"
    assert "callback_password" not in sender.options
    assert "Cb-Pass-7731" not in _raw_column(sender, "callback_password")
    assert "Cb-Pass-7731" not in _raw_column(sender, "options")
    page = admin_client.get(reverse("admin:messaging_sender_change", args=[sender.pk])).content.decode()
    # never in a form field; only inside the webhook URLs to paste (someone who may change the sender)
    assert 'value="Cb-Pass-7731"' not in page and "••••••7731" in page
    assert page.count("Cb-Pass-7731") == page.count("bw-user:Cb-Pass-7731@") == 2
    listing = admin_client.get(reverse("admin:messaging_sender_changelist")).content.decode()
    assert "Cb-Pass-7731" not in listing
    # a blank box keeps it; the checkbox removes it, and the sender is then flagged
    assert _change(admin_client, sender).status_code == 302
    sender.refresh_from_db()
    assert sender.callback_password == "Cb-Pass-7731"
    assert _change(admin_client, sender, callback_password_clear="on").status_code == 302
    sender.refresh_from_db()
    assert sender.callback_password == ""
    assert "unprotected: set a callback password" in admin_client.get(
        reverse("admin:messaging_sender_changelist")).content.decode()


def test_callback_password_in_plain_options_is_refused(admin_client):
    response = _add(admin_client, BW_CREDENTIALS, provider="bandwidth",
                    options='{"callback_username": "bw", "callback_password": "in-the-clear"}')
    assert response.status_code == 200
    assert "enter it in the Callback password field" in response.content.decode()
    assert not Sender.objects.exists()


def test_migration_moves_an_options_password_into_the_encrypted_field(db):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("messaging.migrations.0003_sender_callback_password")
    sender = Sender.objects.create(name="old", provider="fonedynamics", address="")
    Sender.objects.filter(pk=sender.pk).update(options={"callback_username": "fd", "callback_password": "old-pass-42"})
    migration.options_to_field(apps, None)
    sender.refresh_from_db()
    assert sender.options == {"callback_username": "fd"}
    assert sender.callback_password == "old-pass-42"
    assert "old-pass-42" not in _raw_column(sender, "callback_password")
    migration.field_to_options(apps, None)  # and back, for a rollback
    sender.refresh_from_db()
    assert sender.options["callback_password"] == "old-pass-42"


def test_callback_password_never_reaches_logs(make_sender, sandbox, caplog, client):
    import logging

    from messaging.providers import provider_for
    from messaging.providers.base import OutboundMessage, TransientError

    caplog.set_level(logging.DEBUG)
    sender = make_sender("bandwidth", options={"callback_username": "bw"}, callback_password="Log-Secret-9931")
    adapter = provider_for(sender)
    message = OutboundMessage(id=5, to="+12125550123", body="hi",
                              status_callback_url="http://127.0.0.1:9/webhooks/x/status/")
    adapter.send(message)
    sandbox.config(error_5xx=1.0)
    with pytest.raises(TransientError) as info:
        adapter.send(message)
    path = reverse("messaging:webhook_status", args=["bandwidth", sender.uuid])
    assert client.post(path, data={"messageId": "m-1", "state": "sent"}, content_type="application/json",
                       headers={"Authorization": "Basic Ync6d3Jvbmc="}).status_code == 403
    text = "\n".join(r.getMessage() for r in caplog.records) + str(info.value) + info.value.response
    assert "Log-Secret-9931" not in text


def test_webhook_urls_carry_the_password_only_for_someone_who_may_change_the_sender(
    admin_client, client, django_user_model, make_sender, settings
):
    from django.contrib.auth.models import Permission

    settings.PUBLIC_BASE_URL = "https://hooks.example"
    sender = make_sender("fonedynamics", address="", options={"callback_username": "fd-user"},
                         callback_password="Real-Pass-5150")
    url = reverse("admin:messaging_sender_change", args=[sender.pk])
    page = admin_client.get(url).content.decode()
    assert f"https://fd-user:Real-Pass-5150@hooks.example/webhooks/fonedynamics/{sender.uuid}/inbound/" in page
    assert f"https://fd-user:Real-Pass-5150@hooks.example/webhooks/fonedynamics/{sender.uuid}/status/" in page
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_sender"))
    client.force_login(viewer)
    page = client.get(url).content.decode()
    assert f"https://fd-user:&lt;password&gt;@hooks.example/webhooks/fonedynamics/{sender.uuid}/inbound/" in page
    assert f"https://fd-user:&lt;password&gt;@hooks.example/webhooks/fonedynamics/{sender.uuid}/status/" in page
    assert "Real-Pass-5150" not in page
    plain = make_sender("plivo")
    page = admin_client.get(reverse("admin:messaging_sender_change", args=[plain.pk])).content.decode()
    assert f"https://hooks.example/webhooks/plivo/{plain.uuid}/inbound/" in page and "&lt;password&gt;" not in page


@pytest.mark.parametrize("provider,credentials", [
    ("bandwidth", BW_CREDENTIALS),
    ("fonedynamics", {"account_sid": "AC1", "token": "t-12345678", "property_sid": "PR1"}),
])
def test_a_new_sender_whose_provider_signs_nothing_gets_a_random_callback_password(admin_client, provider,
                                                                                   credentials):
    assert _add(admin_client, credentials, provider=provider, address="+14155550100",
                options='{"callback_username": "cb"}').status_code == 302
    sender = Sender.objects.get()
    assert len(sender.callback_password) >= 32
    from messaging.models import AuditEntry

    audit = AuditEntry.objects.filter(object_id=str(sender.pk)).values_list("change_message", flat=True)
    assert any("callback password (generated at random)" in str(text) for text in audit)
    assert not any(sender.callback_password in str(text) for text in audit)
    page = admin_client.get(reverse("admin:messaging_sender_change", args=[sender.pk])).content.decode()
    assert f"cb:{sender.callback_password}@" in page and "Callbacks unprotected" not in page


def test_senders_without_a_callback_password_are_flagged(admin_client, make_sender):
    from messaging.selectors import senders_callbacks_unprotected

    old = make_sender("bandwidth", name="Old line")
    Sender.objects.filter(pk=old.pk).update(callback_password="")  # as senders made before the rule were
    lenient = make_sender("sendblue", name="Lenient line", options={"callback_verification": "url_token"})
    Sender.objects.filter(pk=lenient.pk).update(callback_password="")
    fine = [make_sender("fonedynamics", name="FD line"), make_sender("plivo", name="Plivo line"),
            make_sender("sendblue", name="Strict line")]
    assert set(senders_callbacks_unprotected()) == {old, lenient}
    assert all(s.callback_password for s in fine[:1])
    listing = admin_client.get(reverse("admin:messaging_sender_changelist")).content.decode()
    assert listing.count("unprotected: set a callback password") == 2
    response = admin_client.get(reverse("admin:messaging_sender_change", args=[old.pk]))
    assert any("Callbacks unprotected" in str(m) for m in response.context["messages"])
    assert "Callbacks unprotected" in response.content.decode()
    response = admin_client.get(reverse("admin:messaging_sender_change", args=[fine[0].pk]))
    assert not any("Callbacks unprotected" in str(m) for m in response.context["messages"])


# ---- secrets the configured key cannot decrypt ----


OTHER_KEY = "x3TyNa1m0iwh9s0dAg3CKNeqZhVrR1sbHEb4i0Z7mTs="


def test_undecryptable_credentials_are_an_error_state_never_merged(admin_client, settings):
    from cryptography.fernet import Fernet

    original = Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [original]
    assert _add(admin_client).status_code == 302
    sender = Sender.objects.get()
    token = _raw_column(sender, "credentials")
    settings.CREDENTIALS_KEYS = [OTHER_KEY]  # a wrong key
    sender = Sender.objects.get()
    page = admin_client.get(reverse("admin:messaging_sender_change", args=[sender.pk])).content.decode()
    assert "credentials cannot be decrypted with the configured key" in page
    listing = admin_client.get(reverse("admin:messaging_sender_changelist")).content.decode()
    assert "credentials cannot be decrypted with the configured key" in listing
    # merging one key into what cannot be read is refused, and nothing is written
    response = _change(admin_client, sender, **_creds("plivo", auth_token="new-token-1234"))
    assert response.status_code == 200
    assert "nothing can be merged" in response.content.decode()
    assert _raw_column(sender, "credentials") == token
    # saving other fields keeps the stored token as it was: the right key still reads it
    assert _change(admin_client, sender, name="Renamed").status_code == 302
    assert _raw_column(sender, "credentials") == token
    settings.CREDENTIALS_KEYS = [original]
    assert Sender.objects.get().credentials == {"auth_id": "MA123", "auth_token": "tok-secret-9876"}
    # with the wrong key, a complete set replaces them
    settings.CREDENTIALS_KEYS = [OTHER_KEY]
    response = _change(admin_client, Sender.objects.get(), **_creds("plivo", auth_id="MA9", auth_token="tok-5555"))
    assert response.status_code == 302
    assert Sender.objects.get().credentials == {"auth_id": "MA9", "auth_token": "tok-5555"}


def test_sending_with_undecryptable_credentials_fails_naming_the_sender(make_sender, settings):
    from messaging.models import Message
    from messaging.providers import provider_for
    from messaging.providers.base import ConfigurationError
    from messaging.services import message_send

    sender = make_sender("plivo", name="Main line", credentials={"auth_id": "MA1", "auth_token": "Tok-Secret-0042"})
    settings.CREDENTIALS_KEYS = [OTHER_KEY]
    sender = Sender.objects.get(pk=sender.pk)
    with pytest.raises(ConfigurationError) as info:
        provider_for(sender)
    assert "Main line" in str(info.value) and "cannot be decrypted" in str(info.value)
    message = Message.objects.create(sender=sender, to="+12125550123", body="hi")
    message_send(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == "failed"
    assert "Main line" in message.error_message and "cannot be decrypted" in message.error_message
    assert "Tok-Secret-0042" not in message.error_message


def test_the_sender_page_shows_the_pace_in_use_after_the_provider_pushed_back(admin_client, make_sender):
    from messaging import pacing

    sender = make_sender("plivo", mps=20.0)
    page = admin_client.get(f"/admin/messaging/sender/{sender.pk}/change/").content.decode()
    assert "As configured." in page
    pacing.slow_down(sender.pk)
    page = admin_client.get(f"/admin/messaging/sender/{sender.pk}/change/").content.decode()
    assert "10 messages per second (50% of the configured pace)" in page
