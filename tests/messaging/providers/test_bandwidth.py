"""Bandwidth v1 (Catapult) adapter: the shared contract plus its own cases (state with deliveryState /
deliveryCode, bulk send, tag, 403 rate limits, optional Basic auth on callbacks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from messaging.models import Message, MessageEvent, Suppression
from messaging.providers import provider_for
from messaging.providers.bandwidth import BandwidthProvider
from messaging.providers.base import (
    AmbiguousError,
    CallbackRequest,
    PermanentError,
    SenderConfig,
    SendResult,
    TransientError,
)
from tests.messaging.providers.contract import (
    ODD_ADDRESSES,
    ODD_TEXTS,
    ProviderContract,
    basic_auth,
    credentials,
    outbound_message,
)

pytestmark = pytest.mark.django_db

DELIVERY_STATES = ("waiting", "delivered", "not-delivered")


class TestBandwidthContract(ProviderContract):
    provider = "bandwidth"
    reply_phone = "+13233326955"  # the documented example's sender
    invalid_recipient = "+1"
    # docs/providers.md, Bandwidth v1: every `state`, and every `deliveryState` (which comes with state "sent").
    documented_statuses = {
        "queued": "queued",
        "sending": "sending",
        "sent": "sent",
        "error": "failed",
        "waiting": "sent",
        "delivered": "delivered",
        "not-delivered": "undelivered",
    }

    def callback(self, sender, *, provider_message_id, raw_status, url, error_code="", extra=None):
        event = {
            "eventType": "sms",
            "direction": "out",
            "messageId": provider_message_id,
            "messageUri": f"https://api.catapult.inetwork.com/v1/users/u-1/messages/{provider_message_id}",
            "from": sender.address,
            "to": self.good_recipient,
            "text": "x",
            "time": "2026-11-14T16:13:06.076Z",
            "state": raw_status,
            "segmentCount": 1,
        }
        if raw_status in DELIVERY_STATES:
            event["state"] = "sent"
            event["deliveryState"] = raw_status
            if raw_status != "waiting":
                event["deliveryCode"] = error_code or ("0" if raw_status == "delivered" else "999")
                event["deliveryDescription"] = "Message delivered to carrier" if raw_status == "delivered" else "x"
        event.update(extra or {})
        return {"data": event, "content_type": "application/json; charset=utf-8", "headers": credentials(sender)}

    def tamper(self, request):
        # Bandwidth v1 signs nothing: the callback password (Basic credentials) is the proof.
        return {**request, "headers": {"Authorization": basic_auth("", "not-the-password")}}

    delivered_status = "delivered"
    sent_status = "sent"


contract = TestBandwidthContract()


def _parse(adapter, event: dict):
    return adapter.parse_callback(CallbackRequest(method="POST", url="https://x/cb", headers={}, query=[], form=[],
                                                  json=event))


# ---- send ----


def test_send_request_as_documented(make_sender, sandbox):
    sender = make_sender("bandwidth", address="+19195551212")
    adapter = provider_for(sender)
    call = adapter.build_send(outbound_message(message_id=77))
    assert (call.method, call.path) == ("POST", f"/v1/users/{sender.credentials['user_id']}/messages")
    assert call.auth == (sender.credentials["api_token"], sender.credentials["api_secret"])
    assert call.json == {
        "from": "+19195551212",
        "to": "+12125550123",
        "text": "Hello",
        "receiptRequested": "all",
        # the sender's random callback password, embedded for Bandwidth to send back (empty user name)
        "callbackUrl": f"http://:{sender.callback_password}@127.0.0.1:9/cb",
        "callbackHttpMethod": "POST",
        "tag": "77",
    }
    result = adapter.send(outbound_message(message_id=77))
    assert result.provider_message_id.startswith("m-") and result.message_id == 77
    assert sandbox.ledger(detail=True)["messages"][0]["reference"] == "77"


def test_mms_never_requests_a_receipt(make_sender, sandbox):
    sender = make_sender("bandwidth")
    adapter = provider_for(sender)
    call = adapter.build_send(outbound_message(media=["https://example.com/a.png"]))
    assert call.json["media"] == ["https://example.com/a.png"] and "receiptRequested" not in call.json
    assert adapter.send(outbound_message(media=["https://example.com/a.png"])).provider_message_id
    # the emulator holds Bandwidth to its documentation: media and receiptRequested together are refused
    bad = outbound_message(media=["https://example.com/a.png"])
    call = adapter.build_send(bad)
    call.json["receiptRequested"] = "all"
    status, data, _ = adapter.request(call)
    assert status == 400 and data["category"] == "bad-request"


def test_text_limit_is_2048():
    adapter = BandwidthProvider.__new__(BandwidthProvider)
    assert BandwidthProvider.check_limits(adapter, "a" * 2048, []) == []
    assert BandwidthProvider.check_limits(adapter, "a" * 2049, [])


def test_rate_limit_is_a_403_with_category_limit_and_is_transient(make_sender, sandbox):
    sandbox.config(rate_429=1.0)
    adapter = provider_for(make_sender("bandwidth"))
    with pytest.raises(TransientError) as info:
        adapter.send(outbound_message())
    assert (info.value.http_status, info.value.code) == (403, "message-rate-limit")
    assert info.value.retry_after >= 1


@pytest.mark.parametrize("code", ["message-rate-limit-overall", "message-rate-limit-per-tn", "multi-message-limit"])
def test_every_documented_rate_limit_code_is_transient(code):
    adapter = BandwidthProvider.__new__(BandwidthProvider)
    error = adapter.error_for(403, {"category": "limit", "code": code, "message": "slow down"}, {})
    assert isinstance(error, TransientError) and error.retry_after == 1.0
    queue_full = adapter.error_for(400, {"category": "bad-request", "code": "message-delay-limit", "message": "full"}, {})
    assert isinstance(queue_full, TransientError)
    denied = adapter.error_for(403, {"category": "authorization", "code": "number-access-denied", "message": "no"}, {})
    assert isinstance(denied, PermanentError) and not denied.recipient_side


def test_bulk_send_of_120_in_requests_of_50_50_20_with_aligned_errors(make_sender, sandbox):
    sender = make_sender("bandwidth")
    adapter = provider_for(sender)
    bad = {7, 63, 110}  # invalid recipients, one in each request
    messages = [
        outbound_message(message_id=1000 + i, to="+1" if i in bad else f"+1212555{i:04d}") for i in range(120)
    ]
    results = []
    for start in range(0, len(messages), adapter.bulk_size):
        results += adapter.send_bulk(messages[start: start + adapter.bulk_size])
    assert len(results) == 120
    for i, (message, result) in enumerate(zip(messages, results, strict=False)):
        if i in bad:
            assert isinstance(result, PermanentError) and result.recipient_side, i
            assert result.code == "validation-error"
        else:
            assert isinstance(result, SendResult) and result.message_id == message.id, i
            assert result.provider_message_id.startswith("m-")
    assert len({r.provider_message_id for r in results if isinstance(r, SendResult)}) == 117
    ledger = sandbox.ledger(detail=True)
    assert ledger["accepted"] == 117 and ledger["duplicates"] == 0
    assert ledger["bandwidth_bulk_requests"] == 3
    assert ledger["bandwidth_bulk_size_50"] == 2 and ledger["bandwidth_bulk_size_20"] == 1
    assert {m["reference"] for m in ledger["messages"]} == {str(m.id) for i, m in enumerate(messages) if i not in bad}


def test_bulk_request_refused_as_a_whole(make_sender, sandbox):
    adapter = provider_for(make_sender("bandwidth"))
    batch = [outbound_message(message_id=i, to=f"+1212555{i:04d}") for i in range(3)]
    sandbox.config(rate_429=1.0)
    with pytest.raises(TransientError):
        adapter.send_bulk(batch)
    sandbox.config(rate_429=0.0, ambiguous=1.0)
    with pytest.raises(AmbiguousError):
        adapter.send_bulk(batch)
    assert sandbox.ledger()["accepted"] == 3
    with pytest.raises(ValueError):
        adapter.build_send_bulk([outbound_message(message_id=i) for i in range(51)])


def test_per_item_rate_limit_in_a_bulk_answer_is_transient(make_sender):
    adapter = provider_for(make_sender("bandwidth"))
    batch = [outbound_message(message_id=1), outbound_message(message_id=2), outbound_message(message_id=3)]
    answer = [
        {"result": "accepted", "location": "https://api.catapult.inetwork.com/v1/users/u-1/messages/m-one"},
        {"result": "error", "error": {"category": "limit", "code": "message-rate-limit-per-tn", "message": "slow",
                                      "details": []}},
        {"result": "error", "error": {"category": "bad-request", "code": "blank-property",
                                      "message": "The 'message' resource property 'to' must contain at least one "
                                                 "non-whitespace character", "details": []}},
    ]
    first, second, third = adapter.parse_send_bulk(batch, 202, answer, {})
    assert (first.provider_message_id, first.message_id) == ("m-one", 1)
    assert isinstance(second, TransientError) and second.retry_after
    assert isinstance(third, PermanentError) and third.recipient_side and third.code == "blank-property"
    misaligned = adapter.parse_send_bulk(batch, 202, answer[:2], {})
    assert all(isinstance(r, AmbiguousError) for r in misaligned)


def test_lookup_and_find_by_tag(make_sender, sandbox):
    sender = make_sender("bandwidth")
    adapter = provider_for(sender)
    result = adapter.send(outbound_message(message_id=500))
    event = adapter.lookup(result.provider_message_id)
    assert event.provider_message_id == result.provider_message_id and event.our_message_id == 500
    assert adapter.lookup("m-doesnotexist") is None
    adapter.send(outbound_message(message_id=501))  # same recipient, another message of ours
    sandbox.config(ambiguous=1.0)
    with pytest.raises(AmbiguousError):
        adapter.send(outbound_message(message_id=502))
    sandbox.config(ambiguous=0.0)
    since = datetime.now(UTC) - timedelta(minutes=5)
    found = adapter.find(outbound_message(message_id=502), since)
    assert found is not None and found.our_message_id == 502
    assert adapter.find(outbound_message(message_id=503), since) is None


def test_find_follows_next_links_and_is_inconclusive_past_them(make_sender, sandbox, monkeypatch):
    from messaging.providers import bandwidth
    from messaging.providers.base import LookupInconclusiveError

    sender = make_sender("bandwidth")
    adapter = provider_for(sender)
    since = datetime.now(UTC) - timedelta(minutes=5)
    for n in range(5):  # five messages of ours to the same recipient; 600 is the oldest
        adapter.send(outbound_message(message_id=600 + n))
    monkeypatch.setattr(bandwidth, "FIND_PAGE_SIZE", 2)
    found = adapter.find(outbound_message(message_id=604), since)  # on the third page: two links followed
    assert found is not None and found.our_message_id == 604
    assert adapter.find(outbound_message(message_id=699), since) is None  # every page read
    monkeypatch.setattr(bandwidth, "FIND_MAX_PAGES", 2)
    with pytest.raises(LookupInconclusiveError):
        adapter.find(outbound_message(message_id=699), since)  # a third page exists but is not read
    # a full page without a link to the next proves nothing about the rest of the window
    monkeypatch.setattr(bandwidth, "FIND_MAX_PAGES", 10)
    sandbox.config(bandwidth_omit_next_link=True)
    with pytest.raises(LookupInconclusiveError):
        adapter.find(outbound_message(message_id=699), since)
    # while a page that is not full is the end of the window, with or without a link
    monkeypatch.setattr(bandwidth, "FIND_PAGE_SIZE", 6)
    assert adapter.find(outbound_message(message_id=699), since) is None


# ---- callbacks ----


@pytest.mark.parametrize(
    "fields,status,raw_status,code",
    [
        ({"state": "queued"}, "queued", "queued", ""),
        ({"state": "sending"}, "sending", "sending", ""),
        ({"state": "sent"}, "sent", "sent", ""),
        ({"state": "sent", "deliveryState": "waiting"}, "sent", "waiting", ""),
        ({"state": "sent", "deliveryState": "delivered", "deliveryCode": "0",
          "deliveryDescription": "Message delivered to carrier"}, "delivered", "delivered", ""),
        ({"state": "sent", "deliveryState": "not-delivered", "deliveryCode": "720",
          "deliveryDescription": "Invalid destination number"}, "undelivered", "not-delivered", "720"),
        ({"state": "sent", "deliveryState": "not-delivered", "deliveryCode": 775}, "undelivered", "not-delivered", "775"),
        ({"state": "error"}, "failed", "error", ""),
        ({"state": "received", "direction": "in"}, "received", "received", ""),
        ({"state": "brand-new"}, "unknown", "brand-new", ""),
    ],
)
def test_state_delivery_state_and_code(make_sender, fields, status, raw_status, code):
    adapter = provider_for(make_sender("bandwidth"))
    [event] = _parse(adapter, {"eventType": "sms", "direction": "out", "messageId": "m-1", "tag": "9", **fields})
    assert (event.status, event.raw_status, event.error_code) == (status, raw_status, code)
    if code:
        assert event.error_message  # deliveryDescription, or the documented text for the code
    assert event.our_message_id == (None if status == "received" else 9)


def test_documented_outgoing_example(make_sender, client):
    """The documented outgoing SMS event, verbatim (docs/providers.md, Bandwidth v1: Callbacks)."""
    sender = make_sender("bandwidth")
    message = contract.sent_message(sender, "m-doc")
    event = {"eventType": "sms", "direction": "out", "messageId": "m-doc",
             "messageUri": "https://api.catapult.inetwork.com/v1/users/{userId}/messages/{messageId}",
             "from": "+13233326955", "to": "+13865245000", "text": "Example", "time": "2012-11-14T16:13:06.076Z",
             "state": "sent", "segmentCount": 1}
    response = client.post(contract.webhook_path(sender), data=event, content_type="application/json; charset=utf-8",
                           headers=credentials(sender))
    assert response.status_code == 200
    stored = MessageEvent.objects.get(provider_message_id="m-doc")
    assert (stored.status, stored.raw_status) == ("sent", "sent")
    message.refresh_from_db()
    assert message.status == "sent"


def test_documented_incoming_example_is_a_reply(make_sender, client):
    sender = make_sender("bandwidth", address="+13865245000")
    event = {"eventType": "sms", "direction": "in", "messageId": "m-in",
             "messageUri": "https://api.catapult.inetwork.com/v1/users/{userId}/messages/m-in",
             "from": "+13233326955", "to": "+13865245000", "text": "Example", "applicationId": "a-1",
             "time": "2012-11-14T16:13:06.076Z", "state": "received", "segmentCount": 1}
    assert client.post(contract.webhook_path(sender), data=event, content_type="application/json",
                       headers=credentials(sender)).status_code == 200
    reply = Message.objects.get(provider_message_id="m-in")
    assert (reply.direction, reply.status, reply.body) == ("inbound", "received", "Example")


def _adapter() -> BandwidthProvider:
    return BandwidthProvider(SenderConfig(address="+13865245000", credentials={"user_id": "u-1"},
                                          callback_password="pw-1234"))


def _received(**fields) -> dict:
    return {"eventType": "sms", "direction": "in", "messageId": "m-in", "from": "+13233326955",
            "to": "+13865245000", "text": "Example", "applicationId": "a-1", "time": "2012-11-14T16:13:06.076Z",
            "state": "received", "segmentCount": 1, **fields}


def test_a_reply_gives_who_wrote_our_number_its_text_and_its_media():
    [event] = _parse(_adapter(), _received(eventType="mms", text="Look", media=[
        "https://api.catapult.inetwork.com/v1/users/u-1/media/1.jpg", "https://media.example/2.png"]))
    assert (event.direction, event.status, event.provider_message_id) == ("inbound", "received", "m-in")
    assert (event.recipient, event.to_address, event.body) == ("+13233326955", "+13865245000", "Look")
    assert event.media_urls == ("https://api.catapult.inetwork.com/v1/users/u-1/media/1.jpg",
                                "https://media.example/2.png")
    [event] = _parse(_adapter(), _received(text=""))
    assert (event.direction, event.body, event.media_urls) == ("inbound", "", ())


@pytest.mark.parametrize("address", ODD_ADDRESSES)
@pytest.mark.parametrize("text", ODD_TEXTS)
def test_a_reply_from_any_address_parses_as_written(address, text):
    [event] = _parse(_adapter(), _received(**{"from": address, "text": text}))
    assert (event.direction, event.recipient, event.to_address, event.body) == (
        "inbound", address, "+13865245000", text)


@pytest.mark.parametrize("address", ODD_ADDRESSES)
def test_a_report_about_a_message_to_any_address_parses(address):
    [event] = _parse(_adapter(), {"eventType": "sms", "direction": "out", "messageId": "m-out",
                                  "from": "+13865245000", "to": address, "state": "sent",
                                  "deliveryState": "delivered", "deliveryCode": "0"})
    assert (event.direction, event.status, event.recipient, event.media_urls) == (
        "outbound", "delivered", address, ())


def test_opt_out_delivery_code_775_suppresses_the_recipient(make_sender, client):
    sender = make_sender("bandwidth")
    message = contract.sent_message(sender, "m-stop")
    contract.post_callback(client, sender, provider_message_id="m-stop", raw_status="not-delivered", error_code="775")
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("undelivered", "775")
    assert Suppression.objects.get(phone=message.to).opted_out


def test_callback_maps_by_tag_before_the_provider_id_is_known(make_sender, client):
    sender = make_sender("bandwidth")
    message = Message.objects.create(sender=sender, to="+12125550123", body="x", status="sending",
                                     provider_message_id="")
    request = contract.callback(sender, provider_message_id="m-early", raw_status="delivered", url="",
                                extra={"tag": str(message.pk)})
    assert client.post(contract.webhook_path(sender), **request).status_code == 200  # no ?m= hint
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == ("delivered", "m-early")


def test_get_callback_reads_the_query(make_sender, client):
    sender = make_sender("bandwidth")
    message = contract.sent_message(sender, "m-get")
    path = contract.webhook_path(sender)
    query = {"m": str(message.pk), "eventType": "sms", "direction": "out", "messageId": "m-get", "state": "sent",
             "deliveryState": "not-delivered", "deliveryCode": "750", "tag": str(message.pk)}
    assert client.get(path, data=query).status_code == 403  # the callback password is required
    assert client.get(path, data=query, headers=credentials(sender)).status_code == 200
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("undelivered", "750")


def test_basic_auth_protected_callbacks(make_sender, client):
    sender = make_sender("bandwidth", options={"callback_username": "bw"}, callback_password="s3cret-pass")
    message = contract.sent_message(sender, "m-auth")
    path = contract.webhook_path(sender)
    request = contract.callback(sender, provider_message_id="m-auth", raw_status="delivered", url="")
    request.pop("headers")
    assert client.post(path, **request).status_code == 403
    assert client.post(path, **request, headers={"Authorization": basic_auth("bw", "wrong")}).status_code == 403
    assert client.post(path, **request, headers={"Authorization": basic_auth("other", "s3cret-pass")}).status_code == 403
    message.refresh_from_db()
    assert message.status == "sent" and not MessageEvent.objects.exists()
    assert client.post(path, **request, headers={"Authorization": basic_auth("bw", "s3cret-pass")}).status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered"
    callback_url = provider_for(sender).build_send(outbound_message()).json["callbackUrl"]
    assert callback_url.startswith("http://bw:s3cret-pass@127.0.0.1:9/")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outcome", ["delivered", "undelivered", "failed"])
def test_emulator_events_reach_the_message(make_sender, sandbox, live_server, outcome):
    """The emulator's events (written from the documentation) read by the adapter over real HTTP, through
    Basic credentials embedded in the callbackUrl."""
    message = contract.send_through_emulator(make_sender, sandbox, live_server, outcome,
                                             options={"callback_username": "bw"}, callback_password="s3cret-pass")
    if outcome == "undelivered":
        assert message.error_code and message.error_message
    assert all("s3cret-pass" not in str(e.payload) for e in MessageEvent.objects.filter(message=message))
