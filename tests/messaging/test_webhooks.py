"""The webhook never answers 200 after an unexpected error: the provider must retry later."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse

from messaging.models import MessageEvent, Sender

pytestmark = pytest.mark.django_db


def test_an_unexpected_error_answers_500_and_stores_nothing(make_sender):
    sender = make_sender("plivo")
    # A sender left on a provider the code no longer knows: nothing can verify or read its callbacks.
    Sender.objects.filter(pk=sender.pk).update(provider="retired")
    client = Client(raise_request_exception=False)
    path = reverse("messaging:webhook_status", args=["retired", sender.uuid])
    response = client.post(path, data={"MessageUUID": "u-1", "Status": "delivered"})
    assert response.status_code == 500
    assert not MessageEvent.objects.exists()


def test_a_callback_for_another_providers_path_is_not_found(make_sender, client):
    sender = make_sender("plivo")
    path = reverse("messaging:webhook_status", args=["sendblue", sender.uuid])
    assert client.post(path, data={"MessageUUID": "u-1"}).status_code == 404


def test_a_sender_whose_secrets_cannot_be_decrypted_answers_503_and_stores_nothing(make_sender, settings, caplog):
    """Nothing can be verified: not 403 (the provider might give up), not 200 (the event would be lost)."""
    sender = make_sender("plivo", credentials={"auth_id": "MA1", "auth_token": "Tok-Secret-0077"})
    settings.CREDENTIALS_KEYS = ["x3TyNa1m0iwh9s0dAg3CKNeqZhVrR1sbHEb4i0Z7mTs="]
    client = Client(raise_request_exception=False)
    path = reverse("messaging:webhook_status", args=["plivo", sender.uuid])
    response = client.post(path, data={"MessageUUID": "u-1", "Status": "delivered"})
    assert response.status_code == 503
    assert not MessageEvent.objects.exists()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "cannot be decrypted" in logged and "Tok-Secret-0077" not in logged


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b"{" * 100_000 + b"}" * 100_000, "application/json"),  # deeper than any decoder goes
        (b'{"MessageUUID": "u-1", "Status": "deliv', "application/json"),  # cut short
        (b"\xff\xfe not utf-8", "application/json"),
        (b"--nowhere\r\nnot a part", "multipart/form-data"),  # no boundary: no way to read it
    ],
    ids=["deep nesting", "cut short", "not utf-8", "broken multipart"],
)
def test_a_body_that_cannot_be_read_answers_400_and_stores_nothing(make_sender, body, content_type, caplog):
    sender = make_sender("plivo")
    client = Client(raise_request_exception=False)
    path = reverse("messaging:webhook_status", args=["plivo", sender.uuid])
    response = client.generic("POST", path, data=body, content_type=content_type)
    assert response.status_code == 400
    assert not MessageEvent.objects.exists()
    assert "unreadable" in "\n".join(r.getMessage() for r in caplog.records)


def test_verification_that_needs_a_missing_credential_answers_503(make_sender, caplog):
    """Nothing can be verified without the sender's token: the provider must retry once staff add it."""
    from messaging.sandbox.plivo import _signature_headers

    sender = make_sender("plivo", credentials={"auth_id": "MA1"})  # no auth_token
    client = Client(raise_request_exception=False)
    path = reverse("messaging:webhook_status", args=["plivo", sender.uuid])
    data = {"MessageUUID": "u-1", "Status": "delivered"}
    headers = _signature_headers("some-token", "POST", f"http://testserver{path}", data)
    response = client.post(path, data=data, headers=headers)
    assert response.status_code == 503
    assert not MessageEvent.objects.exists()
    assert "auth_token" in "\n".join(r.getMessage() for r in caplog.records)


def test_status_and_inbound_views_each_record_what_they_are_sent(make_sender, client):
    """A reply posted to the inbound URL is a reply; a delivery report posted there (one URL per application,
    as some consoles allow) is applied to its message like one posted to the status URL."""
    from messaging.models import Message
    from tests.messaging.providers.test_plivo import TestPlivoContract

    plivo = TestPlivoContract()
    sender = make_sender("plivo")
    message = plivo.sent_message(sender, "pm-both")
    inbound = reverse("messaging:webhook_inbound", args=["plivo", sender.uuid])
    report = plivo.callback(sender, provider_message_id="pm-both", raw_status="delivered",
                            url=f"http://testserver{inbound}")
    assert client.post(inbound, **report).status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered"
    reply = plivo.callback(sender, provider_message_id="pm-reply", raw_status="", url=f"http://testserver{inbound}",
                           extra={"Text": "STOP", "From": "12125550142", "To": sender.address.lstrip("+")})
    assert client.post(inbound, **reply).status_code == 200
    assert Message.objects.get(direction="inbound").body == "STOP"


@pytest.mark.parametrize("hint", ["²", "9" * 30, "-1", "12a"])
def test_a_message_hint_that_is_not_one_of_our_ids_is_ignored(make_sender, hint):
    """The ``m`` a status URL carries is only a hint: any other value is ignored, never a server error."""
    from tests.messaging.providers.test_plivo import TestPlivoContract

    plivo = TestPlivoContract()
    sender = make_sender("plivo")
    message = plivo.sent_message(sender, "pm-hint")
    path = reverse("messaging:webhook_status", args=["plivo", sender.uuid]) + f"?m={quote(hint)}"
    request = plivo.callback(sender, provider_message_id="pm-hint", raw_status="delivered",
                             url=f"http://testserver{path}")
    response = Client(raise_request_exception=False).post(path, **request)
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered"
