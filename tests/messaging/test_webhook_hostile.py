"""Hostile callbacks, over Django's test client and the real database: bodies malformed, oversized, deeply
nested, wrongly encoded, unsigned, wrongly signed, replayed or validly signed with values no provider sends. The
webhook never answers 5xx for them, never changes anything without a valid signature, and a valid signature
never lets a report move a message the provider does not have."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.models import STATUS_RANK, CallbackNonce, ConsentEvent, Message, MessageEvent, Suppression
from messaging.providers import PROVIDERS
from messaging.sandbox.cloudvno import sign as cloudvno_sign
from messaging.sandbox.plivo import _signature_headers as plivo_headers
from messaging.services import messages_sweep
from tests.messaging.providers.contract import basic_auth, credentials

pytestmark = pytest.mark.django_db

S = Message.Status
PROVIDER_CODES = sorted(PROVIDERS)
HYPOTHESIS = settings(max_examples=60, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# The fields each provider's callbacks carry (docs/providers.md), so that generated bodies reach the parsers.
FIELDS = {
    "plivo": ["MessageUUID", "ParentMessageUUID", "Status", "ErrorCode", "Sequence", "PartInfo", "To", "From",
              "Text", "Body", "MessageTime", "DeliveryReportTime", "SentTime"],
    "cloudvno": ["MessageSid", "SmsSid", "sid", "MessageStatus", "status", "ErrorCode", "error_code", "Body",
                 "NumMedia", "From", "To", "date_updated"],
    "sendblue": ["message_handle", "status", "is_outbound", "error_code", "error_message", "content", "number",
                 "from_number", "to_number", "date_updated", "opted_out"],
    "bandwidth": ["messageId", "messageUri", "state", "deliveryState", "deliveryCode", "deliveryDescription",
                  "direction", "tag", "from", "to", "text", "time"],
    "fonedynamics": ["MessageSid", "Status", "Direction", "ErrorCode", "ExternalId", "Submitted", "Delivered",
                     "Created", "Text", "To", "From", "Message"],
}
STATUS_WORDS = ["delivered", "DELIVERED", "Delivered", "undelivered", "failed", "sent", "queued", "received",
                "error", "not-delivered", "Received", "Receive", "in", "out", "STOP", "stop", "ERROR", "READ"]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded",
                 "application/x-www-form-urlencoded; charset=latin-1", "multipart/form-data; boundary=b",
                 "multipart/form-data", "text/plain", "application/xml", "", "application/json; charset=bogus"]


# ---- what the database holds, to tell whether a request changed anything ----


def snapshot() -> tuple:
    return (
        tuple(Message.objects.order_by("pk").values_list("pk", "status", "provider_message_id", "direction", "body",
                                                         "error_code", "delivered_at")),
        tuple(MessageEvent.objects.order_by("pk").values_list("pk", "applied", "message_id")),
        tuple(ConsentEvent.objects.order_by("pk").values_list("pk", "phone", "action")),
        tuple(Suppression.objects.order_by("pk").values_list("phone", "opted_out")),
        CallbackNonce.objects.count(),
    )


def messages_of_every_kind(sender) -> dict[str, Message]:
    """One outbound message in each state a report may or may not touch."""
    def make(status, provider_id="", **fields):
        return Message.objects.create(sender=sender, to="+12125550123", body="x", status=status,
                                      provider_message_id=provider_id, **fields)
    return {
        "queued": make(S.QUEUED),
        "queued_stale_id": make(S.QUEUED, "pm-stale"),  # an id left from an earlier attempt
        "errored": make(S.ERRORED),
        "canceled": make(S.CANCELED),
        "sending": make(S.SENDING),
        "unconfirmed": make(S.UNCONFIRMED),
        "sent": make(S.SENT, "pm-known"),
    }


def check_no_message_moved_wrongly(before: dict[int, tuple[str, str]]) -> None:
    """Messages the provider does not have keep their status and id; the others only move forward."""
    for pk, status, provider_id in Message.objects.filter(pk__in=before).values_list("pk", "status",
                                                                                   "provider_message_id"):
        old_status, old_id = before[pk]
        if old_status in (S.QUEUED, S.ERRORED, S.CANCELED):
            assert (status, provider_id) == (old_status, old_id), (old_status, status, provider_id)
        else:
            assert STATUS_RANK[status] >= STATUS_RANK[old_status], (old_status, status)
            assert not old_id or provider_id == old_id


def states(messages: dict[str, Message]) -> dict[int, tuple[str, str]]:
    return dict((pk, (status, pid)) for pk, status, pid in Message.objects.filter(
        pk__in=[m.pk for m in messages.values()]).values_list("pk", "status", "provider_message_id"))


# ---- generated bodies ----

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40), st.sampled_from(STATUS_WORDS),
    st.sampled_from(["pm-known", "pm-stale", "1 of 2", "99999 of 99999", "0", "000", "200", "775", "+12125550123",
                     "12125550123", "2026-11-23 10:00:00.000000", "1795000001", "9" * 40, "-1", "²", "x" * 500]),
)
json_values = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=12)


def field_dicts(provider: str, values=json_values):
    return st.dictionaries(st.sampled_from(FIELDS[provider]) | st.text(max_size=8), values, max_size=8)


def form_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def raw_bodies(provider: str):
    """Bytes of every hostile kind."""
    deep = st.integers(min_value=1, max_value=3000)
    return st.one_of(
        st.binary(max_size=600),
        json_values.map(lambda v: json.dumps(v).encode()),
        field_dicts(provider).map(lambda d: json.dumps(d).encode()),
        field_dicts(provider).map(lambda d: urlencode({k: form_text(v) for k, v in d.items()}).encode()),
        deep.map(lambda n: b"[" * n + b"]" * n),
        deep.map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
        deep.map(lambda n: b'{"x": "' + b"[" * n + b'"}'),  # brackets inside a string are not nesting
        st.text(max_size=200).map(lambda t: t.encode("utf-16")),
        st.text(max_size=200).map(lambda t: t.encode("latin-1", "replace") + b"\xff\xfe"),
        st.sampled_from([
            b'{"MessageUUID": "\\u0000", "Status": "delivered"}', b'{"message_handle": "\\ud800"}',
            b'{"status": NaN}', b'{"status": 1e999}', b'{"Sequence": ' + b"9" * 5000 + b"}", b"null", b"[]",
            b'"text"', b"12", b"\xef\xbb\xbf{}", b"MessageUUID=pm-known&Status=delivered&Text=%00",
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--b--\r\n", b"a=" + b"&a=" * 1500,
        ]),
    )


def wrong_headers(provider: str):
    names = {
        "plivo": ["X-Plivo-Signature-V2", "X-Plivo-Signature-V2-Nonce", "X-Plivo-Signature-Ma-V2",
                  "X-Plivo-Signature-V3", "X-Plivo-Signature-V3-Nonce"],
        "cloudvno": ["X-CloudVNO-Signature"],
        "sendblue": ["sb-signing-secret", "Authorization"],
        "bandwidth": ["Authorization"],
        "fonedynamics": ["Authorization"],
    }[provider]
    value = st.one_of(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
                      st.sampled_from(["Basic " + base64.b64encode(b":").decode(), basic_auth("", "guess"),
                                       "Basic !!!", "Bearer x", "0" * 64]))
    return st.dictionaries(st.sampled_from(names), value, max_size=len(names))


def post(client, path: str, body: bytes, content_type: str, headers: dict, method: str = "POST"):
    return client.generic(method, path, data=body, content_type=content_type, headers=headers)


# ---- properties ----


@pytest.mark.parametrize("provider", PROVIDER_CODES)
def test_an_unsigned_or_wrongly_signed_callback_never_errs_nor_changes_anything(make_sender, provider):
    sender = make_sender(provider)
    messages_of_every_kind(sender)
    client = Client(raise_request_exception=False)
    paths = [reverse("messaging:webhook_status", args=[provider, sender.uuid]),
             reverse("messaging:webhook_inbound", args=[provider, sender.uuid])]

    @HYPOTHESIS
    @given(body=raw_bodies(provider), content_type=st.sampled_from(CONTENT_TYPES), headers=wrong_headers(provider),
           path=st.sampled_from(paths), query=st.sampled_from(["", "?m=1", "?m=2", "?m=%FF", "?m=" + "9" * 40]),
           method=st.sampled_from(["POST", "POST", "GET"]))
    def check(body, content_type, headers, path, query, method):
        before = snapshot()
        response = post(client, path + query, body, content_type, headers, method)
        assert response.status_code < 500, (response.status_code, body[:200])
        assert response.status_code != 200, body[:200]
        assert snapshot() == before
        answers.append(response.status_code)

    answers: list[int] = []
    check()
    assert len(answers) >= 50 and {400, 403} <= set(answers)  # the bodies reached both refusals


def signed(sender, provider: str, url: str, fields: dict, as_json: bool) -> dict:
    """Keyword arguments for the test client: ``fields`` as the provider would send them, validly signed."""
    if provider == "plivo":  # always a form
        form = {k: form_text(v) for k, v in fields.items()}
        return {"data": urlencode(form), "content_type": "application/x-www-form-urlencoded",
                "headers": plivo_headers(sender.credentials["auth_token"], "POST", url, form)}
    if provider == "cloudvno":
        secret = sender.credentials["webhook_secret"]
        if as_json:
            body = json.dumps(fields)
            mac = hmac.new(secret.encode(), url.encode() + body.encode(), hashlib.sha256).hexdigest()
            return {"data": body, "content_type": "application/json", "headers": {"X-CloudVNO-Signature": mac}}
        form = {k: form_text(v) for k, v in fields.items()}
        return {"data": urlencode(form), "content_type": "application/x-www-form-urlencoded",
                "headers": {"X-CloudVNO-Signature": cloudvno_sign(secret, url, form)}}
    if provider == "sendblue":
        headers = {"sb-signing-secret": sender.credentials["signing_secret"]}
    else:
        headers = credentials(sender)
    if as_json:
        return {"data": json.dumps(fields), "content_type": "application/json", "headers": headers}
    return {"data": urlencode({k: form_text(v) for k, v in fields.items()}),
            "content_type": "application/x-www-form-urlencoded", "headers": headers}


@pytest.mark.parametrize("provider", PROVIDER_CODES)
def test_a_validly_signed_callback_with_hostile_values_never_errs_nor_moves_what_the_provider_lacks(
    make_sender, provider
):
    sender = make_sender(provider)
    messages = messages_of_every_kind(sender)
    ids = [str(m.pk) for m in messages.values()]
    client = Client(raise_request_exception=False)
    status_path = reverse("messaging:webhook_status", args=[provider, sender.uuid])
    inbound_path = reverse("messaging:webhook_inbound", args=[provider, sender.uuid])
    values = st.one_of(json_values, st.sampled_from(ids + ["pm-known", "pm-stale"]))

    @HYPOTHESIS
    @given(fields=field_dicts(provider, values), as_json=st.booleans(), inbound=st.booleans(),
           hint=st.sampled_from(["", *ids]))
    def check(fields, as_json, inbound, hint):
        path = inbound_path if inbound else status_path + (f"?m={hint}" if hint else "")
        before = states(messages)
        response = client.post(path, **signed(sender, provider, f"http://testserver{path}", fields, as_json))
        assert response.status_code in (200, 400), (response.status_code, fields)
        check_no_message_moved_wrongly(before)
        answers.append(response.status_code)

    answers: list[int] = []
    check()
    assert len(answers) >= 50 and 200 in answers
    assert MessageEvent.objects.exists()  # signed reports were read and stored


# ---- Plivo V2: the URL and a nonce only ----


def _plivo_v2_only(sender, url: str, fields: dict) -> dict:
    headers = plivo_headers(sender.credentials["auth_token"], "POST", url, fields)
    return {k: v for k, v in headers.items() if not k.startswith("X-Plivo-Signature-V3")}


def test_a_captured_plivo_v2_callback_replayed_is_refused(make_sender, client):
    """V2 covers the URL and a nonce, not the fields: a captured V2 request could carry any body. Each nonce is
    accepted once: the same request again, or its headers over another body, are refused."""
    sender = make_sender("plivo")
    message = Message.objects.create(sender=sender, to="+12125550123", body="x", status=S.SENT,
                                     provider_message_id="pm-v2")
    path = reverse("messaging:webhook_status", args=["plivo", sender.uuid])
    fields = {"MessageUUID": "pm-v2", "Status": "sent", "To": "12125550123", "ErrorCode": "000"}
    headers = _plivo_v2_only(sender, f"http://testserver{path}", fields)
    assert client.post(path, data=fields, headers=headers).status_code == 200
    assert CallbackNonce.objects.filter(sender=sender).count() == 1
    before = snapshot()
    assert client.post(path, data=fields, headers=headers).status_code == 403
    forged = {**fields, "Status": "undelivered", "ErrorCode": "200"}  # 200 would be an opt-out
    assert client.post(path, data=forged, headers=headers).status_code == 403
    assert snapshot() == before
    message.refresh_from_db()
    assert message.status == S.SENT and not Suppression.objects.exists()

    # a reply signed with V2: recorded once; its headers replayed over an opt-in change nothing
    inbound = reverse("messaging:webhook_inbound", args=["plivo", sender.uuid])
    stop = {"MessageUUID": "pm-stop", "From": "12125550123", "To": "14155550100", "Text": "STOP"}
    reply_headers = _plivo_v2_only(sender, f"http://testserver{inbound}", stop)
    assert client.post(inbound, data=stop, headers=reply_headers).status_code == 200
    assert Suppression.objects.get(phone="+12125550123").opted_out
    after_stop = snapshot()
    start = {**stop, "MessageUUID": "pm-start", "Text": "START"}
    assert client.post(inbound, data=start, headers=reply_headers).status_code == 403
    assert snapshot() == after_stop


def test_a_v2_callback_whose_applying_failed_is_accepted_when_retried(make_sender, settings):
    """The nonce is remembered in the transaction that applies the callback: a 500 forgets it, so the
    provider's retry (same nonce) is accepted."""
    sender = make_sender("plivo")
    message = Message.objects.create(sender=sender, to="+12125550123", body="x", status=S.SENT,
                                     provider_message_id="pm-retry")
    path = reverse("messaging:webhook_status", args=["plivo", sender.uuid])
    fields = {"MessageUUID": "pm-retry", "Status": "delivered", "To": "12125550123"}
    headers = _plivo_v2_only(sender, f"http://testserver{path}", fields)
    client = Client(raise_request_exception=False)
    from django.db import connection

    with connection.cursor() as cursor:  # the message's event table is briefly unusable: applying fails
        cursor.execute("ALTER TABLE messaging_messageevent RENAME TO messaging_messageevent_away")
    try:
        # 500; 503 on SQLite, whose driver calls a missing table an OperationalError, as it does a locked
        # database (an error the provider's retry may not meet): either way the provider tries again.
        assert client.post(path, data=fields, headers=headers).status_code in (500, 503)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE messaging_messageevent_away RENAME TO messaging_messageevent")
    assert not CallbackNonce.objects.exists()
    assert client.post(path, data=fields, headers=headers).status_code == 200
    message.refresh_from_db()
    assert message.status == S.DELIVERED


def test_the_sweep_forgets_nonces_past_the_replay_window(make_sender, settings):
    settings.CALLBACK_REPLAY_WINDOW_SECONDS = 3600
    sender = make_sender("plivo")
    now = timezone.now()
    CallbackNonce.objects.create(sender=sender, nonce="plivo-v2:old", seen_at=now - timedelta(seconds=3601))
    CallbackNonce.objects.create(sender=sender, nonce="plivo-v2:new", seen_at=now - timedelta(seconds=3500))
    assert messages_sweep()["nonces_forgotten"] == 1
    assert list(CallbackNonce.objects.values_list("nonce", flat=True)) == ["plivo-v2:new"]


# ---- a report moves only what the provider has ----


def _report(provider: str):
    from tests.messaging.providers import (
        test_bandwidth,
        test_cloudvno,
        test_fonedynamics,
        test_plivo,
        test_sendblue,
    )

    return {"bandwidth": test_bandwidth.TestBandwidthContract, "cloudvno": test_cloudvno.TestCloudvnoContract,
            "fonedynamics": test_fonedynamics.TestFonedynamicsContract, "plivo": test_plivo.TestPlivoContract,
            "sendblue": test_sendblue.TestSendblueContract}[provider]()


@pytest.mark.parametrize("provider", PROVIDER_CODES)
def test_a_validly_signed_report_cannot_deliver_or_bind_a_message_never_sent(make_sender, client, provider):
    """``?m=`` names a queued message (and Bandwidth's tag, Fone Dynamics' ExternalId echo it too): it stays
    queued without a provider id; the report is kept until a message of ours gets that id."""
    contract = _report(provider)
    sender = make_sender(provider)
    queued = Message.objects.create(sender=sender, to=contract.good_recipient, body="x", status=S.QUEUED)
    stale = Message.objects.create(sender=sender, to=contract.good_recipient, body="x", status=S.ERRORED,
                                   provider_message_id="pm-old")
    path = reverse("messaging:webhook_status", args=[provider, sender.uuid]) + f"?m={queued.pk}"
    echo = {"bandwidth": {"tag": str(queued.pk)}, "fonedynamics": {"ExternalId": str(queued.pk)}}.get(provider, {})
    for provider_id in ("pm-forged", "pm-old"):
        request = contract.callback(sender, url=f"http://testserver{path}", provider_message_id=provider_id,
                                    raw_status=contract.delivered_status, extra=echo)
        assert client.post(path, **request).status_code == 200
    queued.refresh_from_db()
    stale.refresh_from_db()
    assert (queued.status, queued.provider_message_id, queued.delivered_at) == (S.QUEUED, "", None)
    assert (stale.status, stale.provider_message_id) == (S.ERRORED, "pm-old")
    assert not MessageEvent.objects.filter(message=queued).exists()


@pytest.mark.parametrize("status", [S.SENDING, S.UNCONFIRMED])
def test_a_report_about_a_send_under_way_or_unconfirmed_binds_its_id_and_moves_it(make_sender, client, status):
    """The provider may have answered after its callback, or its answer was lost: such a message is the
    provider's to report on."""
    contract = _report("plivo")
    sender = make_sender("plivo")
    message = Message.objects.create(sender=sender, to=contract.good_recipient, body="x", status=status)
    path = reverse("messaging:webhook_status", args=["plivo", sender.uuid]) + f"?m={message.pk}"
    request = contract.callback(sender, url=f"http://testserver{path}", provider_message_id="pm-early",
                                raw_status="delivered")
    assert client.post(path, **request).status_code == 200
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (S.DELIVERED, "pm-early")


def test_reports_only_move_forward(make_sender, client):
    contract = _report("sendblue")
    sender = make_sender("sendblue")
    message = contract.sent_message(sender, "h-fwd")
    for raw in ("DELIVERED", "SENT", "QUEUED", "ERROR"):
        assert contract.post_callback(client, sender, provider_message_id="h-fwd", raw_status=raw).status_code == 200
        message.refresh_from_db()
        assert message.status == S.DELIVERED


# ---- providers that sign nothing: the callback password ----


@pytest.mark.parametrize("provider", ["bandwidth", "fonedynamics"])
def test_callbacks_without_the_callback_password_are_refused(make_sender, client, provider):
    contract = _report(provider)
    sender = make_sender(provider)
    assert len(sender.callback_password) >= 32  # every new sender gets one at random
    message = contract.sent_message(sender, "pm-auth")
    path = reverse("messaging:webhook_status", args=[provider, sender.uuid])
    request = contract.callback(sender, url="", provider_message_id="pm-auth", raw_status=contract.delivered_status)
    request.pop("headers")
    for headers in ({}, {"Authorization": basic_auth("", "")}, {"Authorization": basic_auth("", "x")}):
        assert client.post(path, **request, headers=headers).status_code == 403
    # a sender made before the rule, without a password: nothing opens its callbacks any more
    type(sender).objects.filter(pk=sender.pk).update(callback_password="")
    sender.refresh_from_db()
    for headers in ({}, {"Authorization": basic_auth("", "")}, credentials(sender)):
        assert client.post(path, **request, headers=headers).status_code == 403
    inbound = reverse("messaging:webhook_inbound", args=[provider, sender.uuid])
    stop = contract.callback(sender, url="", provider_message_id="pm-stop", raw_status="Received" if provider ==
                             "fonedynamics" else "received",
                             extra={"Direction": "Receive", "direction": "in", "From": "+12125550123",
                                    "from": "+12125550123", "Text": "STOP", "text": "STOP"})
    stop.pop("headers")
    assert client.post(inbound, **stop).status_code == 403
    message.refresh_from_db()
    assert message.status == S.SENT and not MessageEvent.objects.exists() and not ConsentEvent.objects.exists()


def test_a_forged_stop_is_not_recorded(make_sender, client):
    """Unsigned, wrongly signed, or signed for another body: no reply, no opt-out."""
    sender = make_sender("plivo")
    inbound = reverse("messaging:webhook_inbound", args=["plivo", sender.uuid])
    stop = {"MessageUUID": "pm-stop", "From": "12125550123", "To": "14155550100", "Text": "STOP"}
    other = plivo_headers(sender.credentials["auth_token"], "POST", f"http://testserver{inbound}",
                          {**stop, "Text": "hello"})
    for headers in ({}, {"X-Plivo-Signature-V3": "x", "X-Plivo-Signature-V3-Nonce": "1"}, other):
        assert client.post(inbound, data=stop, headers=headers).status_code == 403
    assert not Message.objects.exists() and not ConsentEvent.objects.exists()


# ---- bodies refused before anything is looked up ----


def test_json_nested_past_the_limit_is_refused_before_it_is_decoded(make_sender, settings):
    settings.CALLBACK_MAX_JSON_DEPTH = 32
    sender = make_sender("sendblue")
    path = reverse("messaging:webhook_status", args=["sendblue", sender.uuid])
    headers = {"sb-signing-secret": sender.credentials["signing_secret"]}
    client = Client(raise_request_exception=False)

    def nested(depth: int) -> str:
        return '{"message_handle": "h", "status": "SENT", "x": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"

    assert client.post(path, data=nested(32), content_type="application/json", headers=headers).status_code == 200
    for depth in (33, 100_000):
        response = client.post(path, data=nested(depth), content_type="application/json", headers=headers)
        assert response.status_code == 400
    # brackets inside strings, escaped quotes included, are text
    text = '{"message_handle": "h2", "status": "SENT", "x": "\\"' + "[" * 1000 + '"}'
    assert client.post(path, data=text, content_type="application/json", headers=headers).status_code == 200


@pytest.mark.parametrize("body", [b"[]", b'[{"message_handle": "h"}]', b'"h"', b"7", b"null", b"true",
                                  b'{"message_handle": "h", "status": NaN}', b'{"message_handle": 1e999}',
                                  b'{"message_handle": "\\u0000"}', b'{"message_handle": "\\udc00"}',
                                  b'{"message_handle": ' + b"1" * 5000 + b"}"])
def test_json_that_is_not_an_object_or_holds_what_no_column_takes_is_refused(make_sender, body):
    sender = make_sender("sendblue")
    path = reverse("messaging:webhook_status", args=["sendblue", sender.uuid])
    response = Client(raise_request_exception=False).generic(
        "POST", path, data=body, content_type="application/json",
        headers={"sb-signing-secret": sender.credentials["signing_secret"]})
    assert response.status_code == 400
    assert not MessageEvent.objects.exists()


@pytest.mark.parametrize("field,value", [
    ("message_handle", "h" * 101), ("message_handle", {"a": [1, 2]}), ("date_updated", 10**300),
    ("date_updated", -(10**20)), ("date_updated", 1e300), ("error_code", ["x"]), ("status", {"x": 1}),
    ("number", "+" + "1" * 200),
])
def test_fields_of_the_wrong_type_or_size_never_err(make_sender, field, value):
    sender = make_sender("sendblue")
    path = reverse("messaging:webhook_status", args=["sendblue", sender.uuid])
    body = {"message_handle": "h-type", "status": "RECEIVED", "is_outbound": False, "content": "STOP",
            "number": "+12125550123", field: value}
    response = Client(raise_request_exception=False).post(
        path, data=json.dumps(body), content_type="application/json",
        headers={"sb-signing-secret": sender.credentials["signing_secret"]})
    assert response.status_code in (200, 400)


def test_plivo_sequence_and_part_numbers_beyond_our_columns_are_refused(make_sender, client):
    contract = _report("plivo")
    sender = make_sender("plivo")
    contract.sent_message(sender, "pm-big")
    for extra in ({"Sequence": str(2**40)}, {"PartInfo": "40000 of 40000"}):
        assert contract.post_callback(client, sender, provider_message_id="pm-big", raw_status="delivered",
                                      extra=extra).status_code == 400
    assert not MessageEvent.objects.exists()


def test_a_body_over_the_limit_answers_413(make_sender, settings):
    settings.CALLBACK_MAX_BYTES = 1000
    sender = make_sender("sendblue")
    path = reverse("messaging:webhook_status", args=["sendblue", sender.uuid])
    client = Client(raise_request_exception=False)
    headers = {"sb-signing-secret": sender.credentials["signing_secret"]}
    big = json.dumps({"message_handle": "h", "status": "SENT", "pad": "x" * 1000})
    assert client.post(path, data=big, content_type="application/json", headers=headers).status_code == 413
    # a Content-Length that says more than the limit is refused before the body is read
    small = json.dumps({"message_handle": "h", "status": "SENT"})
    response = client.generic("POST", path, data=small, content_type="application/json", headers=headers,
                              CONTENT_LENGTH="5000000")
    assert response.status_code == 413
    response = client.generic("POST", path, data=small, content_type="application/json", headers=headers,
                              CONTENT_LENGTH="lots")
    assert response.status_code == 400
    assert not MessageEvent.objects.exists()


def test_forms_with_absurd_numbers_of_fields_answer_400(make_sender, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
    sender = make_sender("bandwidth")
    path = reverse("messaging:webhook_status", args=["bandwidth", sender.uuid])
    client = Client(raise_request_exception=False)
    many = "&".join(f"f{n}=x" for n in range(200))
    response = client.generic("POST", path, data=many, content_type="application/x-www-form-urlencoded",
                              headers=credentials(sender))
    assert response.status_code == 400
    assert client.get(f"{path}?{many}", headers=credentials(sender)).status_code == 400
    multipart = "".join(f'--b\r\nContent-Disposition: form-data; name="f{n}"\r\n\r\nx\r\n' for n in range(200))
    response = client.generic("POST", path, data=multipart + "--b--\r\n",
                              content_type="multipart/form-data; boundary=b", headers=credentials(sender))
    assert response.status_code == 400
    assert not MessageEvent.objects.exists()


def test_a_stop_from_a_number_that_is_not_one_is_stored_without_a_consent_change(make_sender, client):
    contract = _report("plivo")
    sender = make_sender("plivo")
    inbound = reverse("messaging:webhook_inbound", args=["plivo", sender.uuid])
    reply = contract.callback(sender, provider_message_id="pm-odd", raw_status="", url=f"http://testserver{inbound}",
                              extra={"Text": "STOP", "From": "1" * 40, "To": sender.address.lstrip("+")})
    assert client.post(inbound, **reply).status_code == 200
    assert Message.objects.get(direction="inbound").to == ""
    assert not ConsentEvent.objects.exists()
