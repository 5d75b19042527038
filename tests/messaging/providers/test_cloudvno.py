"""CloudVNO adapter: the shared contract plus CloudVNO's own cases (signature vector, the assumed callback,
error codes, no status lookup)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

import pytest
from django.urls import reverse

from messaging.models import Message, MessageEvent, Suppression
from messaging.providers import provider_for
from messaging.providers.base import (
    CallbackRequest,
    OutboundMessage,
    PermanentError,
    SenderConfig,
    SignatureError,
    TransientError,
)
from messaging.providers.cloudvno import CloudvnoProvider, signature, signed_string
from messaging.sandbox.cloudvno import sign as emulator_sign
from messaging.services import message_reconcile
from tests.messaging.providers.contract import ODD_ADDRESSES, ODD_TEXTS, ProviderContract
from tests.support import wait_until

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"


class TestCloudvnoContract(ProviderContract):
    provider = "cloudvno"
    invalid_recipient = "+1"
    # Twilio's vocabulary, as docs/providers.md assumes for CloudVNO.
    documented_statuses = {
        "accepted": "queued",
        "scheduled": "queued",
        "queued": "queued",
        "sending": "sending",
        "sent": "sent",
        "delivered": "delivered",
        "read": "delivered",
        "undelivered": "undelivered",
        "partially_delivered": "undelivered",
        "failed": "failed",
        "canceled": "failed",
        "expired": "failed",
        "receiving": "received",
        "received": "received",
    }

    def callback(self, sender, *, provider_message_id, raw_status, url, error_code="", extra=None):
        fields = {
            "MessageSid": provider_message_id,
            "SmsSid": provider_message_id,
            "MessageStatus": raw_status,
            "SmsStatus": raw_status,
            "From": sender.address,
            "To": self.good_recipient,
            "ApiVersion": "v1",
            **({"ErrorCode": error_code} if error_code else {}),
            **(extra or {}),
        }
        # the emulator's own signer, written separately from the adapter
        signed = emulator_sign(sender.credentials["webhook_secret"], url, fields)
        return {"data": urlencode(fields), "content_type": FORM, "headers": {"X-CloudVNO-Signature": signed}}

    def tamper(self, request):
        return {**request, "headers": {"X-CloudVNO-Signature": "0" * 64}}


# ---- signature ----

VECTOR_URL = "https://example.com/cloudvno/status"
VECTOR_PARAMS = {
    "MessageSid": "SM1a2b3c4d5e6f7890abcdef1234567890",
    "MessageStatus": "delivered",
    "From": "+14155551234",
    "To": "+12125559876",
}


def test_worked_signature_vector():
    """docs/providers.md, CloudVNO: computed with the documentation's snippet (not an official vector)."""
    text = signed_string(VECTOR_URL, VECTOR_PARAMS)
    assert text == (
        "https://example.com/cloudvno/statusFrom=%2B14155551234&MessageSid=SM1a2b3c4d5e6f7890abcdef1234567890"
        "&MessageStatus=delivered&To=%2B12125559876"
    )
    expected = "ecf41b3ee1d992a449b6569ab074448ab4da577d9ff5efb30d801b132e27bf54"
    assert signature("test_auth_token", text) == expected
    assert emulator_sign("test_auth_token", VECTOR_URL, VECTOR_PARAMS) == expected
    assert signature("other_token", text) != expected


def _request(headers, url=VECTOR_URL, form=(), body=b"", json_body=None):
    return CallbackRequest(method="POST", url=url, headers={k.lower(): v for k, v in headers.items()},
                           query=[], form=list(form), json=json_body, body=body)


def _adapter(secret="test_auth_token"):
    return CloudvnoProvider(SenderConfig(address="+14155551234", credentials={"api_key": "k", "webhook_secret": secret}))


def test_vector_verifies_and_any_change_is_refused():
    adapter = _adapter()
    good = "ecf41b3ee1d992a449b6569ab074448ab4da577d9ff5efb30d801b132e27bf54"
    form = list(VECTOR_PARAMS.items())
    adapter.verify_callback(_request({"X-CloudVNO-Signature": good}, form=form))
    adapter.verify_callback(_request({"X-CloudVNO-Signature": good.upper()}, form=form))
    with pytest.raises(SignatureError):
        adapter.verify_callback(_request({"X-CloudVNO-Signature": good}, form=[*form[:1], ("MessageStatus", "failed"),
                                                                                  *form[2:]]))
    with pytest.raises(SignatureError):
        adapter.verify_callback(_request({"X-CloudVNO-Signature": good}, url=VECTOR_URL + "/", form=form))
    with pytest.raises(SignatureError):
        adapter.verify_callback(_request({}, form=form))


def test_json_callback_is_signed_over_url_and_raw_body(make_sender, client):
    """Our choice for JSON bodies, where the documented scheme is undefined: URL + raw body."""
    sender = make_sender("cloudvno")
    message = TestCloudvnoContract().sent_message(sender, "SMjson")
    path = reverse("messaging:webhook_status", args=["cloudvno", sender.uuid])
    body = json.dumps({"sid": "SMjson", "status": "undelivered", "error_code": "carrier_blocked",
                       "error_message": "Blocked", "to": "+12125550123", "new_field": {"x": 1}})
    good = signature(sender.credentials["webhook_secret"], f"http://testserver{path}" + body)
    tampered = body.replace("undelivered", "delivered")
    assert client.post(path, data=tampered, content_type="application/json",
                       headers={"X-CloudVNO-Signature": good}).status_code == 403
    assert client.post(path, data=body, content_type="application/json",
                       headers={"X-CloudVNO-Signature": good}).status_code == 200
    message.refresh_from_db()
    assert (message.status, message.provider_status, message.error_code) == ("undelivered", "undelivered",
                                                                             "carrier_blocked")


# ---- the documented (assumed) callback example ----


def test_assumed_delivered_callback_example(make_sender, client):
    """docs/providers.md, CloudVNO: the (assumed) delivered callback we test against -> delivered."""
    sender = make_sender("cloudvno")
    sid = "SM1a2b3c4d5e6f7890abcdef1234567890"
    message = TestCloudvnoContract().sent_message(sender, sid)
    path = reverse("messaging:webhook_status", args=["cloudvno", sender.uuid])
    body = (f"MessageSid={sid}&SmsSid={sid}&MessageStatus=delivered&SmsStatus=delivered"
            "&From=%2B14155551234&To=%2B12125559876&ApiVersion=v1")
    signed = signature(sender.credentials["webhook_secret"],
                       f"http://testserver{path}" + urlencode(sorted(parse_qsl(body))))
    response = client.post(path, data=body, content_type=FORM, headers={"X-CloudVNO-Signature": signed})
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered" and message.provider_status == "delivered"
    event = MessageEvent.objects.get(provider_message_id=sid)
    assert event.status == "delivered" and event.payload["ApiVersion"] == "v1"


def test_unsubscribed_in_a_callback_is_an_opt_out(make_sender, client):
    contract = TestCloudvnoContract()
    sender = make_sender("cloudvno")
    message = contract.sent_message(sender, "SMoptout")
    assert contract.post_callback(client, sender, provider_message_id="SMoptout", raw_status="failed",
                                  error_code="unsubscribed").status_code == 200
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", "unsubscribed")
    assert Suppression.objects.get(phone=contract.good_recipient).opted_out


def test_inbound_message_is_recorded(make_sender, client):
    sender = make_sender("cloudvno")
    path = reverse("messaging:webhook_status", args=["cloudvno", sender.uuid])
    fields = {"MessageSid": "SMin1", "From": "+12125550999", "To": sender.address, "Body": "STOP", "NumMedia": "0"}
    signed = emulator_sign(sender.credentials["webhook_secret"], f"http://testserver{path}", fields)
    assert client.post(path, data=urlencode(fields), content_type=FORM,
                       headers={"X-CloudVNO-Signature": signed}).status_code == 200
    inbound = Message.objects.get(provider_message_id="SMin1")
    assert inbound.direction == "inbound" and inbound.body == "STOP"
    assert Suppression.objects.get(phone="+12125550999").opted_out


def _parsed(fields: dict):
    return _adapter().parse_callback(_request({}, form=list(fields.items())))


def test_an_mms_reply_gives_who_wrote_our_number_its_text_and_its_media():
    [event] = _parsed({"MessageSid": "SMmms", "From": "+12125550999", "To": "+14155551234", "Body": "Look",
                       "NumMedia": "2", "MediaUrl0": "https://media.example/0.jpg",
                       "MediaUrl1": "https://media.example/1.png"})
    assert (event.direction, event.status, event.provider_message_id) == ("inbound", "received", "SMmms")
    assert (event.recipient, event.to_address, event.body) == ("+12125550999", "+14155551234", "Look")
    assert event.media_urls == ("https://media.example/0.jpg", "https://media.example/1.png")


def test_a_reply_without_text_or_media_is_still_a_reply():
    [event] = _parsed({"MessageSid": "SMempty", "From": "+12125550999", "To": "+14155551234", "Body": "",
                       "NumMedia": "0"})
    assert (event.direction, event.body, event.media_urls) == ("inbound", "", ())


@pytest.mark.parametrize("address", ODD_ADDRESSES)
@pytest.mark.parametrize("text", ODD_TEXTS)
def test_a_reply_from_any_address_parses_as_written(address, text):
    [event] = _parsed({"MessageSid": "SModd", "From": address, "To": "+14155551234", "Body": text, "NumMedia": "0"})
    assert (event.direction, event.recipient, event.to_address, event.body) == (
        "inbound", address, "+14155551234", text)


@pytest.mark.parametrize("address", ODD_ADDRESSES)
def test_a_report_about_a_message_to_any_address_parses(address):
    [event] = _parsed({"MessageSid": "SMout", "MessageStatus": "delivered", "From": "+14155551234", "To": address})
    assert (event.direction, event.status, event.recipient, event.media_urls) == (
        "outbound", "delivered", address, ())


# ---- sending ----


def test_sms_and_mms_request_shape(make_sender, sandbox):
    sender = make_sender("cloudvno")
    adapter = provider_for(sender)
    mms = TestCloudvnoContract().outbound(sender, media_urls=("https://example.com/receipt.png",))
    call = adapter.build_send(mms)
    assert call.method == "POST" and call.path == "/v1/messages"
    assert call.headers["Authorization"] == f"Bearer {sender.credentials['api_key']}"
    assert call.json == {
        "from": sender.address,
        "to": "+12125550123",
        "body": "Hello from the contract suite",
        "media_url": ["https://example.com/receipt.png"],
        "status_callback": "http://127.0.0.1:9/cb",
    }  # validity_period left to CloudVNO's default (14400 s) unless the sender sets one
    result = adapter.send(mms)
    assert result.provider_message_id.startswith("SM") and result.status == "queued"
    media_only = adapter.build_send(TestCloudvnoContract().outbound(sender, body="", media_urls=("https://e/a.png",)))
    assert "body" not in media_only.json


def test_validity_period_from_sender_options(make_sender, sandbox):
    sender = make_sender("cloudvno", options={"validity_period": 3600})
    adapter = provider_for(sender)
    assert adapter.build_send(TestCloudvnoContract().outbound(sender)).json["validity_period"] == 3600
    assert adapter.send(TestCloudvnoContract().outbound(sender)).provider_message_id


def test_rate_limit_hint_comes_from_the_body(make_sender, sandbox):
    sandbox.config(rate_429=1.0)
    sender = make_sender("cloudvno")
    with pytest.raises(TransientError) as info:
        provider_for(sender).send(TestCloudvnoContract().outbound(sender))
    assert info.value.code == "rate_limit_exceeded" and info.value.retry_after >= 1


@pytest.mark.parametrize(
    "status,code,param,kind,recipient_side",
    [
        (400, "invalid_phone_number", "to", PermanentError, True),
        (422, "unsubscribed", "to", PermanentError, True),
        (400, "number_not_sms_capable", "to", PermanentError, True),
        (400, "number_not_sms_capable", "from", PermanentError, False),
        (400, "message_too_long", "body", PermanentError, False),
        (403, "from_number_not_owned", "from", PermanentError, False),
        (422, "carrier_blocked", None, PermanentError, False),
        (401, "unauthorized", None, PermanentError, False),
        (401, "api_key_revoked", None, PermanentError, False),
        (403, "insufficient_permissions", None, PermanentError, False),
        (429, "rate_limit_exceeded", None, TransientError, False),
        (500, "internal_error", None, TransientError, False),
        (503, "service_unavailable", None, TransientError, False),
    ],
)
def test_every_documented_error_is_classified(status, code, param, kind, recipient_side):
    body = {"error": {"code": code, "message": "text", "param": param, "doc_url": "https://cloudvno.com/x"}}
    if status == 429:
        body["retry_after"] = 7
    error = _adapter().error_for(status, body, {})
    assert type(error) is kind and error.code == code
    if kind is PermanentError:
        assert error.recipient_side is recipient_side
    if status == 429:
        assert error.retry_after == 7


def test_rate_limit_reset_header_is_the_fallback_hint():
    import time

    error = _adapter().error_for(429, {"error": {"code": "rate_limit_exceeded"}},
                                 {"x-ratelimit-reset": str(int(time.time()) + 30)})
    assert 25 <= error.retry_after <= 30


def test_unsubscribed_recipient_is_refused_recipient_side(make_sender, sandbox):
    sender = make_sender("cloudvno")
    sandbox.inbound(provider="cloudvno", to=sender.address, **{"from": "+12125550777"}, text="STOP")
    with pytest.raises(PermanentError) as info:
        provider_for(sender).send(TestCloudvnoContract().outbound(sender, to="+12125550777"))
    assert info.value.code == "unsubscribed" and info.value.recipient_side
    assert sandbox.ledger()["accepted"] == 0


def test_send_only_key_passes_the_credential_check_with_a_note(make_sender, sandbox):
    sender = make_sender("cloudvno")
    adapter = provider_for(sender)
    assert "lacks" not in adapter.check_credentials()
    sandbox.config(cloudvno_send_only_keys=[sender.credentials["api_key"]])  # messages:write only
    answer = adapter.check_credentials()
    assert "accepted the API key" in answer and "messages:read" in answer
    assert adapter.send(TestCloudvnoContract().outbound(sender)).provider_message_id  # and it still sends
    # any other refusal of the check call is still an error
    other = make_sender("cloudvno", credentials={"api_key": "invalid", "webhook_secret": "test-webhook_secret-value"})
    with pytest.raises(PermanentError):
        provider_for(other).check_credentials()


# ---- no status lookup: an ambiguous send is left for staff ----


def test_no_lookup_so_an_unconfirmed_message_waits_for_staff(make_sender):
    sender = make_sender("cloudvno")
    assert CloudvnoProvider.supports_lookup is False
    message = Message.objects.create(sender=sender, to="+12125550123", body="x", status=Message.Status.UNCONFIRMED)
    assert message_reconcile(message_id=message.pk) == "unanswerable"
    message.refresh_from_db()
    assert message.status == Message.Status.UNCONFIRMED


# ---- the emulator's callbacks reach the webhook and verify ----


@pytest.mark.django_db(transaction=True)
def test_emulator_callbacks_verify_end_to_end(make_sender, sandbox, live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    sandbox.config(outcomes_by_suffix={"0123": "delivered"})
    sender = make_sender("cloudvno")
    message = Message.objects.create(sender=sender, to="+12125550123", body="x", status=Message.Status.SENDING)
    path = reverse("messaging:webhook_status", args=["cloudvno", sender.uuid])
    outbound = OutboundMessage(id=message.pk, to="+12125550123", body="x",
                               status_callback_url=f"{live_server.url}{path}?m={message.pk}")
    result = provider_for(sender).send(outbound)
    Message.objects.filter(pk=message.pk).update(provider_message_id=result.provider_message_id, status="sent")
    wait_until(lambda: Message.objects.get(pk=message.pk).status == "delivered", timeout=10,
               message="the emulator's delivered callback")
    assert list(MessageEvent.objects.filter(message=message).values_list("raw_status", flat=True).order_by("id")) == [
        "sent", "delivered"]


def test_partially_delivered_is_undelivered(make_sender, client):
    """In Twilio's list; mapped to undelivered by our choice (docs/providers.md, CloudVNO: Statuses)."""
    contract = TestCloudvnoContract()
    sender = make_sender("cloudvno")
    message = contract.sent_message(sender, "SM-partial")
    assert contract.post_callback(client, sender, provider_message_id="SM-partial",
                                  raw_status="partially_delivered").status_code == 200
    message.refresh_from_db()
    assert (message.status, message.provider_status) == ("undelivered", "partially_delivered")
