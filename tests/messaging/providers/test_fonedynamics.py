"""Fone Dynamics adapter: the shared contract plus its own cases (Failed with and without Submitted, ExternalId,
leased sender, optional Basic auth on callbacks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from messaging.models import Message, MessageEvent
from messaging.providers import provider_for
from messaging.providers.base import AmbiguousError, CallbackRequest, SenderConfig
from messaging.providers.fonedynamics import FonedynamicsProvider
from tests.messaging.providers.contract import (
    ODD_ADDRESSES,
    ODD_TEXTS,
    ProviderContract,
    basic_auth,
    credentials,
    outbound_message,
)
from tests.support import wait_until

pytestmark = pytest.mark.django_db


class TestFonedynamicsContract(ProviderContract):
    provider = "fonedynamics"
    reply_phone = "+61488023555"
    invalid_recipient = "+1"
    delivered_status = "Delivered"
    sent_status = "Submitted"
    # docs/providers.md, Fone Dynamics: Statuses. "Received" is inbound (a reply), tested below; "Failed" here
    # has no Submitted time.
    documented_statuses = {
        "Processing": "queued",
        "Submitted": "sent",
        "Delivered": "delivered",
        "Failed": "failed",
    }

    def callback(self, sender, *, provider_message_id, raw_status, url, error_code="", extra=None):
        resource = {
            "MessageSid": provider_message_id,
            "AccountSid": sender.credentials["account_sid"],
            "PropertySid": sender.credentials["property_sid"],
            "From": sender.address,
            "To": self.good_recipient,
            "Text": "x",
            "Status": raw_status,
            "Direction": "Transmit",
            "Created": 1795000000,
            "Submitted": 1795000001 if raw_status in ("Submitted", "Delivered") else None,
            "Delivered": 1795000002 if raw_status == "Delivered" else None,
            "ErrorCode": error_code or None,
            **(extra or {}),
        }
        return {"data": {"Message": resource}, "content_type": "application/json", "headers": credentials(sender)}

    def tamper(self, request):
        # Fone Dynamics signs nothing: the callback password (Basic credentials) is the proof.
        return {**request, "headers": {"Authorization": basic_auth("", "not-the-password")}}


contract = TestFonedynamicsContract()


# ---- send request shape ----


def test_send_request_as_documented(make_sender):
    sender = make_sender("fonedynamics", address="+61499009990")
    call = provider_for(sender).build_send(outbound_message(message_id=77))
    assert call.method == "POST"
    assert call.path == f"/v2/Properties/{sender.credentials['property_sid']}/Messages"
    assert call.auth == (sender.credentials["account_sid"], sender.credentials["token"])
    assert call.json == {
        "From": "+61499009990",
        "To": "+12125550123",
        "Text": "Hello",
        "DeliveryReceipt": True,
        "DeliveryReceiptWebhookUri": f"http://:{sender.callback_password}@127.0.0.1:9/cb",  # its random password
        "DeliveryReceiptWebhookMethod": "POST",
        "ExternalId": "77",
    }


def test_alphanumeric_sender_is_sent_as_is(make_sender, sandbox):
    sender = make_sender("fonedynamics", address="ACME Shop")
    adapter = provider_for(sender)
    assert adapter.build_send(outbound_message()).json["From"] == "ACME Shop"
    assert adapter.send(outbound_message()).provider_message_id


def test_leased_sender_omits_from(make_sender, sandbox):
    sender = make_sender("fonedynamics", address="")
    adapter = provider_for(sender)
    assert "From" not in adapter.build_send(outbound_message()).json
    result = adapter.send(outbound_message())
    # the answer carries the number Fone Dynamics leased for this recipient
    assert result.raw["Message"]["From"].startswith("+")


def test_external_id_is_echoed_and_counted_by_the_ledger(make_sender, sandbox):
    sender = make_sender("fonedynamics")
    adapter = provider_for(sender)
    result = adapter.send(outbound_message(message_id=4242))
    assert result.raw["Message"]["ExternalId"] == "4242"
    event = adapter.lookup(result.provider_message_id)
    assert event.our_message_id == 4242 and event.provider_message_id == result.provider_message_id
    adapter.send(outbound_message(message_id=4242))  # the same message of ours sent twice
    ledger = sandbox.ledger(detail=True)
    assert ledger["duplicates"] == 1
    assert {m["reference"] for m in ledger["messages"]} == {"4242"}


def test_media_is_refused_before_queueing(make_sender):
    adapter = provider_for(make_sender("fonedynamics"))
    problems = adapter.check_limits("hi", ["https://example.com/a.png"])
    assert problems and "media" in problems[0]
    assert adapter.check_limits("hi", []) == []


def test_unknown_message_lookup_is_none(make_sender, sandbox):
    assert provider_for(make_sender("fonedynamics")).lookup("MNOSUCHMESSAGE") is None


def test_ambiguous_send_is_found_again_by_external_id(make_sender, sandbox):
    sender = make_sender("fonedynamics")
    adapter = provider_for(sender)
    adapter.send(outbound_message(message_id=901, to="+12125550901"))  # another message, not ours
    sandbox.config(ambiguous=1.0)
    with pytest.raises(AmbiguousError):
        adapter.send(outbound_message(message_id=902))
    sandbox.config(ambiguous=0.0)
    since = datetime.now(UTC) - timedelta(minutes=5)
    found = adapter.find(outbound_message(message_id=902), since)
    assert found is not None and found.our_message_id == 902
    assert adapter.find(outbound_message(message_id=903), since) is None


# ---- callbacks ----


def test_failed_with_submitted_is_undelivered_without_is_failed(make_sender, client):
    sender = make_sender("fonedynamics")
    carrier = contract.sent_message(sender, "M-carrier")
    never = contract.sent_message(sender, "M-never")
    contract.post_callback(client, sender, provider_message_id="M-carrier", raw_status="Failed", error_code="Rejected",
                           extra={"Submitted": 1795000001})
    contract.post_callback(client, sender, provider_message_id="M-never", raw_status="Failed", error_code="Expired")
    carrier.refresh_from_db()
    never.refresh_from_db()
    assert (carrier.status, carrier.provider_status, carrier.error_code) == ("undelivered", "Failed", "Rejected")
    assert (never.status, never.provider_status, never.error_code) == ("failed", "Failed", "Expired")


def test_callback_maps_by_external_id_before_the_provider_id_is_known(make_sender, client):
    sender = make_sender("fonedynamics")
    message = Message.objects.create(sender=sender, to="+12125550123", body="x", status="sending",
                                     provider_message_id="")
    path = contract.webhook_path(sender)  # no ?m= hint: ExternalId alone must find it
    request = contract.callback(sender, provider_message_id="M-early", raw_status="Delivered", url="",
                                extra={"ExternalId": str(message.pk)})
    assert client.post(path, **request).status_code == 200
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == ("delivered", "M-early")


def test_unwrapped_form_and_get_callbacks_are_read(make_sender, client):
    sender = make_sender("fonedynamics")
    path = contract.webhook_path(sender)
    for sid in ("M-json", "M-form", "M-get"):
        contract.sent_message(sender, sid)
    fields = {"Status": "Delivered", "Submitted": "1795000001", "Delivered": "1795000002"}
    auth = credentials(sender)
    assert client.post(path, data={"MessageSid": "M-json", **fields}, content_type="application/json",
                       headers=auth).status_code == 200
    assert client.post(path, data={"MessageSid": "M-form", **fields}, headers=auth).status_code == 200
    assert client.get(path, data={"MessageSid": "M-get", **fields}, headers=auth).status_code == 200
    assert set(Message.objects.filter(status="delivered").values_list("provider_message_id", flat=True)) == {
        "M-json", "M-form", "M-get"}


def test_reply_is_stored_as_inbound(make_sender, client):
    sender = make_sender("fonedynamics")
    request = contract.callback(sender, provider_message_id="M-reply", raw_status="Received", url="",
                                extra={"Direction": "Receive", "From": "+61488023555", "To": sender.address,
                                       "Text": "STOP"})
    assert client.post(contract.webhook_path(sender), **request).status_code == 200
    inbound = Message.objects.get(provider_message_id="M-reply")
    assert (inbound.direction, inbound.status, inbound.body) == ("inbound", "received", "STOP")


def _parsed(resource: dict):
    adapter = FonedynamicsProvider(SenderConfig(address="+61499009990", credentials={"account_sid": "AC1"},
                                                callback_password="pw-1234"))
    return adapter.parse_callback(CallbackRequest(method="POST", url="https://x/cb", headers={}, query=[], form=[],
                                                  json={"Message": resource}))


def _received(**fields) -> dict:
    return {"MessageSid": "M-in", "From": "+61488023555", "To": "+61499009990", "Text": "Hi", "Status": "Received",
            "Direction": "Receive", "Created": 1795000000, "Received": 1795000000, **fields}


def test_a_reply_gives_who_wrote_our_number_and_its_text_and_no_media():
    [event] = _parsed(_received())
    assert (event.direction, event.status, event.provider_message_id) == ("inbound", "received", "M-in")
    assert (event.recipient, event.to_address, event.body, event.media_urls) == (
        "+61488023555", "+61499009990", "Hi", ())


@pytest.mark.parametrize("address", ODD_ADDRESSES)
@pytest.mark.parametrize("text", ODD_TEXTS)
def test_a_reply_from_any_address_parses_as_written(address, text):
    [event] = _parsed(_received(From=address, Text=text))
    assert (event.direction, event.recipient, event.to_address, event.body) == (
        "inbound", address, "+61499009990", text)


@pytest.mark.parametrize("address", ODD_ADDRESSES)
def test_a_report_about_a_message_to_any_address_parses(address):
    [event] = _parsed({"MessageSid": "M-out", "From": "+61499009990", "To": address, "Status": "Delivered",
                       "Direction": "Transmit", "Submitted": 1795000001, "Delivered": 1795000002})
    assert (event.direction, event.status, event.recipient, event.media_urls) == (
        "outbound", "delivered", address, ())


def test_basic_auth_protected_callbacks(make_sender, client):
    sender = make_sender("fonedynamics", options={"callback_username": "fd"}, callback_password="pa55-word")
    message = contract.sent_message(sender, "M-auth")
    path = contract.webhook_path(sender)
    request = contract.callback(sender, provider_message_id="M-auth", raw_status="Delivered", url="")
    request.pop("headers")
    assert client.post(path, **request).status_code == 403
    assert client.post(path, **request, headers={"Authorization": basic_auth("fd", "wrong")}).status_code == 403
    assert client.post(path, **request, headers={"Authorization": "Bearer pa55-word"}).status_code == 403
    message.refresh_from_db()
    assert message.status == "sent" and not MessageEvent.objects.exists()
    assert client.post(path, **request, headers={"Authorization": basic_auth("fd", "pa55-word")}).status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered"
    # the credentials travel in the webhook URI we give Fone Dynamics, and never into what we store
    adapter = provider_for(sender)
    assert "://fd:pa55-word@" in adapter.build_send(outbound_message()).json["DeliveryReceiptWebhookUri"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outcome", ["delivered", "undelivered", "failed"])
def test_emulator_receipts_reach_the_message(make_sender, sandbox, live_server, outcome):
    """The emulator's webhook (written from the documentation) read by the adapter, over real HTTP, with
    Basic auth embedded in the webhook URI."""
    message = contract.send_through_emulator(make_sender, sandbox, live_server, outcome,
                                             options={"callback_username": "fd"}, callback_password="pa55-word")
    stored = MessageEvent.objects.get(message=message)
    assert "pa55-word" not in str(stored.payload)


# ---- leased sender: replies come back only through the lease's WebhookUri ----


def test_leased_send_names_our_inbound_webhook_for_replies(make_sender, settings):
    settings.PUBLIC_BASE_URL = "https://hooks.example"
    sender = make_sender("fonedynamics", address="", options={"callback_username": "fd"},
                         callback_password="pa55-word")
    payload = provider_for(sender).build_send(outbound_message()).json
    assert "From" not in payload
    assert payload["WebhookUri"] == f"https://fd:pa55-word@hooks.example/webhooks/fonedynamics/{sender.uuid}/inbound/"
    assert payload["WebhookMethod"] == "POST"
    # a sender with its own number gets replies through the number's own set-up: no lease options
    numbered = make_sender("fonedynamics", address="+61499009990")
    assert "WebhookUri" not in provider_for(numbered).build_send(outbound_message()).json


@pytest.mark.django_db(transaction=True)
def test_a_reply_to_a_leased_message_reaches_the_inbound_webhook(make_sender, sandbox, live_server, settings):
    from messaging.models import Suppression

    settings.PUBLIC_BASE_URL = live_server.url
    sender = make_sender("fonedynamics", address="", options={"callback_username": "fd"},
                         callback_password="pa55-word")
    result = provider_for(sender).send(outbound_message(to="+61488023555"))
    answer = sandbox.inbound(provider="fonedynamics", reply_to=result.provider_message_id, text="STOP")
    assert answer["forwarded"] is True
    wait_until(lambda: Message.objects.filter(sender=sender, direction="inbound").exists(), timeout=10,
               message="the reply")
    reply = Message.objects.get(sender=sender, direction="inbound")
    assert (reply.to, reply.body, reply.status) == ("+61488023555", "STOP", "received")
    assert Suppression.objects.get(phone="+61488023555").opted_out


# ---- reconciliation ----


def test_find_is_inconclusive_when_the_list_answer_is_unreadable(make_sender, sandbox, monkeypatch):
    from messaging.providers import fonedynamics
    from messaging.providers.base import LookupInconclusiveError

    sender = make_sender("fonedynamics")
    adapter = provider_for(sender)
    since = datetime.now(UTC) - timedelta(minutes=5)
    for n in range(3):
        adapter.send(outbound_message(message_id=700 + n, to=f"+6148802350{n}"))
    monkeypatch.setattr(fonedynamics, "FIND_PAGE", 1)
    monkeypatch.setattr(fonedynamics, "FIND_MAX_PAGES", 2)  # 3 messages, 2 pages of 1: the window is not covered
    with pytest.raises(LookupInconclusiveError):
        adapter.find(outbound_message(message_id=999), since)
    monkeypatch.setattr(fonedynamics, "FIND_MAX_PAGES", 10)
    assert adapter.find(outbound_message(message_id=999), since) is None
    sandbox.config(fonedynamics_list_key="Data")  # an answer of a shape we do not know
    with pytest.raises(LookupInconclusiveError):
        adapter.find(outbound_message(message_id=999), since)
    sandbox.config(fonedynamics_list_key="")  # a bare array is read
    assert adapter.find(outbound_message(message_id=999), since) is None
    assert adapter.find(outbound_message(message_id=701, to="+61488023501"), since).our_message_id == 701
