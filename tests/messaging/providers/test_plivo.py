"""Plivo adapter: the shared contract plus Plivo's own cases (signatures V2/V3, Sequence, multi-unit)."""

from __future__ import annotations

import pytest

from messaging.models import Message, MessageEvent
from messaging.providers import provider_for
from messaging.providers.base import (
    AmbiguousError,
    CallbackRequest,
    LookupInconclusiveError,
    SenderConfig,
    SignatureError,
    b64,
    hmac_sha256,
)
from messaging.providers.plivo import PlivoProvider, signature_v3_string
from messaging.sandbox.plivo import _signature_headers
from tests.messaging.providers.contract import ODD_ADDRESSES, ODD_TEXTS, ProviderContract, outbound_message
from tests.support import wait_until

pytestmark = pytest.mark.django_db


class TestPlivoContract(ProviderContract):
    provider = "plivo"
    invalid_recipient = "+12"
    documented_statuses = {
        "queued": "queued",
        "sent": "sent",
        "delivered": "delivered",
        "undelivered": "undelivered",
        "failed": "failed",
        "rejected": "failed",
        "read": "delivered",
    }

    def callback(self, sender, *, provider_message_id, raw_status, url, error_code="", extra=None):
        fields = {
            "MessageUUID": provider_message_id,
            "To": "12125550123",
            "From": sender.address.lstrip("+"),
            "Type": "sms",
            "Status": raw_status,
            "Units": "1",
            "ErrorCode": error_code or "000",
            "MessageTime": "2026-11-23 10:00:00.000000",
            **(extra or {}),
        }
        token = sender.credentials["auth_token"]
        headers = _signature_headers(token, "POST", url, fields)  # the emulator's own signer, written separately
        return {"data": fields, "headers": headers}

    def tamper(self, request):
        headers = dict(request["headers"])
        headers["X-Plivo-Signature-V3"] = b64(b"not the signature")
        headers["X-Plivo-Signature-V2"] = b64(b"not the signature")
        headers["X-Plivo-Signature-Ma-V2"] = b64(b"not the signature")
        return {**request, "headers": headers}


# ---- signatures: the official vectors of Plivo's SDKs (docs/providers.md, Plivo: Callbacks) ----

V3_TOKEN = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4"
V3_NONCE = "31627761595286130198"
V3_PARAMS = {
    "Direction": "outbound",
    "From": "19792014278",
    "ALegUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "ALegRequestUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "CallUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "RequestUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "CallStatus": "in-progress",
    "BillRate": "0.002",
    "ParentAuthID": "MANWVLYTK4ZWU1YTY4QA",
    "To": "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com",
    "SIP-H-To": "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1",
    "SessionStart": "2020-04-08 11:34:33.238707",
    "Event": "StartApp",
}
V3_URL = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml"


@pytest.mark.parametrize(
    "method,url,expected",
    [
        ("POST", V3_URL + "/?a=b&c=d", "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c="),
        ("GET", V3_URL + "/?a=b&c=d", "UBq8jAtd32wR8EK9VgxbBn4n5rpI/l1H9iN4WfSEHFQ="),
        ("POST", V3_URL, "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0="),
        ("GET", V3_URL, "i/MQsaQSAd6fiKhOh2qeeeLHZ9faldADSb3/7+Akfbc="),
    ],
)
def test_v3_official_vectors(method, url, expected):
    signed = signature_v3_string(method, url, list(V3_PARAMS.items()), V3_NONCE)
    assert b64(hmac_sha256(V3_TOKEN, signed)) == expected


def test_v2_official_vector():
    assert b64(hmac_sha256("my_auth_token", "https://answer.url" + "12345")) == (
        "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc="
    )
    assert b64(hmac_sha256("my_auth_tokens", "https://answer.url" + "12345")) != (
        "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc="
    )


def _request(headers, url="https://example.com/webhooks/plivo/x/status/", form=()):
    return CallbackRequest(method="POST", url=url, headers={k.lower(): v for k, v in headers.items()},
                           query=[], form=list(form))


def test_v2_alone_is_accepted_and_a_wrong_token_refused(make_sender):
    sender = make_sender("plivo")
    adapter = provider_for(sender)
    url = "https://example.com/webhooks/plivo/x/status/"
    good = b64(hmac_sha256(sender.credentials["auth_token"], url + "998877"))
    adapter.verify_callback(_request({"X-Plivo-Signature-V2": good, "X-Plivo-Signature-V2-Nonce": "998877"}, url))
    adapter.verify_callback(_request({"X-Plivo-Signature-Ma-V2": good, "X-Plivo-Signature-V2-Nonce": "998877"}, url))
    bad = b64(hmac_sha256("another token", url + "998877"))
    with pytest.raises(SignatureError):
        adapter.verify_callback(_request({"X-Plivo-Signature-V2": bad, "X-Plivo-Signature-V2-Nonce": "998877"}, url))
    with pytest.raises(SignatureError):
        adapter.verify_callback(_request({}, url))


def _only(headers: dict, prefix: str) -> dict:
    return {k: v for k, v in headers.items() if k.startswith(prefix)}


def test_v3_covers_the_body(make_sender):
    sender = make_sender("plivo")
    adapter = provider_for(sender)
    url = "https://example.com/webhooks/plivo/x/status/?m=5"
    form = [("MessageUUID", "u1"), ("Status", "delivered")]
    headers = _only(_signature_headers(sender.credentials["auth_token"], "POST", url, dict(form)),
                    "X-Plivo-Signature-V3")
    adapter.verify_callback(_request(headers, url, form))
    with pytest.raises(SignatureError):
        adapter.verify_callback(_request(headers, url, [("MessageUUID", "u1"), ("Status", "failed")]))


def test_v2_is_accepted_only_without_v3_and_names_its_nonce(make_sender):
    """V3 covers the URL and the fields, V2 only the URL without its query and a nonce (docs/providers.md,
    Plivo): a request that carries V3 is judged on V3 alone; V2 alone is accepted with its nonce returned, for
    the webhook to accept once."""
    sender = make_sender("plivo")
    adapter = provider_for(sender)
    url = "https://example.com/webhooks/plivo/x/status/"
    form = [("MessageUUID", "u1"), ("Status", "delivered")]
    headers = _signature_headers(sender.credentials["auth_token"], "POST", url, dict(form))
    assert adapter.verify_callback(_request(headers, url, form)) is None  # V3 valid: nothing to remember
    v2_only = {k: v for k, v in headers.items() if not k.startswith("X-Plivo-Signature-V3")}
    nonce = headers["X-Plivo-Signature-V2-Nonce"]
    assert adapter.verify_callback(_request(v2_only, url, form)) == f"plivo-v2:{nonce}"
    # a failing V3 is not rescued by a valid V2, nor is a V3 nonce without its signature
    with pytest.raises(SignatureError):
        adapter.verify_callback(_request({**headers, "X-Plivo-Signature-V3": b64(b"some other V3")}, url, form))
    with pytest.raises(SignatureError):
        adapter.verify_callback(_request({**v2_only, "X-Plivo-Signature-V3-Nonce": "1"}, url, form))
    # an Ma-V2 keyed with a main-account token we do not hold is no signature on its own
    ma_only = {"X-Plivo-Signature-Ma-V2": b64(hmac_sha256("the main account's token", url + nonce)),
               "X-Plivo-Signature-V2-Nonce": nonce}
    with pytest.raises(SignatureError):
        adapter.verify_callback(_request(ma_only, url, form))
    # a body that is not form fields is covered by no Plivo signature
    json_body = CallbackRequest(method="POST", url=url, headers={k.lower(): v for k, v in v2_only.items()},
                                query=[], form=[], json={"MessageUUID": "u1"}, body=b'{"MessageUUID": "u1"}')
    with pytest.raises(SignatureError):
        adapter.verify_callback(json_body)


def test_a_failing_v3_with_a_valid_v2_is_refused_through_the_webhook(make_sender, client):
    contract = TestPlivoContract()
    sender = make_sender("plivo")
    message = contract.sent_message(sender, "pm-v2")
    path = contract.webhook_path(sender)
    request = contract.callback(sender, url=f"http://testserver{path}", provider_message_id="pm-v2",
                                raw_status="delivered")
    request["headers"]["X-Plivo-Signature-V3"] = b64(b"not the V3")
    assert client.post(path, **request).status_code == 403
    message.refresh_from_db()
    assert message.status == "sent" and not MessageEvent.objects.exists()


def test_signature_checked_against_public_base_url_behind_a_proxy(make_sender, client, settings):
    """Plivo signed https://public.example/...; the request reaches us as http://testserver/..."""
    settings.PUBLIC_BASE_URL = "https://public.example"
    contract = TestPlivoContract()
    sender = make_sender("plivo")
    contract.sent_message(sender, "pm-9")
    path = contract.webhook_path(sender)
    request = contract.callback(sender, url=f"https://public.example{path}", provider_message_id="pm-9",
                                raw_status="delivered")
    assert client.post(path, **request).status_code == 200
    assert Message.objects.get(provider_message_id="pm-9").status == "delivered"


# ---- Plivo specifics ----


def test_sequence_orders_callbacks(make_sender, client):
    contract = TestPlivoContract()
    sender = make_sender("plivo")
    message = contract.sent_message(sender, "pm-seq")
    post = lambda status, seq: contract.post_callback(  # noqa: E731
        client, sender, provider_message_id="pm-seq", raw_status=status, extra={"Sequence": str(seq)}
    )
    assert post("undelivered", 3).status_code == 200
    assert post("sent", 2).status_code == 200  # older: ignored
    message.refresh_from_db()
    assert message.status == "undelivered" and message.last_sequence == 3
    assert MessageEvent.objects.filter(provider_message_id="pm-seq").count() == 2


def test_undelivered_keeps_error_code_and_text(make_sender, client):
    contract = TestPlivoContract()
    sender = make_sender("plivo")
    message = contract.sent_message(sender, "pm-err")
    contract.post_callback(client, sender, provider_message_id="pm-err", raw_status="undelivered", error_code="30")
    message.refresh_from_db()
    assert (message.status, message.error_code, message.error_message) == ("undelivered", "30", "Spam detected")


def test_mms_request_shape(make_sender):
    sender = make_sender("plivo")
    call = provider_for(sender).build_send(
        TestPlivoContract().outbound(sender, body="see this", media_urls=("https://example.com/a.png",))
    )
    assert call.json["type"] == "mms" and call.json["media_urls"] == ["https://example.com/a.png"]
    assert call.json["dst"] == "12125550123" and call.json["src"] == sender.address.lstrip("+")
    assert call.json["url"] and call.json["method"] == "POST"


# ---- multi-unit messages: parts reported one by one ----


def _part(sender, parent, part, parts, status, error_code="", sequence=3):
    fields = {"ParentMessageUUID": parent, "PartInfo": f"{part} of {parts}", "Units": str(parts),
              "Sequence": str(sequence)}
    return dict(provider_message_id=parent if part == 1 else f"{parent}-part{part}", raw_status=status,
                error_code=error_code, extra=fields)


def test_a_part_callback_says_which_part_of_how_many(make_sender):
    adapter = provider_for(make_sender("plivo"))
    form = [("MessageUUID", "pm-x-part2"), ("ParentMessageUUID", "pm-x"), ("PartInfo", "2 of 3"),
            ("Status", "delivered")]
    [event] = adapter.parse_callback(_request({}, form=form))
    assert (event.provider_message_id, event.part, event.parts) == ("pm-x", 2, 3)
    [whole] = adapter.parse_callback(_request({}, form=[("MessageUUID", "pm-y"), ("Status", "delivered")]))
    assert (whole.provider_message_id, whole.part, whole.parts) == ("pm-y", 1, 1)
    [odd] = adapter.parse_callback(_request({}, form=[("MessageUUID", "pm-z"), ("PartInfo", "4 of 3")]))
    assert (odd.part, odd.parts) == (1, 1)  # unreadable: taken as a whole message


def test_a_multi_unit_message_is_delivered_only_when_every_part_is(make_sender, client):
    contract = TestPlivoContract()
    sender = make_sender("plivo")
    message = contract.sent_message(sender, "pm-long")
    for part in (1, 2, 3):
        assert contract.post_callback(client, sender, **_part(sender, "pm-long", part, 3, "sent", sequence=2)).status_code == 200
    for part in (1, 3):
        assert contract.post_callback(client, sender, **_part(sender, "pm-long", part, 3, "delivered")).status_code == 200
    message.refresh_from_db()
    assert message.status == "sent"  # part 2 has not been confirmed
    assert contract.post_callback(client, sender, **_part(sender, "pm-long", 2, 3, "delivered")).status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered"
    assert MessageEvent.objects.filter(provider_message_id="pm-long").count() == 6


def test_one_undelivered_part_makes_the_message_undelivered(make_sender, client):
    contract = TestPlivoContract()
    sender = make_sender("plivo")
    message = contract.sent_message(sender, "pm-long2")
    contract.post_callback(client, sender, **_part(sender, "pm-long2", 1, 2, "delivered"))
    contract.post_callback(client, sender, **_part(sender, "pm-long2", 2, 2, "undelivered", error_code="30"))
    contract.post_callback(client, sender, **_part(sender, "pm-long2", 2, 2, "delivered", sequence=4))  # late
    message.refresh_from_db()
    assert (message.status, message.error_code, message.error_message) == ("undelivered", "30", "Spam detected")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outcome,units", [("undelivered", 5), ("delivered", 5), ("failed", 2)])
def test_emulated_multi_unit_message_reaches_the_right_final_status(make_sender, sandbox, live_server, outcome,
                                                                     units):
    """700 GSM characters are 5 units of 153 (docs/providers.md, Plivo); the emulator reports each part, ending with the
    undelivered one for an undelivered message, after the others were delivered."""
    contract = TestPlivoContract()
    body = "x" * (700 if units == 5 else 200)
    sandbox.config(**{"delivered": 0.0, "undelivered": 0.0, "failed": 0.0, outcome: 1.0})
    sender = make_sender("plivo")
    message = Message.objects.create(sender=sender, to=contract.good_recipient, body=body, status="sending")
    url = f"{live_server.url}{contract.webhook_path(sender)}?m={message.pk}"
    result = provider_for(sender).send(outbound_message(message_id=message.pk, body=body, url=url))
    Message.objects.filter(pk=message.pk).update(provider_message_id=result.provider_message_id, status="sent")
    finals = units * (2 if outcome == "failed" else 3)  # queued + final (failed), or queued + sent + final
    wait_until(lambda: MessageEvent.objects.filter(message_id=message.pk).count() >= finals, timeout=15,
               message="every part's callbacks")
    message.refresh_from_db()
    assert message.status == outcome
    parts = {e.payload["PartInfo"] for e in MessageEvent.objects.filter(message_id=message.pk)}
    assert parts == {f"{n} of {units}" for n in range(1, units + 1)}
    assert provider_for(sender).lookup(result.provider_message_id).raw["units"] == units


@pytest.mark.parametrize(
    "text,accepted",
    [("a" * 1600, True), ("a" * 1601, False), ("é" * 737, True), ("😀" * 738, False), ("€" * 1600, True)],
    ids=["gsm 1600", "gsm 1601", "gsm accents 737", "ucs2 738", "gsm extension 1600"],
)
def test_emulator_enforces_the_documented_text_limits(make_sender, sandbox, text, accepted):
    from messaging.providers.base import PermanentError

    adapter = provider_for(make_sender("plivo"))
    if accepted:
        assert adapter.send(outbound_message(body=text)).provider_message_id
    else:
        with pytest.raises(PermanentError) as info:
            adapter.send(outbound_message(body=text))
        assert info.value.http_status == 400 and "exceeds the limit" in info.value.message
        assert sandbox.ledger()["accepted"] == 0


# ---- rate limits: no Retry-After is documented ----


def test_a_429_without_retry_after_waits_the_default(make_sender, sandbox):
    from messaging.providers.base import TransientError

    adapter = provider_for(make_sender("plivo"))
    sandbox.config(rate_429=1.0)
    with pytest.raises(TransientError) as info:
        adapter.send(outbound_message())
    assert info.value.rate_limited and info.value.retry_after == PlivoProvider.default_retry_after
    sandbox.config(sender_mps=0.2, rate_429=0.0, undocumented_retry_after=True)  # the hint, when there is one
    adapter.send(outbound_message())
    adapter.send(outbound_message())  # the limiter tolerates two back to back
    with pytest.raises(TransientError) as info:
        adapter.send(outbound_message())
    assert info.value.retry_after >= 2


# ---- reconciliation: find proves absence or says it cannot tell ----


def test_find_matches_recipient_sender_and_window(make_sender, sandbox):
    from datetime import UTC, datetime, timedelta

    sender = make_sender("plivo")
    other_line = make_sender("plivo")  # same account (same auth_id), another number
    adapter = provider_for(sender)
    provider_for(other_line).send(outbound_message(to="+12125550777"))
    since = datetime.now(UTC) - timedelta(minutes=5)
    assert adapter.find(outbound_message(to="+12125550777"), since) is None  # sent, but from the other line
    sandbox.config(ambiguous=1.0)
    with pytest.raises(AmbiguousError):
        adapter.send(outbound_message(to="+12125550777"))
    sandbox.config(ambiguous=0.0)
    found = adapter.find(outbound_message(to="+12125550777"), since)
    assert found is not None and found.recipient == "+12125550777"
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert adapter.find(outbound_message(to="+12125550777"), later) is None  # outside the window


def test_find_is_inconclusive_past_the_page_cap_or_with_two_candidates(make_sender, sandbox, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from messaging.providers import plivo

    sender = make_sender("plivo")
    adapter = provider_for(sender)
    since = datetime.now(UTC) - timedelta(minutes=5)
    for n in range(5):
        adapter.send(outbound_message(to=f"+1212555080{n}"))
    monkeypatch.setattr(plivo, "FIND_MAX_PAGES", 0)  # one page of 20 would be read if the cap allowed it
    with pytest.raises(LookupInconclusiveError):
        adapter.find(outbound_message(to="+12125550999"), since)
    monkeypatch.setattr(plivo, "FIND_MAX_PAGES", 50)
    assert adapter.find(outbound_message(to="+12125550999"), since) is None  # every page read: surely absent
    adapter.send(outbound_message(to="+12125550801"))  # a second message to the same recipient
    with pytest.raises(LookupInconclusiveError):
        adapter.find(outbound_message(to="+12125550801"), since)


def test_powerpack_replaces_src(make_sender):
    sender = make_sender("plivo", options={"powerpack_uuid": "pp-123"})
    call = provider_for(sender).build_send(TestPlivoContract().outbound(sender))
    assert call.json["powerpack_uuid"] == "pp-123" and "src" not in call.json


def test_documented_limits():
    adapter = PlivoProvider.__new__(PlivoProvider)
    assert PlivoProvider.check_limits(adapter, "a" * 1600, []) == []
    assert PlivoProvider.check_limits(adapter, "a" * 1601, [])
    assert PlivoProvider.check_limits(adapter, "é" * 740 + "😀", [])  # non-GSM text: 737 max
    assert PlivoProvider.check_limits(adapter, "€[]" * 500, []) == []  # the GSM-7 extension table is GSM-7
    assert PlivoProvider.check_limits(adapter, "hi", [f"https://x/{i}.png" for i in range(11)])


def test_lookup_reads_the_message_record(make_sender, sandbox):
    sender = make_sender("plivo")
    adapter = provider_for(sender)
    result = adapter.send(TestPlivoContract().outbound(sender))
    event = adapter.lookup(result.provider_message_id)
    assert event.provider_message_id == result.provider_message_id
    assert event.status in ("queued", "sent", "delivered", "undelivered", "failed")
    assert adapter.lookup("00000000-0000-0000-0000-000000000000") is None


# ---- replies ----


def _parsed(fields: dict):
    adapter = PlivoProvider(SenderConfig(address="+14155550100", credentials={"auth_id": "a", "auth_token": "t"}))
    request = CallbackRequest(method="POST", url="https://example.com/webhooks/plivo/x/inbound/", headers={},
                              query=[], form=list(fields.items()))
    return adapter.parse_callback(request)


def test_an_mms_reply_gives_who_wrote_our_number_its_text_and_its_media():
    [event] = _parsed({"MessageUUID": "in-mms", "From": "14155550123", "To": "14155550100", "Type": "mms",
                       "Body": "Look at this", "MediaCount": "2", "Media1": "https://media.example/1.jpg",
                       "Media2": "https://media.example/2.png", "MessageIntent": "", "Units": "1"})
    assert (event.direction, event.status, event.provider_message_id) == ("inbound", "received", "in-mms")
    # As Plivo writes them: numbers without "+".
    assert (event.recipient, event.to_address, event.body) == ("14155550123", "14155550100", "Look at this")
    assert event.media_urls == ("https://media.example/1.jpg", "https://media.example/2.png")


def test_an_sms_reply_has_no_media_and_an_empty_one_is_still_a_reply():
    [event] = _parsed({"MessageUUID": "in-sms", "From": "14155550123", "To": "14155550100", "Type": "sms",
                       "Text": "", "Units": "1"})
    assert (event.direction, event.status, event.body, event.media_urls) == ("inbound", "received", "", ())
    [event] = _parsed({"MessageUUID": "in-media-only", "From": "14155550123", "To": "14155550100", "Type": "mms",
                       "MediaCount": "1", "Media1": "https://media.example/1.jpg"})
    assert (event.direction, event.body, event.media_urls) == ("inbound", "", ("https://media.example/1.jpg",))


def test_media_fields_beyond_the_count_are_read_in_order():
    [event] = _parsed({"MessageUUID": "in-3", "From": "1", "To": "2", "Body": "", "MediaCount": "1",
                       "Media10": "https://m/10", "Media2": "https://m/2", "Media1": "https://m/1"})
    assert event.media_urls == ("https://m/1", "https://m/2", "https://m/10")


@pytest.mark.parametrize("address", ODD_ADDRESSES)
@pytest.mark.parametrize("text", ODD_TEXTS)
def test_a_reply_from_any_address_parses_as_written(address, text):
    [event] = _parsed({"MessageUUID": "in-odd", "From": address, "To": "14155550100", "Type": "sms", "Text": text})
    assert (event.direction, event.recipient, event.to_address, event.body) == (
        "inbound", address, "14155550100", text)


@pytest.mark.parametrize("address", ODD_ADDRESSES)
def test_a_report_about_a_message_to_any_address_parses(address):
    [event] = _parsed({"MessageUUID": "out-odd", "From": "14155550100", "To": address, "Status": "delivered",
                       "ErrorCode": "000"})
    assert (event.direction, event.status, event.media_urls, event.to_address) == ("outbound", "delivered", (), "")
