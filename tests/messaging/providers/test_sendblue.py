"""Sendblue adapter: the shared contract plus Sendblue's own cases (was_downgraded, ERROR codes, opted_out,
lookup and list reconciliation, the documented delivered example)."""

from __future__ import annotations

import json
import urllib.request

import pytest
from django.urls import reverse

from messaging.models import Message, MessageEvent, Suppression
from messaging.providers import provider_for
from messaging.providers.base import (
    AmbiguousError,
    CallbackRequest,
    OutboundMessage,
    PermanentError,
    SenderConfig,
    TransientError,
)
from messaging.providers.sendblue import SendblueProvider
from messaging.services import message_reconcile
from tests.messaging.providers.contract import (
    ODD_ADDRESSES,
    ODD_TEXTS,
    ProviderContract,
    basic_auth,
    credentials,
)
from tests.support import wait_until

pytestmark = pytest.mark.django_db


class TestSendblueContract(ProviderContract):
    provider = "sendblue"
    invalid_recipient = "+1"
    delivered_status = "DELIVERED"
    sent_status = "SENT"
    # Every status the callback docs and the list API enum name (docs/providers.md, Sendblue: Statuses).
    documented_statuses = {
        "REGISTERED": "queued",
        "PENDING": "queued",
        "QUEUED": "queued",
        "ACCEPTED": "sending",
        "SENT": "sent",
        "SUCCESS": "sent",
        "DELIVERED": "delivered",
        "READ": "delivered",
        "ERROR": "failed",
        "DECLINED": "failed",
        "RECEIVED": "received",
    }

    def callback(self, sender, *, provider_message_id, raw_status, url, error_code="", extra=None):
        body = {
            "accountEmail": "support@sendblue.co",
            "content": "Hello world!",
            "is_outbound": True,
            "status": raw_status,
            "error_code": int(error_code) if error_code else None,
            "error_message": None,
            "message_handle": provider_message_id,
            "date_sent": "2026-11-23T10:00:00.000Z",
            "date_updated": "2026-11-23T10:00:05.000Z",
            "from_number": sender.address,
            "number": self.good_recipient,
            "to_number": self.good_recipient,
            "was_downgraded": False,
            "plan": "dedicated",
            **(extra or {}),
        }
        return {"data": json.dumps(body), "content_type": "application/json",
                "headers": {"sb-signing-secret": sender.credentials["signing_secret"]}}

    def tamper(self, request):
        return {**request, "headers": {"sb-signing-secret": "not-the-secret"}}


def _post(client, sender, body: dict, secret: str | None = None):
    path = reverse("messaging:webhook_status", args=["sendblue", sender.uuid])
    headers = {"sb-signing-secret": secret if secret is not None else sender.credentials["signing_secret"]}
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


# ---- callbacks ----


def test_documented_delivered_example(make_sender, client):
    """The documented delivered example (docs/providers.md, Sendblue: Callbacks) -> delivered."""
    sender = make_sender("sendblue")
    handle = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxx"
    message = TestSendblueContract().sent_message(sender, handle)
    example = {"accountEmail": "support@sendblue.co", "content": "Hello world!", "is_outbound": True,
               "status": "DELIVERED", "error_code": None, "error_message": None, "message_handle": handle,
               "date_sent": "2020-09-10T06:15:05.962Z", "date_updated": "2020-09-10T06:15:14.115Z",
               "from_number": "+15122164639", "number": "+19998887777", "to_number": "+19998887777",
               "was_downgraded": False, "plan": "blue"}
    assert _post(client, sender, example).status_code == 200
    message.refresh_from_db()
    assert (message.status, message.provider_status) == ("delivered", "DELIVERED")
    event = MessageEvent.objects.get(provider_message_id=handle)
    assert event.status == "delivered" and event.occurred_at.isoformat() == "2020-09-10T06:15:14.115000+00:00"


def test_downgraded_to_sms_stays_sent_without_error(make_sender, client):
    contract = TestSendblueContract()
    sender = make_sender("sendblue")
    message = contract.sent_message(sender, "h-sms")
    response = contract.post_callback(client, sender, provider_message_id="h-sms", raw_status="SENT",
                                      extra={"was_downgraded": True, "service": "SMS"})
    assert response.status_code == 200
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("sent", "")
    assert MessageEvent.objects.get(provider_message_id="h-sms").payload["was_downgraded"] is True


@pytest.mark.parametrize("code,text,expected_text", [
    ("10001", None, "Message failed to send"),
    ("5000", "Internal error while sending", "Internal error while sending"),
])
def test_error_status_keeps_code_and_text(make_sender, client, code, text, expected_text):
    contract = TestSendblueContract()
    sender = make_sender("sendblue")
    message = contract.sent_message(sender, f"h-err-{code}")
    response = contract.post_callback(client, sender, provider_message_id=f"h-err-{code}", raw_status="ERROR",
                                      error_code=code, extra={"error_message": text})
    assert response.status_code == 200
    message.refresh_from_db()
    assert (message.status, message.provider_status, message.error_code, message.error_message) == (
        "failed", "ERROR", code, expected_text)


def test_zero_error_code_is_no_error(make_sender, client):
    contract = TestSendblueContract()
    sender = make_sender("sendblue")
    message = contract.sent_message(sender, "h-zero")
    contract.post_callback(client, sender, provider_message_id="h-zero", raw_status="DELIVERED",
                           extra={"error_code": 0})
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("delivered", "")


def test_opted_out_flag_suppresses_the_recipient(make_sender, client):
    contract = TestSendblueContract()
    sender = make_sender("sendblue")
    contract.sent_message(sender, "h-opt")
    contract.post_callback(client, sender, provider_message_id="h-opt", raw_status="ERROR", error_code="10001",
                           extra={"opted_out": True})
    assert Suppression.objects.get(phone=contract.good_recipient).opted_out


def test_inbound_message_and_missing_secret(make_sender, client):
    sender = make_sender("sendblue")
    inbound = {"accountEmail": "support@sendblue.co", "content": "STOP", "is_outbound": False, "status": "RECEIVED",
               "message_handle": "h-in", "from_number": "+12125550999", "number": "+12125550999",
               "to_number": sender.address, "date_sent": "2026-11-23T10:00:00Z"}
    assert _post(client, sender, inbound, secret="").status_code == 403
    assert not Message.objects.filter(provider_message_id="h-in").exists()
    assert _post(client, sender, inbound).status_code == 200
    message = Message.objects.get(provider_message_id="h-in")
    assert message.direction == "inbound" and message.body == "STOP"
    assert Suppression.objects.get(phone="+12125550999").opted_out


def _parsed(body: dict):
    adapter = SendblueProvider(SenderConfig(address="+15122164639", credentials={"signing_secret": "s"}))
    return adapter.parse_callback(CallbackRequest(method="POST", url="https://x/cb", headers={}, query=[], form=[],
                                                  json=body))


def _received(**fields) -> dict:
    """A `receive` webhook body (the status callback's shape with is_outbound false)."""
    return {"accountEmail": "support@sendblue.co", "content": "Hi", "is_outbound": False, "status": "RECEIVED",
            "error_code": None, "message_handle": "h-in", "date_sent": "2026-11-23T10:00:00Z",
            "from_number": "+19998887777", "number": "+19998887777", "to_number": "+15122164639",
            "media_url": "", **fields}


def test_a_reply_gives_who_wrote_our_line_its_text_and_its_media():
    [event] = _parsed(_received(content="Look", media_url="https://media.example/photo.jpg"))
    assert (event.direction, event.status, event.provider_message_id) == ("inbound", "received", "h-in")
    assert (event.recipient, event.to_address, event.body) == ("+19998887777", "+15122164639", "Look")
    assert event.media_urls == ("https://media.example/photo.jpg",)
    [event] = _parsed(_received(content="", media_url=None, number=None, to_number=None,
                                sendblue_number="+15122164639"))
    # Without `number` the writer is `from_number`; without `to_number` our line is `sendblue_number`.
    assert (event.recipient, event.to_address, event.body, event.media_urls) == (
        "+19998887777", "+15122164639", "", ())


@pytest.mark.parametrize("address", ODD_ADDRESSES)
@pytest.mark.parametrize("text", ODD_TEXTS)
def test_a_reply_from_any_address_parses_as_written(address, text):
    [event] = _parsed(_received(content=text, number=address, from_number=address))
    assert (event.direction, event.recipient, event.to_address, event.body) == (
        "inbound", address, "+15122164639", text)


@pytest.mark.parametrize("address", ODD_ADDRESSES)
def test_a_report_about_a_message_to_any_address_parses(address):
    [event] = _parsed({"message_handle": "h-out", "is_outbound": True, "status": "DELIVERED", "number": address,
                       "to_number": address, "from_number": "+15122164639"})
    assert (event.direction, event.status, event.recipient, event.media_urls) == (
        "outbound", "delivered", address, ())


# ---- sending ----


def test_request_shape(make_sender, sandbox):
    sender = make_sender("sendblue", options={"send_style": "confetti"})
    adapter = provider_for(sender)
    outbound = TestSendblueContract().outbound(sender, media_urls=("https://cdn.example.com/a.png",))
    call = adapter.build_send(outbound)
    assert (call.method, call.path) == ("POST", "/api/send-message")
    assert call.headers["sb-api-key-id"] == sender.credentials["api_key_id"]
    assert call.headers["sb-api-secret-key"] == sender.credentials["api_secret_key"]
    assert call.json == {"number": "+12125550123", "from_number": sender.address,
                         "content": "Hello from the contract suite", "media_url": "https://cdn.example.com/a.png",
                         "send_style": "confetti", "status_callback": "http://127.0.0.1:9/cb"}
    result = adapter.send(outbound)
    assert result.status == "queued" and result.raw["message_handle"] == result.provider_message_id


def test_documented_limits(make_sender):
    sender = make_sender("sendblue", options={"send_style": "sparkles"})
    adapter = provider_for(sender)
    assert adapter.check_limits("a" * 18_995, []) == ["Sendblue does not know the send_style 'sparkles'."]
    assert len(adapter.check_limits("a" * 18_996, ["https://x/1.png", "https://x/2.png"])) == 3
    assert SendblueProvider.max_media == 1


def _adapter():
    return SendblueProvider(SenderConfig(address="+15122164639", credentials={
        "api_key_id": "kid", "api_secret_key": "secret", "signing_secret": "sign"}))


@pytest.mark.parametrize(
    "http,body,kind,code,recipient_side",
    [
        (400, {"status": "ERROR", "error_code": 4000, "error_message": "number '+1' is not a valid phone number"},
         PermanentError, "4000", True),
        (400, {"status": "ERROR", "error_code": 4000, "error_message": "content is required"},
         PermanentError, "4000", False),
        (400, {"status": "ERROR", "error_code": 4002, "error_message": "Blacklisted number"},
         PermanentError, "4002", True),
        (200, {"status": "ERROR", "error_code": 10001, "error_message": "Message failed to send"},
         PermanentError, "10001", False),
        # `opted_out: true` wins over the code it came with: reported as an opt-out (its cause), not a 4000.
        (400, {"status": "ERROR", "error_code": 4000, "error_message": "Recipient opted out", "opted_out": True},
         PermanentError, "opted_out", True),
        (401, {"status": "ERROR", "error_message": "Unauthorized"}, PermanentError, "", False),
        (429, {"status": "ERROR", "error_code": 4001, "error_message": "Rate limit exceeded"},
         TransientError, "4001", None),
        (200, {"status": "ERROR", "error_code": 4001, "error_message": "Rate limit exceeded"},
         TransientError, "4001", None),
        (200, {"status": "ERROR", "error_code": 5003, "error_message": "Server rate exceeded"},
         TransientError, "5003", None),
        (500, {"status": "ERROR", "error_code": 5000, "error_message": "Internal error"}, TransientError, "5000", None),
        (502, "Bad gateway", TransientError, "", None),
        (200, {"status": "ERROR", "error_code": 10002}, AmbiguousError, "10002", None),
    ],
)
def test_every_documented_error_code_is_classified(http, body, kind, code, recipient_side):
    adapter = _adapter()
    if http < 400:
        with pytest.raises(kind) as info:
            adapter.parse_send(None, http, body, {"retry-after": "3"})
        error = info.value
    else:
        error = adapter.error_for(http, body, {"retry-after": "3"})
    assert type(error) is kind and error.code == code
    if recipient_side is not None:
        assert error.recipient_side is recipient_side
    if code in ("4001", "5003") or http == 429:
        assert error.retry_after == 3


def test_rate_limit_from_the_emulator(make_sender, sandbox):
    sandbox.config(rate_429=1.0)
    sender = make_sender("sendblue")
    with pytest.raises(TransientError) as info:
        provider_for(sender).send(TestSendblueContract().outbound(sender))
    assert info.value.code == "4001" and info.value.retry_after >= 1


# ---- lookup and reconciliation ----


def test_lookup_reads_the_status(make_sender, sandbox):
    sender = make_sender("sendblue")
    adapter = provider_for(sender)
    result = adapter.send(TestSendblueContract().outbound(sender))
    event = adapter.lookup(result.provider_message_id)
    assert event.provider_message_id == result.provider_message_id
    assert event.status in ("queued", "sent", "delivered", "failed") and event.recipient == "+12125550123"
    assert adapter.lookup("00000000-0000-0000-0000-000000000000") is None


def test_ambiguous_send_is_found_in_the_message_list(make_sender, sandbox):
    sender = make_sender("sendblue")
    message = Message.objects.create(sender=sender, to="+12125550123", body="Hi there",
                                     status=Message.Status.UNCONFIRMED)
    sandbox.config(ambiguous=1.0)
    adapter = provider_for(sender)
    with pytest.raises(AmbiguousError):
        adapter.send(OutboundMessage(id=message.pk, to=message.to, body=message.body))
    sandbox.config(ambiguous=0.0)
    adapter.send(OutboundMessage(id=0, to="+12125550124", body="Hi there"))  # another recipient: not a match
    assert message_reconcile(message_id=message.pk) == "found"
    message.refresh_from_db()
    assert message.provider_message_id and message.status in ("sent", "delivered", "failed")
    handle = [m for m in sandbox.ledger(detail=True)["messages"] if m["to"] == "+12125550123"]
    assert len(handle) == 1


def test_message_never_received_is_sent_again(make_sender, sandbox):
    sender = make_sender("sendblue")
    message = Message.objects.create(sender=sender, to="+12125550123", body="Hi", status=Message.Status.UNCONFIRMED)
    assert message_reconcile(message_id=message.pk) == "resend"
    message.refresh_from_db()
    assert message.status == "errored"


# ---- the emulator's callbacks reach the webhook and verify ----


def _set_global_secret(sandbox, sender, secret):
    request = urllib.request.Request(
        f"{sandbox.url}/api/account/webhooks", method="POST",
        data=json.dumps({"type": "receive", "webhooks": [], "globalSecret": secret}).encode(),
        headers={"Content-Type": "application/json", "sb-api-key-id": sender.credentials["api_key_id"],
                 "sb-api-secret-key": sender.credentials["api_secret_key"]},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _send_with_callback(sender, live_server, to):
    message = Message.objects.create(sender=sender, to=to, body="x", status=Message.Status.SENT)
    path = reverse("messaging:webhook_status", args=["sendblue", sender.uuid])
    result = provider_for(sender).send(
        OutboundMessage(id=message.pk, to=to, body="x", status_callback_url=f"{live_server.url}{path}?m={message.pk}")
    )
    Message.objects.filter(pk=message.pk).update(provider_message_id=result.provider_message_id)
    return message


@pytest.mark.django_db(transaction=True)
def test_emulator_callbacks_verify_end_to_end(make_sender, sandbox, live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    sandbox.config(outcomes_by_suffix={"0123": "delivered"})
    message = _send_with_callback(make_sender("sendblue"), live_server, "+12125550123")
    wait_until(lambda: Message.objects.get(pk=message.pk).status == "delivered", timeout=10,
               message="the emulator's DELIVERED callback")
    raw = list(MessageEvent.objects.filter(message=message).order_by("id").values_list("raw_status", flat=True))
    assert raw == ["QUEUED", "SENT", "DELIVERED"]


@pytest.mark.django_db(transaction=True)
def test_emulator_callbacks_without_the_header_arrive_through_the_url_credentials(make_sender, sandbox, live_server,
                                                                                   settings):
    """An account with no signing secret posts status callbacks without ``sb-signing-secret``: a sender that
    asked for credentials in its callback URLs has them accepted through those, over real HTTP."""
    settings.PUBLIC_BASE_URL = live_server.url
    sandbox.config(outcomes_by_suffix={"0123": "delivered"})
    sender = make_sender("sendblue", options={"callback_verification": "url_token"},
                         credentials={"api_key_id": "acct-2", "api_secret_key": "acct-2-secret",
                                      "signing_secret": "unused-secret"})
    message = _send_with_callback(sender, live_server, "+12125550123")
    wait_until(lambda: Message.objects.get(pk=message.pk).status == "delivered", timeout=10,
               message="the emulator's DELIVERED callback")


@pytest.mark.django_db(transaction=True)
def test_global_secret_signs_callbacks_and_downgrade_stays_sent(make_sender, sandbox, live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    sandbox.config(outcomes_by_suffix={"0002": "downgraded"})
    sender = make_sender("sendblue", credentials={"api_key_id": "acct-1", "api_secret_key": "acct-1-secret",
                                                  "signing_secret": "my-global-secret"})
    assert _set_global_secret(sandbox, sender, "my-global-secret")["globalSecret"] == "my-global-secret"
    message = _send_with_callback(sender, live_server, "+12125550002")
    wait_until(lambda: MessageEvent.objects.filter(message=message, raw_status="SENT").exists(), timeout=10,
               message="the emulator's SENT callback")
    message.refresh_from_db()
    event = MessageEvent.objects.get(message=message, raw_status="SENT")
    assert message.status == "sent" and event.payload["was_downgraded"] is True and event.payload["service"] == "SMS"


# ---- status callbacks without sb-signing-secret (whether Sendblue sends it on them is undocumented) ----

contract = TestSendblueContract()


def test_a_callback_without_the_header_needs_the_url_credentials_the_sender_opted_into(make_sender, client):
    """Without ``sb-signing-secret`` a callback is refused, unless the sender asked for Basic credentials in
    its status-callback URLs (``callback_verification: url_token``): then those must come back. The sender
    uuid in the URL alone is never enough."""
    body = {"status": "DELIVERED", "message_handle": "h-url", "is_outbound": True, "number": "+12125550123",
            "error_code": None}
    strict = make_sender("sendblue")
    contract.sent_message(strict, "h-url")
    path = reverse("messaging:webhook_status", args=["sendblue", strict.uuid])
    assert client.post(path, data=json.dumps(body), content_type="application/json").status_code == 403

    lenient = make_sender("sendblue", options={"callback_verification": "url_token", "callback_username": "sb"})
    assert len(lenient.callback_password) >= 32  # given one at random when created
    message = contract.sent_message(lenient, "h-url2")
    path = reverse("messaging:webhook_status", args=["sendblue", lenient.uuid])
    body["message_handle"] = "h-url2"
    url = provider_for(lenient).build_send(contract.outbound(lenient)).json["status_callback"]
    assert url.startswith(f"http://sb:{lenient.callback_password}@127.0.0.1:9/")
    # a header that is present must still match, in constant time, whatever the option says
    assert _post(client, lenient, body, secret="not-the-secret").status_code == 403
    # the URL alone, or wrong credentials, are refused
    assert client.post(path, data=json.dumps(body), content_type="application/json").status_code == 403
    wrong = {"Authorization": basic_auth("sb", "not-the-password")}
    assert client.post(path, data=json.dumps(body), content_type="application/json", headers=wrong).status_code == 403
    message.refresh_from_db()
    assert message.status == "sent" and not MessageEvent.objects.exists()
    assert client.post(path, data=json.dumps(body), content_type="application/json",
                       headers=credentials(lenient)).status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered"
    assert lenient.callback_password not in json.dumps(MessageEvent.objects.get(message=message).payload)


def test_find_reads_every_page_of_the_window_and_is_inconclusive_past_the_cap(make_sender, sandbox, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from messaging.providers import sendblue
    from messaging.providers.base import LookupInconclusiveError

    sender = make_sender("sendblue")
    adapter = provider_for(sender)
    since = datetime.now(UTC) - timedelta(minutes=5)
    for n in range(3):
        adapter.send(contract.outbound(sender, body=f"message {n}"))
    monkeypatch.setattr(sendblue, "FIND_PAGE", 1)
    monkeypatch.setattr(sendblue, "FIND_MAX_PAGES", 2)
    with pytest.raises(LookupInconclusiveError):
        adapter.find(contract.outbound(sender, body="never sent"), since)
    monkeypatch.setattr(sendblue, "FIND_MAX_PAGES", 10)
    assert adapter.find(contract.outbound(sender, body="never sent"), since) is None
    found = adapter.find(contract.outbound(sender, body="message 0"), since)  # on the last page
    assert found is not None
    adapter.send(contract.outbound(sender, body="message 0"))  # the same text twice: which one is ours?
    with pytest.raises(LookupInconclusiveError):
        adapter.find(contract.outbound(sender, body="message 0"), since)
